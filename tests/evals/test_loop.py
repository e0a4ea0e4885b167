"""The closed loop as one recipe on real components: export -> eval the SmolLM2-135M student -> SFT it on the
exported version -> eval the checkpoint -> compare, with the comparison in the run directory and in
`refinery status`, and a rerun that resumes instead of training again. The data is BFCL's training-side
ground truth (this test is about the loop's plumbing; bench/loop.py measures teacher-written data)."""

import json
import subprocess
import sys

from pipelines.tools.catalog import bfcl_held_out
from tests.formats.samples import bfcl_samples

RECIPE = """
name: loop-test
shard_size: 8
steps:
  samples: {{use: io.read_jsonl, path: {data}}}
  export: {{use: export.dataset, after: [samples], name: loop-test, validation: 0.0, registry: {registry}}}
  eval_before: {{use: eval.functional, after: [export], model: smollm2-135m, suites: [bfcl_simple, irrelevance],
                limit: 2, formats: [lfm2]}}
  train: {{use: train.sft, after: [eval_before], dataset_from: export, model: smollm2-135m,
          config: {{max_steps: 3, per_device_train_batch_size: 4, learning_rate: 5.0e-5, logging_steps: 1,
                   save_steps: 3, max_length: 768}}}}
  eval_after: {{use: eval.functional, after: [train], model_from: train, suites: [bfcl_simple, irrelevance],
               limit: 2, formats: [lfm2]}}
  compare: {{use: eval.compare, after: [eval_after], before: eval_before, after_eval: eval_after}}
  report: {{use: report.html, after: [compare]}}
"""


def refinery(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True,
                          timeout=1200)


def test_loop_recipe_trains_evaluates_compares_and_resumes(tmp_path):
    train = [s for s in bfcl_samples() if not any(bfcl_held_out(t["function"]["name"]) for t in s.tools)][:24]
    data = tmp_path / "samples.jsonl"
    data.write_text("".join(s.to_json() + "\n" for s in train))
    recipe = tmp_path / "loop.yaml"
    recipe.write_text(RECIPE.format(data=data, registry=tmp_path / "datasets"))
    run_dir = tmp_path / "run"
    r = refinery("run", str(recipe), "--run-dir", str(run_dir), "--no-progress", "--workers", "1")
    assert r.returncode == 0, r.stderr[-3000:]

    trained = json.loads((run_dir / "train-train.json").read_text())
    assert trained["dataset"] == "loop-test@v1" and trained["summary"]["global_step"] == 3
    before = json.loads((run_dir / "eval-eval_before" / "summary.json").read_text())
    after = json.loads((run_dir / "eval-eval_after" / "summary.json").read_text())
    assert before["model"].endswith("smollm2-135m-hf") and after["model"] == trained["checkpoint"]
    # The eval states what it shares with training: no function, and no 13-word run of a question.
    assert after["held_out"] == {"function_names_in_training_catalog": [], "questions_with_13gram_in_training": []}
    compared = json.loads((run_dir / "compare-compare.json").read_text())
    assert set(compared) == {"bfcl_simple", "irrelevance"}
    for suite, c in compared.items():
        assert c["n"] == 2 and c["before"] == before["best"][suite]["accuracy"]
        assert c["after"] == after["best"][suite]["accuracy"] and c["ci"][0] <= c["delta"] <= c["ci"][1]
    # The run report shows both evals and the comparison, with the comparison's own numbers.
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    evals = html[html.index('<section id="evals">'):html.index('<section id="samples">')]
    assert "eval-eval_before" in evals and "eval-eval_after" in evals and "compare-compare" in evals
    for suite, c in compared.items():
        assert f"<td>{suite}</td><td class=\"n\">2</td><td class=\"n\">{c['before']:.3f}</td>" in evals
    status = refinery("status", str(run_dir))
    assert status.returncode == 0 and "before and after training" in status.stdout and "bfcl_simple" in status.stdout

    # A rerun resumes: every step is finished, nothing is trained or evaluated again.
    stamp = (run_dir / "train-train.json").stat().st_mtime_ns
    again = refinery("run", str(recipe), "--run-dir", str(run_dir), "--no-progress", "--workers", "1")
    assert again.returncode == 0 and (run_dir / "train-train.json").stat().st_mtime_ns == stamp
