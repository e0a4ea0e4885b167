"""Crash safety, measured: SIGKILL a real multi-turn run (embedded model) at random points and resume.

Each trial: start the run, kill its whole process group after a random number of answered model
requests (uniform over the run), rerun the same command to the end, and compare the final samples with an
uninterrupted reference run; the model cache's call log tells whether any prompt was answered twice.

    .venv/bin/python bench/resume.py [--trials 10] [--seed 0]

Last line: {"trials": 10, "identical": N, "prompts_sent_twice": N}
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.llm.cache import cache_report  # noqa: E402
from tests.support.crash import QUICK, after_calls, final_records, model_calls, run_and_kill, run_to_end  # noqa: E402

RECIPE = "recipes/multi_turn.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    identical = twice = 0
    with tempfile.TemporaryDirectory(prefix="refinery-resume-") as tmp:
        reference = Path(tmp) / "reference"
        run_to_end(RECIPE, reference, QUICK)
        total = model_calls(reference)
        expected = final_records(reference)
        for trial in range(args.trials):
            run_dir = Path(tmp) / f"trial-{trial}"
            k = rng.randint(1, total - 1)
            killed = run_and_kill(RECIPE, run_dir, QUICK, after_calls(k))
            calls_at_kill = model_calls(run_dir)
            run_to_end(RECIPE, run_dir, QUICK)
            same = final_records(run_dir) == expected
            report = cache_report(run_dir / "llm_cache.sqlite")
            identical += same
            twice += report["prompts_sent_twice"]
            print(f"trial {trial}: kill after {k} calls (killed={killed}, {calls_at_kill} answered at kill), "
                  f"identical={same}, model calls {report['model_calls']}/{total}, "
                  f"sent twice {report['prompts_sent_twice']}", file=sys.stderr)
            shutil.rmtree(run_dir)
    print(json.dumps({"trials": args.trials, "identical": identical, "prompts_sent_twice": twice}))


if __name__ == "__main__":
    main()
