"""The local executor and run directory, end to end with cheap real steps (no model)."""

import json
import os
from pathlib import Path

import pytest

from pipelines.core.executor import RunFailed, run_recipe
from pipelines.core.recipe import load_recipe
from pipelines.core.shards import read_shard
from pipelines.core.store import StepDir, read_run_manifest

RECIPE = """\
name: engine-test
shard_size: 50
workers: 2
steps:
  source: {use: source.synthetic, n: 400, seed: 1, duplicate_rate: 0.2}
  length: {use: filter.length, after: [source], min_chars: 1}
  dedup:  {use: filter.exact_dedup, after: [length]}
  final:  {use: io.write_jsonl, after: [dedup]}
"""


@pytest.fixture(autouse=True)
def plugins(monkeypatch):
    monkeypatch.setenv("REFINERY_PLUGINS", "tests.core.engine_components")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[2]))


def write(tmp_path: Path, text: str = RECIPE) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def final_ids(run_dir: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (run_dir / "final.jsonl").read_text().splitlines()]


def test_run_counts_drops_and_rejects(tmp_path):
    run_dir = tmp_path / "run"
    result = run_recipe(load_recipe(write(tmp_path)), run_dir)
    src, dedup = result.steps["source"], result.steps["dedup"]
    assert src["out"] == 400 and src["shards"] == 8
    assert dedup["in"] == 400
    assert dedup["out"] + dedup["dropped"]["exact_duplicate"] == 400
    assert dedup["dropped"]["exact_duplicate"] > 40
    ids = final_ids(run_dir)
    assert len(ids) == len(set(ids)) == dedup["out"]
    manifest = read_run_manifest(run_dir)
    assert manifest["status"] == "finished" and manifest["final_steps"] == ["final"]
    sd = StepDir(run_dir / manifest["steps"]["dedup"]["dir"])
    rejects = [s for p in sd.reject_paths() for s in read_shard(p)]
    assert len(rejects) == dedup["dropped"]["exact_duplicate"]
    kept = set(ids)
    for r in rejects:
        v = r.verdicts[-1]
        assert not v.keep and v.reason == "exact_duplicate" and v.duplicate_of in kept


def test_rerun_reuses_everything_and_changes_invalidate_only_downstream(tmp_path):
    run_dir = tmp_path / "run"
    recipe = write(tmp_path)
    first = run_recipe(load_recipe(recipe), run_dir)
    again = run_recipe(load_recipe(recipe), run_dir)
    assert sorted(again.reused) == ["dedup", "final", "length", "source"]
    changed = run_recipe(load_recipe(recipe, ["steps.dedup.scope=first_user_turn"]), run_dir)
    assert sorted(changed.reused) == ["length", "source"]
    assert changed.steps["length"] == first.steps["length"]


def test_damaged_shard_is_detected_and_recomputed(tmp_path):
    run_dir = tmp_path / "run"
    recipe = write(tmp_path)
    run_recipe(load_recipe(recipe), run_dir)
    before = final_ids(run_dir)
    manifest = read_run_manifest(run_dir)
    shard = StepDir(run_dir / manifest["steps"]["length"]["dir"]).out(3)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    result = run_recipe(load_recipe(recipe), run_dir)
    assert result.repaired == {"length": [3]}
    assert "length" not in result.reused and "source" in result.reused
    assert final_ids(run_dir) == before


def test_unfinished_map_step_resumes_only_missing_shards(tmp_path):
    run_dir = tmp_path / "run"
    recipe = write(tmp_path)
    run_recipe(load_recipe(recipe), run_dir)
    before = final_ids(run_dir)
    manifest = read_run_manifest(run_dir)
    sd = StepDir(run_dir / manifest["steps"]["length"]["dir"])
    (sd.root / "_SUCCESS").unlink()
    sd.stats_file(5).unlink()
    mtimes = {i: sd.out(i).stat().st_mtime_ns for i in range(8)}
    run_recipe(load_recipe(recipe), run_dir)
    assert [i for i in range(8) if sd.out(i).stat().st_mtime_ns != mtimes[i]] == [5]
    assert final_ids(run_dir) == before


def test_failing_step_stops_run_keeps_work_and_resumes(tmp_path):
    flag = tmp_path / "fail"
    flag.write_text("x")
    text = RECIPE.replace(
        "  dedup:  {use: filter.exact_dedup, after: [length]}",
        f"  boom: {{use: test.explode, after: [length], flag_file: '{flag}'}}\n"
        "  dedup:  {use: filter.exact_dedup, after: [boom]}",
    )
    recipe, run_dir = write(tmp_path, text), tmp_path / "run"
    with pytest.raises(RunFailed, match=r"step 'boom' shard \d+: RuntimeError: boom"):
        run_recipe(load_recipe(recipe), run_dir)
    assert read_run_manifest(run_dir)["status"] == "failed"
    flag.unlink()
    result = run_recipe(load_recipe(recipe), run_dir)
    assert {"source", "length"} <= set(result.reused)
    assert len(final_ids(run_dir)) == result.steps["dedup"]["out"]


