"""The bundled trainer on a tiny random LFM2 (conv + attention layers, head_dim 64, tokenizer trained here):
SFT and DPO for a few steps on CPU. Loss goes down, only assistant tokens carry loss, checkpoints resume,
the dataset version is recorded, and the saved model reloads and generates."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipelines.export.builder import ExportOptions, VersionBuilder
from pipelines.export.registry import Registry
from pipelines.export.writer import write_version
from pipelines.formats.lfm2 import render, render_segments
from pipelines.train.config import DPORunConfig, SFTRunConfig
from pipelines.train.data import load_version, tokenize_sft
from pipelines.train.templates import chat_template
from tests.formats.samples import bfcl_samples, chat_samples, preference_samples, reasoning_samples

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A registry holding an SFT version (tool use, chat, reasoning) and a preference version."""
    tmp = tmp_path_factory.mktemp("train")
    registry = Registry(tmp / "datasets")
    sft = VersionBuilder(ExportOptions(name="train-mix", validation=0.2))
    for s in bfcl_samples()[:12] + chat_samples() + reasoning_samples():
        sft.add(s)
    write_version(registry, sft, {"recipe": "test"}, [])
    pref = VersionBuilder(ExportOptions(name="prefs", validation=0.0, formats=("preference",)))
    for s in preference_samples(24):
        pref.add(s)
    write_version(registry, pref, {"recipe": "test"}, [])
    return tmp, registry


def test_sft_trains_only_on_assistant_tokens_resumes_and_the_model_generates(setup):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipelines.train.sft import train_sft

    tmp, registry = setup
    out = tmp / "sft"
    cfg = SFTRunConfig(model=str(tmp / "tiny"), init_tiny_model=True, dataset="train-mix@latest",
                       registry=str(registry.root), output_dir=str(out), learning_rate=3e-3, max_steps=8,
                       per_device_train_batch_size=4, logging_steps=1, save_steps=4, eval_steps=8)
    summary = train_sft(cfg)
    assert summary["global_step"] == 8
    assert summary["last_logged_loss"] < 0.8 * summary["first_logged_loss"], summary
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_loss" in m for m in metrics) and all(m["tokens_per_s"] > 0 for m in metrics if "tokens_per_s" in m)
    assert {p.name for p in out.glob("checkpoint-*")} == {"checkpoint-4", "checkpoint-8"}
    record = json.loads((out / "refinery_train.json").read_text())
    manifest = registry.manifest(registry.resolve("train-mix@latest"))
    assert record["dataset"]["ref"] == "train-mix@v1" and record["dataset"]["content_hash"] == manifest["content_hash"]
    assert record["method"] == "sft" and record["summary"]["global_step"] == 8
    # bf16 autocast exactly where the hardware has native bf16 (this CPU's AVX-512 BF16 counts).
    assert record["bf16"] == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())

    # Only assistant tokens carry loss: the supervised tokens are exactly the assistant turns' text.
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == chat_template("lfm2")
    rows = load_version("train-mix@latest", "sft", str(registry.root)).rows["train"]
    data = tokenize_sft(rows, tok, "lfm2", cfg.max_length)
    assert not data["skipped"]
    for row, ids, labels in zip(rows, data["input_ids"], data["labels"]):
        segments = render_segments(row["messages"], row["tools"])
        supervised = [t for t, label in zip(ids, labels) if label != -100]
        assert [label for label in labels if label != -100] == supervised
        assert tok.decode(supervised) == "".join(s.text for s in segments if s.trainable)
        assert tok.decode([t for t, label in zip(ids, labels) if label == -100]) == \
            "".join(s.text for s in segments if not s.trainable)

    # The saved model reloads and generates from an LFM2 prompt.
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    prompt = render(rows[0]["messages"][:1], rows[0]["tools"], add_generation_prompt=True)
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        generated = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > ids.shape[1]

    # Resume: a longer run continues from the last checkpoint instead of starting over.
    cfg.max_steps = 10
    resumed = train_sft(cfg)
    record = json.loads((out / "refinery_train.json").read_text())
    assert resumed["global_step"] == 10 and record["resumed_from"] == "checkpoint-8"
    assert len(record["history"]) == 2


