"""Train configs: every shipped one loads and opens with its command; mistakes are reported per line."""

from pathlib import Path

import pytest

from pipelines.core.errors import RecipeError
from pipelines.train.config import DPORunConfig, SFTRunConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "recipes" / "train").glob("*.yaml"))


def test_there_are_sft_and_dpo_configs():
    assert {p.name for p in CONFIGS} >= {"lfm2_sft_tiny.yaml", "lfm2_dpo_tiny.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_train_config_loads_and_opens_with_its_command(path):
    first = path.read_text().splitlines()[0]
    prefix = "# refinery train "
    assert first.startswith(prefix) and first.endswith(f"recipes/train/{path.name}"), first
    method = first[len(prefix):].split()[0]
    cfg = load_config(method, path)
    assert isinstance(cfg, {"sft": SFTRunConfig, "dpo": DPORunConfig}[method])


def test_overrides_and_every_problem_at_once(tmp_path):
    cfg = load_config("sft", ROOT / "recipes/train/lfm2_sft_tiny.yaml", ["max_steps=3", "learning_rate=1e-4", "lora=true"])
    assert (cfg.max_steps, cfg.learning_rate, cfg.lora) == (3, 1e-4, True)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\ndataset: Quick@x\noutput_dir: o\nmax_stepz: 3\nbeta: 0.1\nlora_r: many\n")
    with pytest.raises(RecipeError) as e:
        load_config("sft", bad, ["max_length=0"])
    lines = [str(p) for p in e.value.problems]
    assert f"{bad}:4: max_stepz: unknown key (did you mean 'max_steps'?)" in lines
    assert f"{bad}:5: beta: unknown key (it is a dpo setting; this is a sft config)" in lines
    assert f"{bad}:6: lora_r: expected int, got str 'many'" in lines
    missing = tmp_path / "missing.yaml"
    missing.write_text("model: m\n")
    with pytest.raises(RecipeError, match="dataset: missing required key"):
        load_config("dpo", missing)
    values = tmp_path / "values.yaml"
    values.write_text("model: m\ndataset: Quick@x\noutput_dir: o\n")
    with pytest.raises(RecipeError) as e:
        load_config("sft", values, ["max_length=0"])
    assert [str(p) for p in e.value.problems] == [
        f"{values}:2: dataset: expected NAME@VERSION (e.g. quickstart@v2 or quickstart@latest), got 'Quick@x'",
        f"{values}:1: override 'max_length=0': max_length: must be >= 1, got 0"]
