"""The ray executor on a real two-node Ray cluster started on this machine (`ray.cluster_utils.Cluster`):
the same output as the local executor, resume after the driver is SIGKILLed, a worker node lost mid-run,
and one clear line (exit 2) when Ray or the cluster is missing or a step asks more than any node has."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.core.shards import read_shard
from pipelines.llm.cache import cache_report
from tests.core.test_executor import RECIPE
from tests.support.crash import QUICK, final_records, model_calls

ROOT = Path(__file__).resolve().parents[2]
# The local executor's test recipe, with a resource request on its map step.
ENGINE = RECIPE.replace("min_chars: 1}", "min_chars: 1, resources: {num_cpus: 1}}")
assert ENGINE != RECIPE


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1}, connect=False)
    worker = c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c, worker
    c.shutdown()


def refinery(*args, timeout=900, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REFINERY_PLUGINS": "tests.core.engine_components"}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def run_cmd(recipe, run_dir, *extra):
    return ["run", str(recipe), *extra, "--run-dir", str(run_dir), "--no-progress"]


def engine_recipe(tmp_path, text=ENGINE):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_ray_gives_the_local_output_with_the_same_fingerprints(cluster, tmp_path):
    c, _ = cluster
    recipe = engine_recipe(tmp_path)
    local = refinery(*run_cmd(recipe, tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    on_ray = refinery(*run_cmd(recipe, tmp_path / "ray", "--executor", "ray", "--address", c.address))
    assert on_ray.returncode == 0, on_ray.stderr
    assert (tmp_path / "ray" / "final.jsonl").read_bytes() == (tmp_path / "local" / "final.jsonl").read_bytes()
    runs = {k: json.loads((tmp_path / k / "run.json").read_text()) for k in ("local", "ray")}
    assert runs["ray"]["executor"] == "ray" and runs["local"]["executor"] == "local"
    assert {n: s["fingerprint"] for n, s in runs["ray"]["steps"].items()} == \
        {n: s["fingerprint"] for n, s in runs["local"]["steps"].items()}
    # Moving a finished run between executors reuses it: nothing runs again.
    again = refinery(*run_cmd(recipe, tmp_path / "ray"))
    assert again.returncode == 0 and "reused finished steps: source, length, dedup, final" in again.stderr


def test_missing_ray_missing_cluster_and_impossible_resources_are_one_line(cluster, tmp_path):
    c, _ = cluster
    recipe = engine_recipe(tmp_path)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    r = refinery(*run_cmd(recipe, tmp_path / "x", "--executor", "ray", "--address", f"127.0.0.1:{port}"))
    assert r.returncode == 2 and f"no Ray cluster at 127.0.0.1:{port}" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and time.monotonic() - started < 60
    assert not (tmp_path / "x").exists()  # nothing was written
    big = engine_recipe(tmp_path, ENGINE.replace("resources: {num_cpus: 1}", "resources: {num_cpus: 8}"))
    r = refinery(*run_cmd(big, tmp_path / "y", "--executor", "ray", "--address", c.address), timeout=120)
    assert r.returncode == 1 and "asks num_cpus=8, but no node of the cluster has that much" in r.stderr
    bad = refinery(*run_cmd(recipe, tmp_path / "z", "--executor", "spark"))
    assert bad.returncode == 2 and "--executor: expected one of local, ray" in bad.stderr
    # Ray not importable: the message says how to get it.
    no_ray = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['ray'] = None; from pipelines.cli import main; main()",
         *run_cmd(recipe, tmp_path / "w", "--executor", "ray")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert no_ray.returncode == 2 and "needs Ray: pip install -e '.[ray]'" in no_ray.stderr


def _ray_llm_run(run_dir, address):
    return [sys.executable, "-m", "pipelines.cli", *run_cmd("recipes/multi_turn.yaml", run_dir, *QUICK, "--executor",
                                                           "ray", "--address", address)]


def _start(cmd):
    return subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _wait_for_a_chat_shard(run_dir, p, timeout=900):
    """Until the chat step has committed a shard. (On Ray the workers' cache parts are locked while their
    tasks run, so a count of model calls is not readable mid-task; a committed shard is.)"""
    deadline = time.monotonic() + timeout
    while not list(run_dir.glob("steps/chat-*/stats/*.json")):
        assert p.poll() is None, f"the run ended before a chat shard: {p.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.slow
def test_real_model_on_ray_driver_killed_and_worker_node_lost(cluster, tmp_path):
    """A quickstart-shaped recipe on the real embedded model: local and Ray give the same samples; the
    driver SIGKILLed mid-run and rerun changes nothing and no prompt reaches the model twice; a worker node
    removed mid-run changes nothing in the output."""
    c, worker = cluster
    reference = tmp_path / "local"
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", *run_cmd("recipes/multi_turn.yaml", reference, *QUICK)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    total = model_calls(reference)

    killed = tmp_path / "driver-killed"
    p = _start(_ray_llm_run(killed, c.address))
    _wait_for_a_chat_shard(killed, p)
    os.killpg(p.pid, signal.SIGKILL)  # the driver only: the cluster and its workers live on
    p.wait()
    # The workers answered into cache parts of their own; nothing is folded into the main file mid-run.
    assert list((killed / "llm_cache.parts").glob("*.sqlite"))
    assert 0 < model_calls(killed) < total
    r = subprocess.run(_ray_llm_run(killed, c.address), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert final_records(killed) == final_records(reference)
    # The rerun folded the killed run's parts in first, so every answer they held was reused.
    report = cache_report(killed / "llm_cache.sqlite")
    assert report["prompts_sent_twice"] == 0 and report["model_calls"] == total
    assert not list((killed / "llm_cache.parts").glob("*.sqlite"))

    lost = tmp_path / "node-lost"
    p = _start(_ray_llm_run(lost, c.address))
    _wait_for_a_chat_shard(lost, p)
    c.remove_node(worker)  # its tasks die with it; Ray runs them again on the head node
    try:
        assert p.wait(timeout=900) == 0, p.stderr.read()[-2000:]
    finally:
        c.add_node(num_cpus=1)
    assert final_records(lost) == final_records(reference)
    # Every answer is in the main file at the end. A task lost with its node is asked again in full by its
    # retry (the lost worker's part is not folded in until the run ends), so prompts may repeat here.
    assert cache_report(lost / "llm_cache.sqlite")["entries"] == cache_report(reference / "llm_cache.sqlite")["entries"]
    assert not list((lost / "llm_cache.parts").glob("*.sqlite"))


def test_engine_replicas_on_the_cluster_answer_as_the_step_alone(cluster, tmp_path):
    """`llm.ray_replicas`: a generation step on the Ray executor sends its requests to one shared engine
    replica (a Ray actor holding a transformers model, a tiny random LFM2) and gets exactly the answers the
    local executor's in-process engine gives; the run's driver stops the replica at the end."""
    import ray

    from tests.llm.tiny_lfm2 import build_tiny_lfm2

    c, _ = cluster
    model = build_tiny_lfm2(tmp_path / "tiny-lfm2")
    llm = ["llm.backend=transformers", f"llm.model={model}", "llm.n_threads=1", "llm.batch_size=2"]
    local = subprocess.run([sys.executable, "-m", "pipelines.cli",
                            *run_cmd("recipes/multi_turn.yaml", tmp_path / "local", *QUICK, *llm)],
                           cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert local.returncode == 0, local.stderr[-2000:]
    # The step's tasks only dispatch (num_cpus 0), so they never hold the CPU the replica needs.
    on_ray = refinery(*run_cmd("recipes/multi_turn.yaml", tmp_path / "ray", *QUICK, *llm, "llm.ray_replicas=1",
                               "steps.chat.resources.num_cpus=0", "--executor", "ray", "--address", c.address))
    assert on_ray.returncode == 0, on_ray.stderr[-2000:]
    runs = {k: json.loads((tmp_path / k / "run.json").read_text()) for k in ("local", "ray")}
    assert runs["ray"]["steps"]["chat"]["fingerprint"] == runs["local"]["steps"]["chat"]["fingerprint"]
    # The same samples, answers and verdicts, kept or dropped (the random model's JSON user turns fail
    # their schema after the retries: every chat is dropped with that reason, identically both ways).
    local_dir, ray_dir = (tmp_path / k / runs[k]["steps"]["chat"]["dir"] for k in ("local", "ray"))
    both = [sorted(s.to_json() for p in sorted(d.glob("*/*.parquet")) for s in read_shard(p))
            for d in (local_dir, ray_dir)]
    assert both[0] == both[1] and len(both[0]) == 6
    assert cache_report(tmp_path / "ray" / "llm_cache.sqlite")["model_calls"] == model_calls(tmp_path / "local")
    ray.init(address=c.address, log_to_driver=False)
    try:
        left = [a for a in ray.util.list_named_actors(all_namespaces=True)
                if a["namespace"].startswith("refinery-replicas")]
    finally:
        ray.shutdown()
    assert left == []


def test_the_driver_stops_a_run_whose_workers_together_cross_the_budget(cluster, tmp_path):
    """On Ray each worker's guard sees only its own cache part, so the budget is also counted by the driver
    over every finished task: with a budget one token short of what the whole step spends, no worker alone
    reaches it, and the run stops with the budget's line; a larger budget resumes without asking again."""
    from tests.llm.tiny_lfm2 import build_tiny_lfm2

    c, _ = cluster
    model = build_tiny_lfm2(tmp_path / "tiny-lfm2")
    llm = ["llm.backend=transformers", f"llm.model={model}", "llm.n_threads=1", "llm.batch_size=2"]
    local = refinery(*run_cmd("recipes/multi_turn.yaml", tmp_path / "local", *QUICK, *llm))
    assert local.returncode == 0, local.stderr[-2000:]
    shards = [json.loads(p.read_text())["counters"] for p in (tmp_path / "local").glob("steps/chat-*/stats/*.json")]
    per_shard = [s["llm_tokens_in"] + s["llm_tokens_out"] for s in shards]
    assert len(per_shard) == 3 and min(per_shard) > 1
    budget = f"llm.max_total_tokens={sum(per_shard) - 1}"
    ray_run = tmp_path / "ray"
    stopped = refinery(*run_cmd("recipes/multi_turn.yaml", ray_run, *QUICK, *llm, budget, "--executor", "ray",
                                "--address", c.address))
    assert stopped.returncode != 0
    # The driver's line ("step 'chat':", no shard): two nodes share the three tasks, so neither worker's
    # own share reaches the budget.
    assert "step 'chat': BudgetExceeded: token budget spent" in stopped.stderr
    assert "raise the budget" in stopped.stderr
    resumed = refinery(*run_cmd("recipes/multi_turn.yaml", ray_run, *QUICK, *llm, "llm.max_total_tokens=10000000",
                                "--executor", "ray", "--address", c.address))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = cache_report(ray_run / "llm_cache.sqlite")
    assert report["prompts_sent_twice"] == 0 and report["model_calls"] == model_calls(tmp_path / "local")
