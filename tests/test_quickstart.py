"""The README's first command as a newcomer runs it: the quickstart recipe, on a fresh copy of the
repository, in an empty run directory, with several workers racing to create the run's shared files.

This is the guard for `bash scripts/quickstart.sh` (issue 12: a fresh run failed with "database is
locked" while every test passed, because no test started from an empty run directory with 2+ workers).
It runs the same recipe with the same command the script runs, at a smaller size, on the real embedded
teacher.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fresh_copy(dest: Path) -> Path:
    """The files a clone would have (tracked and new, never ignored ones such as runs/ or .venv/)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(src.read_bytes())
    return dest


def test_quickstart_first_run_in_a_fresh_copy(tmp_path):
    repo = _fresh_copy(tmp_path / "main")
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")  # the layout of a clone beside shared/
    env = {**os.environ, "PYTHONPATH": str(repo), "REFINERY_DATASETS": str(tmp_path / "datasets")}
    script = (ROOT / "scripts" / "quickstart.sh").read_text()
    assert ".venv/bin/refinery run recipes/quickstart.yaml" in script  # the command this test repeats

    def refinery(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=1500)

    assert not (repo / "runs").exists()
    run = refinery("run", "recipes/quickstart.yaml", "steps.personas.n=4", "steps.doc_personas.n=2",
                   "steps.problems.limit=2", "steps.evolve_personas.n=2", "--workers", "2", "--no-progress")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    final = repo / "runs" / "quickstart" / "final.jsonl"
    rows = [json.loads(line) for line in final.read_text().splitlines()]
    assert rows and all(r["messages"] for r in rows)
    manifest = json.loads((repo / "runs" / "quickstart" / "run.json").read_text())
    assert manifest["status"] == "finished"
    shown = refinery("datasets", "show", "quickstart@latest")
    assert shown.returncode == 0, shown.stderr
    assert "v1" in shown.stdout or "v0001" in shown.stdout
    assert (tmp_path / "datasets" / "quickstart").is_dir()

    # The report step's page, in a real browser with the network cut off: every figure drawn with data,
    # the model's cost included (this is the suite's run on a real model), and no error logged.
    from tests.report.browser import FIGURE_STATE, chromium, open_offline

    with chromium() as browser:
        page, problems, fetched = open_offline(browser, repo / "runs" / "quickstart" / "report.html")
        figures = page.evaluate(FIGURE_STATE)
        assert {f["name"] for f in figures} >= {"funnel", "drops", "yield_process", "yield_case", "cost", "map"}
        assert all(f["drawn"] and f["points"] > 0 for f in figures), figures
        assert not problems and not fetched, (problems, fetched)