def test_one_and_two_workers_give_identical_output(tmp_path):
    recipe = write(tmp_path)
    run_recipe(load_recipe(recipe), tmp_path / "w1", workers=1)
    run_recipe(load_recipe(recipe), tmp_path / "w2", workers=2)
    assert final_ids(tmp_path / "w1") == final_ids(tmp_path / "w2")
    assert os.path.getsize(tmp_path / "w1" / "final.jsonl") > 0


def test_source_file_edited_in_place_invalidates_the_source(tmp_path):
    data = tmp_path / "in.jsonl"
    from pipelines.core.sample import Message, Sample

    def write_samples(texts):
        data.write_text("".join(Sample(kind="chat", messages=[Message("user", t), Message("assistant", "ok")]).to_json()
                                + "\n" for t in texts))

    write_samples(["a", "b"])
    recipe = write(tmp_path, f"name: read-test\nsteps:\n  src: {{use: io.read_jsonl, path: '{data}'}}\n"
                             "  final: {use: io.write_jsonl, after: [src]}\n")
    run_recipe(load_recipe(recipe), tmp_path / "run")
    write_samples(["a", "b", "c"])
    result = run_recipe(load_recipe(recipe), tmp_path / "run")
    assert result.reused == [] and result.steps["final"]["out"] == 3


def _step_dir(run_dir: Path, step: str) -> StepDir:
    return StepDir(run_dir / read_run_manifest(run_dir)["steps"][step]["dir"])


def _decisions(samples) -> list[str]:
    """Each sample's id and last verdict (without the step name), in a sortable form."""
    return sorted(json.dumps([s.id, {**s.verdicts[-1].to_dict(), "filter": None}], sort_keys=True) for s in samples)


def test_split_barrier_matches_one_stream_and_resumes_phase_by_phase(tmp_path):
    from tests.filters.conftest import run_step

    run_dir = tmp_path / "run"
    recipe = write(tmp_path)
    run_recipe(load_recipe(recipe), run_dir)
    dedup, length = _step_dir(run_dir, "dedup"), _step_dir(run_dir, "length")
    # Keys and apply ran per shard, decide once: the verdicts are the ones a single stream gives.
    one_stream = run_step("filter.exact_dedup", tmp_path, [s for p in length.output_paths() for s in read_shard(p)])
    parallel = [s for p in dedup.output_paths() + dedup.reject_paths() for s in read_shard(p)]
    assert _decisions(parallel) == _decisions(one_stream)
    assert sum(not s.verdicts[-1].keep for s in parallel) > 40
    assert len(dedup.output_paths()) == len(length.output_paths()) == 8

    # A run killed between phases: one shard's keys missing, plans never committed, one apply unfinished.
    before = final_ids(run_dir)
    (dedup.root / "_SUCCESS").unlink()
    (dedup.root / "plans" / "_DECIDED.json").unlink()
    dedup.keys_file(3).unlink()
    dedup.stats_file(6).unlink()
    keys_mtimes = {i: dedup.keys_file(i).stat().st_mtime_ns for i in range(8) if i != 3}
    out_mtimes = {i: dedup.out(i).stat().st_mtime_ns for i in range(8)}
    result = run_recipe(load_recipe(recipe), run_dir)
    assert {i: dedup.keys_file(i).stat().st_mtime_ns for i in keys_mtimes} == keys_mtimes  # only 3 redone
    assert dedup.keys_file(3).exists() and dedup.decided() is not None
    assert [i for i in range(8) if dedup.out(i).stat().st_mtime_ns != out_mtimes[i]] == [6]
    assert final_ids(run_dir) == before
    assert result.steps["dedup"]["in"] == 400


def test_passthrough_writer_links_its_input_shards(tmp_path):
    run_dir = tmp_path / "run"
    run_recipe(load_recipe(write(tmp_path)), run_dir)
    dedup, final = _step_dir(run_dir, "dedup"), _step_dir(run_dir, "final")
    for a, b in zip(dedup.output_paths(), final.output_paths(), strict=True):
        assert a.stat().st_ino == b.stat().st_ino  # the same file, not a second copy
    kept = [s.id for p in dedup.output_paths() for s in read_shard(p)]
    assert final_ids(run_dir) == kept
