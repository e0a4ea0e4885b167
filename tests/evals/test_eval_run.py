"""`refinery eval` end to end on real models: the embedded instruct GGUF through llama.cpp, the tests' real
llama_cpp.server (OpenAI-compatible, serving the Gemma base model), and a transformers checkpoint folder;
then `refinery eval compare`."""

import json
import subprocess
import sys
from pathlib import Path

from pipelines.evals.compare import compare
from pipelines.evals.runner import evaluate
from pipelines.llm.local_server import EMBEDDED_ALIAS
from tests.llm.tiny_lfm2 import build_tiny_lfm2

SUITES = ["bfcl_simple", "irrelevance", "gsm8k"]


def refinery(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=900)


def _rows(eval_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (eval_dir / "items.jsonl").read_text().splitlines()]


def test_gguf_eval_writes_every_item_with_its_verdict_and_resumes_from_its_cache(tmp_path):
    out = tmp_path / "qwen"
    r = refinery("eval", "embedded-qwen-0.5b", *[a for s in SUITES for a in ("--suite", s)], "--limit", "2",
                 "-o", str(out), "--threads", "1")
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["suites"]) == set(SUITES) and summary["formats"] == ["lfm2", "json"]
    assert summary["held_out"]["function_names_in_training_catalog"] == []
    rows = _rows(out)
    assert len(rows) == 2 * len(SUITES) * 2
    for row in rows:
        assert row["output"] and isinstance(row["correct"], bool) and (row["correct"] or row["reason"])
        assert row["prompt"]
    for suite, by_format in summary["suites"].items():
        for fmt, r_ in by_format.items():
            assert r_["correct"] == sum(x["correct"] for x in rows if x["suite"] == suite and x["format"] == fmt)
        best = summary["best"][suite]
        assert best["accuracy"] == max(v["accuracy"] for v in by_format.values())
    # The irrelevance item offers a function that does not fit: a call there is always wrong.
    assert all(not x["correct"] for x in rows if x["suite"] == "irrelevance" and x["calls"])
    assert "bfcl_simple" in r.stdout and str(out) in r.stdout

    # Same model, same items: every answer comes from the eval's cache, and compare finds no change.
    again = evaluate("embedded-qwen-0.5b", SUITES, out, limit=2, n_threads=1)
    assert again["suites"] == summary["suites"]
    delta = compare(out, out)
    assert all(d["delta"] == 0 and d["fixed"] == [] == d["broken"] for d in delta.values())
    shown = refinery("eval", "compare", str(out), str(out))
    assert shown.returncode == 0 and "bfcl_simple" in shown.stdout and "+0.000" in shown.stdout


def test_endpoint_and_checkpoint_folder_run_the_same_suites(tmp_path, llama_server):
    tiny_lfm2_dir = build_tiny_lfm2(tmp_path / "tiny-lfm2")
    served = evaluate(EMBEDDED_ALIAS, ["bfcl_simple"], tmp_path / "served", formats=["json"], limit=2,
                      base_url=llama_server)
    assert served["suites"]["bfcl_simple"]["json"]["n"] == 2
    assert all(r["output"] for r in _rows(tmp_path / "served"))
    folder = evaluate(str(tiny_lfm2_dir), ["bfcl_simple", "gsm8k"], tmp_path / "tiny", limit=2)
    rows = _rows(tmp_path / "tiny")
    assert len(rows) == 8 and folder["best"]["bfcl_simple"]["n"] == 2  # a random model: graded, not right
    assert all(isinstance(r["correct"], bool) for r in rows)


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    r = refinery("eval", "embedded-qwen-0.5b", "--suite", "bfcl", "-o", str(tmp_path / "x"))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "refinery eval: unknown eval suite 'bfcl'; known: bfcl_simple, bfcl_multiple, bfcl_parallel, "
        "bfcl_parallel_multiple, irrelevance, gsm8k"]
    r = refinery("eval", "compare", str(tmp_path), str(tmp_path))
    assert r.returncode == 2 and "no summary.json" in r.stderr
