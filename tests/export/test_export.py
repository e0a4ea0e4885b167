"""Exporting runs as dataset versions, end to end through the `refinery` command: a recipe's export step,
`refinery export`, and `refinery datasets list|show|diff|pull`; versions load with `datasets.load_dataset`."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines.core.sample import Candidate, Message, Sample
from pipelines.formats.chat_formats import lay_out
from pipelines.formats.lfm2 import render
from pipelines.formats.trl import decode_row, preference_row, sft_row
from tests.formats.samples import bfcl_samples, chat_samples, preference_samples, reasoning_samples

ROOT = Path(__file__).resolve().parents[2]


def refinery(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def mixed_samples() -> list[Sample]:
    tied = preference_samples(1)[0]
    tied = replace(tied, candidates=[replace(c, score=0.5) for c in tied.candidates],
                   messages=[Message("user", "A question nobody could judge?")])
    unjudged_chat = Sample(kind="chat", messages=[Message("user", "Unjudged?"), Message("assistant", "Yes.")],
                           candidates=[Candidate(Message("assistant", "x")), Candidate(Message("assistant", "y"))],
                           persona={"id": "persona-unjudged"})
    return bfcl_samples()[:40] + chat_samples() + reasoning_samples() + preference_samples() + [tied, unjudged_chat]


def write_jsonl(path: Path, samples: list[Sample]) -> Path:
    path.write_text("".join(s.to_json() + "\n" for s in samples), encoding="utf-8")
    return path


def recipe(tmp: Path, name: str, source: Path, registry: Path) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nshard_size: 16\nworkers: 1\nsteps:\n"
        f"  samples: {{use: io.read_jsonl, path: {source}}}\n"
        f"  dedup: {{use: filter.exact_dedup, after: [samples]}}\n"
        f"  export: {{use: export.dataset, after: [dedup], name: mix, registry: {registry}, validation: 0.3}}\n")
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    registry = tmp / "datasets"
    samples = mixed_samples()
    r = refinery("run", str(recipe(tmp, "mix-run", write_jsonl(tmp / "v1.jsonl", samples), registry)),
                 "--no-progress", cwd=tmp)
    assert r.returncode == 0, r.stderr
    return tmp, registry, samples, tmp / "runs" / "mix-run"


def test_the_export_step_publishes_a_version_with_its_manifest_and_card(exported):
    tmp, registry, samples, run_dir = exported
    version = registry / "mix" / "v1"
    m = json.loads((version / "manifest.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    assert m["name"] == "mix" and m["version"] == "v1" and m["parent"] is None and m["review_snapshot"] is None
    assert m["origin"]["fingerprint"] == run["steps"]["export"]["fingerprint"] and m["origin"]["recipe"] == "mix-run"
    n_pref = len(preference_samples())
    assert m["counts"]["rows"] == {"sft": 40 + 12 + 8 + 1, "preference": n_pref}
    assert m["counts"]["by_kind"] == {"chat": 13, "preference": n_pref, "reasoning": 8, "tool_use": 40}
    assert m["counts"]["dropped"] == {"tied_candidates": 1, "preference:unjudged_candidates": 1}
    assert [f["step"] for f in m["funnel"]] == ["samples", "dedup"] and m["funnel"][0]["out"] == len(samples)
    assert set(m["configs"]) == {"sft", "preference"} and m["text"] == "lfm2"
    card = (version / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and "# mix@v1" in card and "filter.exact_dedup" in card
    export_note = json.loads((run_dir / "export-export.json").read_text())
    assert export_note["dataset"] == "mix@v1" and not export_note["reused"]
    # The tied pair is dropped with a verdict, so `inspect --rejected` says why it is missing.
    shown = refinery("inspect", str(run_dir), "--rejected", "--step", "export", "--json", cwd=tmp)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["verdicts"][-1]["reason"] == "tied_candidates"


def test_a_version_loads_with_datasets_and_decodes_to_the_trl_rows(exported):
    from datasets import load_dataset

    tmp, registry, samples, _ = exported
    version = registry / "mix" / "v1"
    by_id = {s.id: s for s in samples}
    sft = load_dataset(str(version), "sft", cache_dir=str(tmp / "hf-cache"))
    assert set(sft) == {"train", "validation"} and len(sft["validation"]) > 0
    for split in sft.values():
        for row in split:
            # The default chat_format (lfm2) writes the reasoning into the content, where LFM2 templates read it.
            structured = sft_row(by_id[row["id"]])
            decoded = decode_row(row)
            assert decoded == {**structured, "messages": [lay_out(m, "lfm2") for m in structured["messages"]]}
            assert row["text"] == render(decoded["messages"], decoded["tools"])
    pref = load_dataset("parquet", data_dir=str(version / "data" / "preference"), cache_dir=str(tmp / "hf-cache"))
    rows = [r for split in pref.values() for r in split]
    assert len(rows) == len(preference_samples())
    for row in rows:
        expected = preference_row(by_id[row["id"]])
        assert decode_row(row) == {k: [lay_out(m, "lfm2") for m in expected[k]] if k != "tools" else expected[k]
                                   for k in ("prompt", "chosen", "rejected", "tools")}


def test_samples_sharing_a_persona_source_or_prompt_never_straddle_the_split(exported):
    from datasets import load_dataset

    tmp, registry, samples, _ = exported
    by_id = {s.id: s for s in samples}
    ds = load_dataset(str(registry / "mix" / "v1"), "sft", cache_dir=str(tmp / "hf-cache"))
    seen: dict[str, str] = {}
    for split, rows in ds.items():
        for row in rows:
            s = by_id[row["id"]]
            keys = [f"p:{s.persona['id']}"] if s.persona else []
            keys += [f"s:{s.meta['source_id']}"] if "source_id" in s.meta else []
            keys += [f"u:{next(m.content for m in s.messages if m.role == 'user')}"]
            for k in keys:
                assert seen.setdefault(k, split) == split, f"{k} is in both splits"


def test_versions_diff_list_show_pull(exported, tmp_path):
    tmp, registry, samples, run_dir = exported
    env = {"REFINERY_DATASETS": str(registry)}
    # Exporting the same content again publishes nothing new.
    again = refinery("export", str(run_dir), "--name", "mix", "--validation", "0.3", cwd=tmp, **env)
    assert again.returncode == 0, again.stderr
    assert "unchanged, reusing mix@v1" in again.stderr and again.stdout.strip().endswith("mix/v1")
    # v2: one answer edited, one sample removed, one added.
    chats = [s for s in samples if s.kind == "chat" and not s.candidates]
    edited = replace(chats[0], messages=[*chats[0].messages[:-1], Message("assistant", "Water at dawn, twice a week.")])
    added = Sample(kind="chat", messages=[Message("user", "Brand new question?"), Message("assistant", "New answer.")])
    v2 = [edited if s is chats[0] else s for s in samples if s is not chats[1]] + [added]
    r = refinery("run", str(recipe(tmp_path, "mix-run-2", write_jsonl(tmp_path / "v2.jsonl", v2), registry)),
                 "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    m2 = json.loads((registry / "mix" / "v2" / "manifest.json").read_text())
    assert m2["parent"] == "v1"
    d = refinery("datasets", "diff", "mix@v1", "v2", "--json", cwd=tmp, **env)
    assert d.returncode == 0, d.stderr
    sft = json.loads(d.stdout)["configs"]["sft"]
    assert (sft["n_added"], sft["n_removed"], sft["n_changed"]) == (1, 1, 1)
    assert sft["added"] == [added.id] and sft["removed"] == [chats[1].id]
    assert sft["changed"][0]["from_id"] == chats[0].id and sft["changed"][0]["to_id"] == edited.id
    assert "messages" in sft["changed"][0]["fields"]
    assert json.loads(d.stdout)["configs"]["preference"]["n_changed"] == 0
    text = refinery("datasets", "diff", "mix@v1", "mix@latest", cwd=tmp, **env)
    assert "sft: +1 added, -1 removed, ~1 changed" in text.stdout
    listed = refinery("datasets", "list", cwd=tmp, **env)
    assert listed.returncode == 0 and "mix" in listed.stdout and "v2" in listed.stdout
    shown = refinery("datasets", "show", "mix@latest", cwd=tmp, **env)
    assert shown.returncode == 0 and "mix@v2" in shown.stdout and "files intact" in shown.stdout
    assert "dedup" in shown.stdout  # the funnel
    copy = refinery("datasets", "pull", "mix@v1", "--to", str(tmp_path / "copy"), cwd=tmp, **env)
    assert copy.returncode == 0 and (tmp_path / "copy" / "manifest.json").exists()
    # A version edited in place is detected, and refused to trainers.
    victim = registry / "mix" / "v2" / "data" / "sft" / "train-00000-of-00001.parquet"
    victim.chmod(0o644)
    with open(victim, "ab") as f:
        f.write(b"tampered")
    damaged = refinery("datasets", "show", "mix@v2", cwd=tmp, **env)
    assert damaged.returncode == 1 and "DAMAGED" in damaged.stdout
    assert refinery("datasets", "pull", "mix@v2", cwd=tmp, **env).returncode == 1
    missing = refinery("datasets", "show", "mixx@v1", cwd=tmp, **env)
    assert missing.returncode == 2 and "did you mean 'mix'" in missing.stderr
    assert refinery("datasets", "show", "mix@v9", cwd=tmp, **env).returncode == 2


def test_the_chat_format_is_chosen_on_export_and_recorded(exported, tmp_path):
    import pyarrow.parquet as pq

    tmp, _, _, run_dir = exported
    env = {"REFINERY_DATASETS": str(tmp_path / "registry")}
    r = refinery("export", str(run_dir), "--name", "mix25", "--chat-format", "lfm2.5", "--validation", "0",
                 "--text", "lfm2.5-canonical", "--template-date", "2026-01-15", cwd=tmp, **env)
    assert r.returncode == 0, r.stderr
    version = tmp_path / "registry" / "mix25" / "v1"
    manifest = json.loads((version / "manifest.json").read_text())
    assert (manifest["chat_format"], manifest["text"], manifest["template_date"]) == (
        "lfm2.5", "lfm2.5-canonical", "2026-01-15")
    rows = pq.read_table(version / "data" / "sft" / "train-00000-of-00001.parquet").to_pylist()
    turns = [m for row in rows for m in row["messages"] if m["role"] == "assistant"]
    assert any(m["thinking"] for m in turns) and not any(m["reasoning"] for m in turns)
    assert any("\n\nToday's date: 2026-01-15\n\nList of tools: [" in row["text"] or
               row["text"].startswith("<|startoftext|><|im_start|>system\nToday's date: 2026-01-15") for row in rows)
    wrong = refinery("export", str(run_dir), "--name", "mix25", "--template-date", "15/01/2026", cwd=tmp, **env)
    assert wrong.returncode == 2 and "template_date must be YYYY-MM-DD" in wrong.stderr
    bad = refinery("export", str(run_dir), "--name", "mix25", "--chat-format", "chatml", cwd=tmp, **env)
    assert bad.returncode == 2 and "--chat-format: expected one of lfm2, lfm2-leap, lfm2.5, structured" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_sample_the_exporter_does_not_understand_fails_the_run_naming_it(tmp_path):
    seed = Sample(kind="seed", meta={"question": "What is 2 + 2?"})
    r = refinery("run", str(recipe(tmp_path, "bad-run", write_jsonl(tmp_path / "bad.jsonl", [seed]), tmp_path / "d")),
                 "--no-progress", cwd=tmp_path)
    assert r.returncode == 1 and seed.id in r.stderr and "seed sample has no conversation" in r.stderr
    assert not (tmp_path / "d" / "mix").exists() or not list((tmp_path / "d" / "mix").glob("v*"))
