"""Kill a real `refinery run` with SIGKILL at chosen points and resume it (used by tests and bench/resume.py).

Kill points are events, not times: "after the model has answered k requests" (counted in the cache's
`calls` log), so a test kills at the same stage however fast the machine is.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["steps.personas.n=6", "steps.chat.turns=1", "shard_size=2", "steps.chat.max_assistant_tokens=48",
         "steps.chat.max_user_tokens=32"]


def command(recipe: str, run_dir: Path, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "run", recipe, *overrides, "--run-dir", str(run_dir),
            "--no-progress"]


def run_to_end(recipe: str, run_dir: Path, overrides: list[str], timeout: float = 900) -> None:
    r = subprocess.run(command(recipe, run_dir, overrides), cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"refinery run failed ({r.returncode}):\n{r.stderr[-3000:]}")


def model_calls(run_dir: Path) -> int:
    """Calls logged in the run's cache file and in the per-worker parts of a Ray run that are not folded
    in yet (a part a live worker holds cannot be read: it counts 0 until its task ends)."""
    db = run_dir / "llm_cache.sqlite"
    return sum(_calls(p) for p in [db, *sorted((run_dir / "llm_cache.parts").glob("*.sqlite"))])


def _calls(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0 if db.parent.name.endswith(".parts") else 5)
        try:
            return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0  # the table is not created yet, or a live worker holds the part


def run_and_kill(recipe: str, run_dir: Path, overrides: list[str], when: Callable[[Path], bool],
                 timeout: float = 900) -> bool:
    """Start a run; SIGKILL its whole process group (workers too) once `when(run_dir)` holds.
    Returns False if the run finished before the kill point was reached."""
    p = subprocess.Popen(command(recipe, run_dir, overrides), cwd=ROOT, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if p.poll() is not None:
                return False
            if when(run_dir):
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                return True
            time.sleep(0.02)
        raise TimeoutError("run neither finished nor reached the kill point")
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def after_calls(k: int) -> Callable[[Path], bool]:
    return lambda run_dir: model_calls(run_dir) >= k


def after_seconds(s: float) -> Callable[[Path], bool]:
    start = time.monotonic()
    return lambda run_dir: time.monotonic() - start >= s


def final_ids(run_dir: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (run_dir / "final.jsonl").read_text().splitlines()]


def final_records(run_dir: Path) -> list[dict]:
    """The final samples without provenance fields that legitimately differ between runs (latency)."""
    out = []
    for line in (run_dir / "final.jsonl").read_text().splitlines():
        d = json.loads(line)
        d["provenance"] = {k: v for k, v in d["provenance"].items() if k not in ("latency_s", "cached")}
        out.append(d)
    return out
