"""The `refinery` command as a user runs it: a subprocess, its exit status and what it prints."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.core.recipe import validate_recipes

ROOT = Path(__file__).resolve().parents[1]
# recipes/train holds trainer configs, checked by tests/train/test_configs.py.
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if p.parent.name != "train")


def refinery(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


# Recipes that read what another run writes: on a fresh checkout, that file is their only problem.
NEEDS_EARLIER_RUN = {"export_quickstart.yaml": "runs/quickstart/final.jsonl",
                     "review_publish.yaml": "reviews/quickstart-chat/v0001"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_validates_and_opens_with_its_command(recipe):
    problems = [p.message for p in validate_recipes([recipe])]
    if recipe.name in NEEDS_EARLIER_RUN and not (ROOT / NEEDS_EARLIER_RUN[recipe.name]).exists():
        assert len(problems) == 1 and f"no such file '{NEEDS_EARLIER_RUN[recipe.name]}'" in problems[0]
    else:
        assert problems == []
    first = recipe.read_text().splitlines()[0]
    assert first.startswith("# refinery run recipes/") and recipe.name in first


def test_recipes_folder_is_not_empty():
    assert any(p.name == "quickstart.yaml" for p in RECIPES)


def test_validate_reports_every_problem_one_line_each(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\n"
        "steps:\n"
        "  personas: {use: personas.sample, n: 'many'}\n"
        "  chat: {use: generate.multi_turn, after: [persona], turns: 3}\n"
        "  dedup: {use: filter.exact_dup, after: [chat]}\n"
    )
    r = refinery("validate", str(bad))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert lines[0].startswith(f"{bad}:3: steps.personas.n")
    assert lines[1].startswith(f"{bad}:4: steps.chat.after") and "'personas'" in lines[1]
    assert lines[2].startswith(f"{bad}:5: steps.dedup.use") and "filter.exact_dedup" in lines[2]


def test_validate_names_every_missing_input_file_without_loading_anything(tmp_path):
    bank = tmp_path / "bank.jsonl"
    bank.write_text("")  # present: only missing files are reported
    recipe = tmp_path / "inputs.yaml"
    recipe.write_text(
        "name: inputs\n"
        "steps:\n"
        "  old: {use: io.read_jsonl, path: nowhere/samples.jsonl}\n"
        f"  personas: {{use: personas.sample, n: 2, bank: {bank}}}\n"
        "  others: {use: personas.sample, n: 2, bank: missing_bank.jsonl}\n"
        "  seeds: {use: seeds.jsonl, path: no_prompts.jsonl}\n"
        "  docs:\n"
        "    use: seeds.documents\n"
        "    paths: [pipelines/generators/data/docs, no/such/folder]\n"
        "  problems: {use: seeds.gsm8k, data_dir: no_gsm8k}\n"
    )
    r = refinery("validate", str(recipe))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"{recipe}:3: steps.old.path: no such file 'nowhere/samples.jsonl'",
        f"{recipe}:5: steps.others.bank: no such file 'missing_bank.jsonl'",
        f"{recipe}:6: steps.seeds.path: no such file '{ROOT / 'no_prompts.jsonl'}'",
        f"{recipe}:9: steps.docs.paths[1]: no such file '{ROOT / 'no/such/folder'}'",
        f"{recipe}:10: steps.problems.data_dir: no such file '{ROOT / 'no_gsm8k/train.jsonl'}'",
    ]
    # `run` validates the same way: nothing starts, no run directory is made.
    run = refinery("run", str(recipe), "--run-dir", str(tmp_path / "run"))
    assert run.returncode == 2 and "steps.old.path: no such file" in run.stderr
    assert not (tmp_path / "run").exists()


def test_validate_ok_and_bad_override():
    ok = refinery("validate", "recipes/quickstart.yaml")
    assert ok.returncode == 0 and "ok: recipes/quickstart.yaml" in ok.stdout
    bad = refinery("validate", "recipes/quickstart.yaml", "steps.chat.turns=three")
    assert bad.returncode == 2
    assert bad.stderr.startswith("recipes/quickstart.yaml:") and "steps.chat.turns" in bad.stderr


def test_run_status_inspect_on_a_model_free_recipe(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: cli-test\nshard_size: 20\nsteps:\n"
        "  src: {use: source.synthetic, n: 100, duplicate_rate: 0.3}\n"
        "  dedup: {use: filter.exact_dedup, after: [src]}\n"
    )
    r = refinery("run", str(recipe), "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run_dir = tmp_path / r.stdout.strip().splitlines()[-1]
    assert run_dir == tmp_path / "runs" / "cli-test"
    st = refinery("status", str(run_dir))
    assert st.returncode == 0 and "exact_duplicate" in st.stdout and "finished" in st.stdout
    shown = refinery("inspect", str(run_dir), "--rejected", "--step", "dedup", "--limit", "1", "--json")
    assert shown.returncode == 0, shown.stderr
    rejected = json.loads(shown.stdout)
    assert rejected["verdicts"][-1]["reason"] == "exact_duplicate"
    one = refinery("inspect", str(run_dir), "--id", rejected["verdicts"][-1]["duplicate_of"][:10])
    assert one.returncode == 0 and "user:" in one.stdout
    missing = refinery("inspect", str(run_dir), "--step", "nope")
    assert missing.returncode == 2 and "no step 'nope'" in missing.stderr
    not_a_run = refinery("status", str(tmp_path))
    assert not_a_run.returncode == 2 and "not a run directory" in not_a_run.stderr


def test_help_everywhere():
    for cmd in ([], ["run"], ["validate"], ["status"], ["inspect"], ["report"]):
        r = refinery(*cmd, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout
