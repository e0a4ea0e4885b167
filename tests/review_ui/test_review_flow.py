"""Push -> annotate (two annotators, through the UI's HTTP API) -> pull -> merge, on the real stack."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pipelines.core.sample import Sample
from pipelines.formats.trl import preference_row
from review_ui.datasets import find_dataset
from review_ui.merge import merge_record
from review_ui.pull import fetch_records, pull, read_snapshot
from review_ui.push import PushOptions, count_records, push
from tests.review_ui.annotators import Annotator, accept, discard, rank, reject
from tests.review_ui.conftest import WORKSPACE
from tests.review_ui.make_samples import make_samples

ROOT = Path(__file__).resolve().parents[2]
COUNTS = {"chat": 400, "reasoning": 200, "tool_use": 200, "preference": 200}  # 1,000 samples


def refinery(*args: str, env: dict, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env})


@pytest.fixture(scope="module")
def pushed(conn, annotators, tmp_path_factory):
    """1,000 samples of every kind pushed once, and the push's journal folder."""
    samples = {k: make_samples(k, n) for k, n in COUNTS.items()}
    everything = [s for k in COUNTS for s in samples[k]]
    journal = tmp_path_factory.mktemp("journal")
    opts = PushOptions(dataset="suite", workspace=WORKSPACE, min_submitted=2, batch_size=100, answers=2)
    report = push(everything + everything[:5], conn, opts, journal)  # 5 repeats in the input
    return samples, everything, journal, opts, report


def _record_ids(conn, name: str) -> dict[str, str]:
    handle = find_dataset(conn, name, WORKSPACE)
    return {r["external_id"]: r["record_id"] for r in fetch_records(conn, handle.id, {})}


def test_push_creates_one_dataset_per_kind_idempotently(conn, pushed):
    samples, everything, journal, opts, report = pushed
    assert {d.name: (d.sent, d.on_server) for d in report.datasets.values()} == {
        f"suite-{k}": (n, n) for k, n in COUNTS.items()}
    assert sum(d.repeated for d in report.datasets.values()) == 5

    again = push(everything, conn, opts, journal)  # same journal: nothing to send
    assert again.sent == 0 and sum(d.skipped for d in again.datasets.values()) == 1000

    fresh = push(samples["reasoning"], conn, opts, journal.parent / "other-journal")  # another machine: upserts
    assert fresh.sent == 200 and fresh.datasets["suite-reasoning"].on_server == 200

    # Re-logging kept the metadata (argilla wipes it on a re-log without metadata) and the settings per kind.
    handle = find_dataset(conn, "suite-tool_use", WORKSPACE)
    row = next(fetch_records(conn, handle.id, {}))
    assert Sample.from_dict(row["sample"]).kind == "tool_use"
    with conn.http() as http:
        rec = http.get(f"/api/v1/records/{row['record_id']}").json()
    assert rec["metadata"]["persona_domain"] and rec["metadata"]["n_tool_calls"] == 1
    assert {f.name for f in conn.sdk().datasets(name="suite-tool_use", workspace=WORKSPACE).settings.fields} == \
        {"conversation", "tools"}
    assert handle.min_submitted == 2 and "ranking" in find_dataset(conn, "suite-preference", WORKSPACE).question_ids