def test_packed_batches_train_exactly_like_padded_ones(setup):
    """Padding-free packing (one row, sequence-aware convolutions) and padded batches of the same sequences
    give the same loss: packing changes the cost, never what is learned."""
    from pipelines.train.sft import train_sft

    tmp, registry = setup
    losses = {}
    for packing in (False, True):
        summary = train_sft(SFTRunConfig(
            model=str(tmp / "tiny-packing"), init_tiny_model=True, dataset="train-mix@latest",
            registry=str(registry.root), output_dir=str(tmp / f"packing-{packing}"), max_steps=2,
            per_device_train_batch_size=4, logging_steps=1, packing=packing, group_by_length=False))
        metrics = (tmp / f"packing-{packing}" / "metrics.jsonl").read_text().splitlines()
        losses[packing] = [m["loss"] for m in map(json.loads, metrics) if "loss" in m]
        assert summary["global_step"] == 2
    assert len(losses[True]) == 2 and losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_dpo_with_lora_on_every_lfm2_projection(setup):
    from peft import AutoPeftModelForCausalLM

    from pipelines.train.dpo import train_dpo

    tmp, registry = setup
    out = tmp / "dpo"
    cfg = DPORunConfig(model=str(tmp / "tiny-dpo"), init_tiny_model=True, dataset="prefs@v1",
                       registry=str(registry.root), output_dir=str(out), learning_rate=2e-3, max_steps=6,
                       per_device_train_batch_size=4, logging_steps=1, save_steps=6, lora=True, lora_r=8)
    summary = train_dpo(cfg)
    assert summary["global_step"] == 6
    assert summary["last_logged_loss"] < summary["first_logged_loss"] - 0.1, summary  # starts at ln 2
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-2]["rewards/margins"] > 0
    record = json.loads((out / "refinery_train.json").read_text())
    assert record["dataset"]["ref"] == "prefs@v1" and record["method"] == "dpo"

    model = AutoPeftModelForCausalLM.from_pretrained(out).eval()
    adapted = {name.split(".")[-3] for name, _ in model.named_modules() if name.endswith("lora_A.default")}
    assert adapted == {"q_proj", "k_proj", "v_proj", "out_proj", "in_proj", "w1", "w2", "w3"}
    layer_kinds = {type(m).__name__ for m in model.modules()}
    assert {"Lfm2ShortConv", "Lfm2Attention"} <= layer_kinds
    with torch.no_grad():
        generated = model.generate(input_ids=torch.tensor([[1, 5, 6, 7]]), max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > 4


def test_quick_end_to_end_run_export_show_train(tmp_path):
    """The path a user walks, through the `refinery` command: run -> export -> datasets show -> train sft."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REFINERY_DATASETS": str(tmp_path / "datasets")}

    def refinery(*args):
        return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)

    (tmp_path / "r.yaml").write_text("name: quick\nshard_size: 20\nworkers: 1\nsteps:\n"
                                     "  src: {use: source.synthetic, n: 40}\n"
                                     "  dedup: {use: filter.exact_dedup, after: [src]}\n")
    assert refinery("run", "r.yaml", "--no-progress").returncode == 0
    exported = refinery("export", "runs/quick", "--name", "quick")
    assert exported.returncode == 0, exported.stderr
    shown = refinery("datasets", "show", "quick@latest")
    assert shown.returncode == 0 and "quick@v1" in shown.stdout and "files intact" in shown.stdout
    trained = refinery("train", "sft", str(ROOT / "recipes/train/lfm2_sft_tiny.yaml"), "dataset=quick@latest",
                       "max_steps=2", "logging_steps=1", "save_steps=2")
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / trained.stdout.strip().splitlines()[-1]
    assert out == tmp_path / "runs/train/lfm2_sft_tiny" and (out / "model.safetensors").exists()
    assert json.loads((out / "refinery_train.json").read_text())["dataset"]["ref"] == "quick@v1"
    bad = refinery("train", "sft", str(ROOT / "recipes/train/lfm2_sft_tiny.yaml"), "dataset=nope@v1")
    assert bad.returncode == 2 and "no dataset 'nope'" in bad.stderr
