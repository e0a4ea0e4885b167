"""`refinery report` on real runs: what the page says matches the run directory, the command answers
bad input with one line, and the report step writes the page as part of the run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from pipelines.core.store import read_run_manifest
from pipelines.report.page import build_report
from tests.report.conftest import make_run

ROOT = Path(__file__).resolve().parents[2]


def embedded(html: str, name: str):
    match = re.search(rf'<script id="{name}-data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def refinery(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def step_stats(run_dir: Path) -> dict:
    manifest = read_run_manifest(run_dir)
    return {n: json.loads((run_dir / manifest["steps"][n]["dir"] / "_SUCCESS").read_text())["stats"]
            for n in manifest["order"] if n != "report"}


def test_the_report_step_writes_a_page_with_the_runs_own_numbers(report_run):
    html = (report_run / "report.html").read_text(encoding="utf-8")
    stats = step_stats(report_run)
    figures = embedded(html, "figures")
    funnel = {t["name"]: dict(zip(t["x"], t["y"])) for t in figures["funnel"]["data"]}
    assert funnel["out"] == {n: s["out"] for n, s in stats.items()}
    assert funnel["in"] == {n: s["in"] for n, s in stats.items()}
    drops = {(c[0], c[1]): x for t in figures["drops"]["data"] for c, x in zip(t["customdata"], t["x"])}
    assert drops == {(n, r): k for n, s in stats.items() for r, k in s["dropped"].items()}
    assert {step for step, _ in drops} == {"length", "tool_calls", "exact"}  # each planted fault caught
    assert {"map", "personas", "yield_process", "yield_case"} <= set(figures)
    assert "cost" not in figures and "No step called a model." in html  # (the quickstart's test has one)

    # A small run: the browser holds every sample once, kept ones exactly the final output.
    samples = embedded(html, "samples")
    kept = [s["id"] for s in samples if s["status"] == "kept"]
    final = [json.loads(line)["id"] for line in (report_run / "final.jsonl").read_text().splitlines()]
    assert sorted(kept) == sorted(final)
    dropped = [(s["step"], s["reason"]) for s in samples if s["status"] == "dropped"]
    assert len(dropped) == sum(drops.values())
    assert all(s["messages"] and s["verdicts"][-1]["keep"] is False for s in samples if s["status"] == "dropped")
    assert not re.search(r'<(script|link|img)[^>]+(src|href)=', html), "nothing is fetched: all inline"


def test_the_report_command_rewrites_the_page_and_answers_bad_input_in_one_line(report_run, tmp_path):
    out = tmp_path / "elsewhere" / "r.html"
    done = refinery("report", str(report_run), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out) and out.stat().st_size > 1_000_000  # plotly.js is inside

    not_a_run = refinery("report", str(tmp_path))
    assert not_a_run.returncode == 2
    assert not_a_run.stderr.strip().count("\n") == 0 and "not a run directory" in not_a_run.stderr

    bad = refinery("report", str(report_run), "--embedder", "bert")
    assert bad.returncode == 2 and "--embedder" in bad.stderr and "Traceback" not in bad.stderr


def test_a_run_that_kept_nothing_says_where_everything_went(empty_run, tmp_path):
    html = build_report(empty_run, tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="no-kept"' in html
    assert re.search(r"length: turn_too_short \(\d+\)", html), "the top drop reason is named"
    assert "The map needs at least 3 kept samples; this run kept 0." in html


def test_a_sample_one_final_step_kept_and_another_dropped_counts_once_as_dropped(tmp_path):
    """Two final steps read the same samples: the writer keeps them all, a stricter length check drops
    the short ones. Those are reported dropped (with the reason), never also kept."""
    run_dir = make_run(tmp_path, extra="  strict: {use: filter.length, after: [exact], min_chars: 60}\n")
    html = build_report(run_dir, tmp_path / "r.html").read_text(encoding="utf-8")
    samples = embedded(html, "samples")
    strict = {s["id"] for s in samples if s["step"] == "strict"}
    kept = [s["id"] for s in samples if s["status"] == "kept"]
    assert strict and not strict & set(kept)
    assert len(kept) + len(strict) == step_stats(run_dir)["exact"]["out"] and len(kept) == len(set(kept))