def test_annotate_pull_merge_and_publish(conn, annotators, pushed, tmp_path, owner_env):
    samples, *_ = pushed
    ids = {k: _record_ids(conn, f"suite-{k}") for k in COUNTS}
    c, r, t, p = ([ids[k][s.id] for s in samples[k]] for k in ("chat", "reasoning", "tool_use", "preference"))
    chat, reasoning, tool, pref = (samples[k] for k in ("chat", "reasoning", "tool_use", "preference"))
    fixed_calls = json.dumps([{"name": "get_weather", "arguments": {"city": "Rome", "days": 2}}])
    ann1 = Annotator(conn.url, "ann1", annotators["ann1"])
    ann2 = Annotator(conn.url, "ann2", annotators["ann2"])
    unchanged = [accept(c[i], 4, chat[i].messages[-1].content) for i in range(6, 10)]  # the UI sends the suggestion
    ann1.submit([accept(c[0], 5, "Fixed answer zero.", "typo"), accept(c[1], 3, "Version X."), reject(c[2]),
                 accept(c[3]), discard(c[4]), accept(c[5]), *unchanged,
                 accept(r[0], 4, "The answer is 1."), accept(t[0]), accept(t[1], 5, fixed_calls),
                 accept(t[3], 2, "not json"),
                 rank(p[0], ["answer_2", "answer_1"]), rank(p[1], ["answer_1", "answer_2"]),
                 rank(p[2], ["answer_1", "answer_2"])])
    ann2.submit([accept(c[0], 4, "Fixed answer zero."), accept(c[1], 3, "Version Y."), reject(c[2], "wrong"),
                 reject(c[3]), discard(c[4]), *unchanged,
                 accept(r[0], 4, "The answer is 1."), accept(t[0]), accept(t[1], 4, fixed_calls),
                 accept(t[3], 2, "not json"),
                 rank(p[0], ["answer_2", "answer_1"]), rank(p[1], ["answer_2", "answer_1"]),
                 rank(p[2], ["answer_1", "answer_2"])])
    ann1.close(), ann2.close()

    reviews = tmp_path / "reviews"
    merged = {}
    for kind in COUNTS:
        folder, created = pull(conn, f"suite-{kind}", reviews)
        assert created and folder == reviews / f"suite-{kind}" / "v0001"
        manifest, rows = read_snapshot(folder)
        assert manifest["records"] == COUNTS[kind] and manifest["min_submitted"] == 2
        merged[kind] = {row["external_id"]: merge_record(row, min_votes=2) for row in rows}
        if kind == "chat":
            assert manifest["annotators"] == {"ann1": {"discarded": 1, "submitted": 9},
                                              "ann2": {"discarded": 1, "submitted": 8}}
            ag = manifest["agreement"]
            assert ag["records_with_2plus_answers"] == 9 and ag["verdict_percent_agreement"] == round(8 / 9, 4)
            assert ag["verdict_alpha"] is not None and ag["verdict_alpha"] < 1
            chat_folder = folder

    reason = {k: {sid: s.verdicts[-1].reason for sid, s in merged[k].items()} for k in COUNTS}
    assert Counter(reason["chat"].values()) == {"pending_review": 391, "accepted": 5, "correction_conflict": 1,
                                                "rejected_in_review": 1, "review_conflict": 1,
                                                "discarded_in_review": 1}
    got = merged["chat"][chat[0].id]
    assert got.messages[-1].content == "Fixed answer zero." and got.messages[:-1] == chat[0].messages[:-1]
    assert got.meta["review"]["quality"] == 4.5 and got.meta["review"]["rationales"] == {"ann1": "typo"}
    assert got.id != chat[0].id and got.meta["review"]["original_id"] == chat[0].id
    assert merged["chat"][chat[6].id].id == chat[6].id  # accepted as is: same sample, same id
    assert merged["chat"][chat[2].id].verdicts[-1].details["votes"] == {"ann1": "reject", "ann2": "reject"}

    fixed = merged["reasoning"][reasoning[0].id]
    assert fixed.messages[-1].content == "The answer is 1." and fixed.messages[-1].reasoning == reasoning[0].messages[-1].reasoning

    assert reason["tool_use"][tool[0].id] == "accepted" and merged["tool_use"][tool[0].id].id == tool[0].id
    calls = merged["tool_use"][tool[1].id].messages[-1].tool_calls
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Rome", "days": 2})]
    assert reason["tool_use"][tool[3].id] == "invalid_correction"

    assert reason["preference"][pref[1].id] == "ranking_tie"
    best_b = merged["preference"][pref[0].id]
    assert best_b.meta["preference"] == {"chosen": 1, "rejected": 0}
    row = preference_row(best_b)  # what the exporter makes of it
    assert row["chosen"][0]["content"].startswith("Answer B0") and row["rejected"][0]["content"].startswith("Answer A0")
    assert merged["preference"][pref[2].id].meta["preference"] == {"chosen": 0, "rejected": 1}

    # Frozen: the same answers pull to the same snapshot; the command line says so.
    assert pull(conn, "suite-chat", reviews) == (chat_folder, False)
    out = refinery("review", "pull", "suite-chat", "--out", str(reviews), "--policy", "latest", env=owner_env)
    assert out.returncode == 0, out.stderr
    assert "answers unchanged" in out.stdout and str(chat_folder) in out.stdout

    # The publish recipe: review.pull -> io.write_jsonl -> export.dataset.
    run = tmp_path / "publish"
    res = refinery("run", "recipes/review_publish.yaml", f"steps.reviewed.snapshot={chat_folder}",
                   f"steps.export.registry={tmp_path / 'registry'}", "--run-dir", str(run), "--no-progress",
                   env=owner_env)
    assert res.returncode == 0, res.stderr
    published = [Sample.from_json(line) for line in (run / "reviewed.jsonl").read_text().splitlines()]
    assert len(published) == 5 and any(s.messages[-1].content == "Fixed answer zero." for s in published)
    rejected = refinery("inspect", str(run), "--step", "reviewed", "--rejected", "--json", "--limit", "1000",
                        env=owner_env)
    assert rejected.stdout.count('"reason": "pending_review"') == 391


def test_push_step_in_a_recipe_is_idempotent_across_runs(conn, tmp_path, owner_env):
    recipe = tmp_path / "push.yaml"
    recipe.write_text(
        "name: pushrecipe\nsteps:\n"
        "  src: {use: source.synthetic, n: 60, duplicate_rate: 0.0}\n"
        f"  review: {{use: review.push, after: [src], dataset: recipe, workspace: {WORKSPACE}, batch_size: 25, "
        "vectors: minilm}\n")
    for run in ("a", "b"):  # two run folders, two journals: the second run upserts the same 60 records
        res = refinery("run", str(recipe), "--run-dir", str(tmp_path / run), "--no-progress", env=owner_env)
        assert res.returncode == 0, res.stderr
        stats = json.loads(next((tmp_path / run / "steps").glob("review-*/_SUCCESS")).read_text())["stats"]
        assert stats["counters"]["pushed_chat"] == 60 and stats["out"] == 60, stats
    handle = find_dataset(conn, "recipe-chat", WORKSPACE)
    assert count_records(conn, handle.id) == 60
    # "Find similar" in the UI: a vector search from one record returns its nearest records.
    first = next(fetch_records(conn, handle.id, {}))["record_id"]
    with conn.http() as http:
        r = http.post(f"/api/v1/datasets/{handle.id}/records/search", params={"limit": 3},
                      json={"query": {"vector": {"name": "embedding", "record_id": first}}})
    scores = [item["query_score"] for item in r.raise_for_status().json()["items"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and scores[0] > 0.5


def test_stack_status_command(stack):
    res = refinery("review", "stack", "status", "--dir", str(stack.root), env={})
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout)
    assert status["healthy"] and all(status["running"].values())
