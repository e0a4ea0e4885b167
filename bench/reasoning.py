"""Reasoning by rejection sampling on GSM8K train problems, on a real teacher: how often is it right?

Runs `generate.reasoning` (chat, `attempts` solutions per problem, math-verify against the reference)
over the first N problems of a seeded shuffle of ../shared/data/gsm8k/train.jsonl and reports:
- first_attempt_correct: share of problems whose first attempt verifies (an attempt with no final answer is wrong);
- any_verified: share of problems with at least one verified attempt among `attempts` (the yield);
- kept_verified: share of kept samples whose answer verifies against the reference, re-checked here
  independently of the generator (must be 1.0);
- right_answer_slipped: attempts whose final answer verifies but whose written arithmetic is wrong
  (`pipelines.formats.worked_steps`), which the generator does not keep; kept_with_slips must be 0;
- pairs: kept samples that also carry a (right, wrong) preference pair.
Model answers are cached under --dir, so a rerun costs nothing. Run by hand:

    .venv/bin/python bench/reasoning.py --n 100 --attempts 4          # --model embedded-qwen-1.5b

The last line is one JSON object with those figures, the drop reasons and the minutes it took.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.formats.math_answers import answers_match  # noqa: E402
from pipelines.formats.worked_steps import slips  # noqa: E402
from pipelines.core.registry import get_component, load_components  # noqa: E402
from pipelines.core.step import StepContext  # noqa: E402
from pipelines.llm.client import LLMConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--attempts", type=int, default=4)
    ap.add_argument("--model", default="embedded-qwen-0.5b")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--dir", type=Path, default=Path("runs/bench-reasoning"))
    args = ap.parse_args()
    load_components()
    started = time.perf_counter()
    args.dir.mkdir(parents=True, exist_ok=True)
    seeds_cls = get_component("seeds.gsm8k")
    seeds = list(seeds_cls(seeds_cls.Params(limit=args.n, shuffle_seed=0),
                           StepContext("problems", "bench", "fp", args.dir)).run(iter([])))
    cls = get_component("generate.reasoning")
    cfg = LLMConfig(model=args.model, temperature=args.temperature, seed=0).model_dump()
    step = cls(cls.Params(attempts=args.attempts, max_reasoning_tokens=448),
               StepContext("solve", "bench", "fp", args.dir, llm_config=cfg))
    try:
        out = list(step.run(iter(seeds)))
    finally:
        step.ctx.close()
    first = any_ok = slipped = 0
    for s in out:
        attempts = s.meta.get("attempts") or (s.verdicts[-1].details.get("attempts") if s.dropped else None) or []
        first += bool(attempts and attempts[0].get("correct"))
        any_ok += any(a.get("correct") for a in attempts)
        slipped += sum(bool(a.get("slips")) and answers_match(s.meta["reference_answer"], a["answer"] or "")[0]
                       for a in attempts)
    kept = [s for s in out if not s.dropped]
    verified = sum(answers_match(s.meta["reference_answer"], s.messages[-1].content)[0] for s in kept)
    with (args.dir / "samples.jsonl").open("w") as f:
        for s in out:
            f.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
    print(json.dumps({
        "model": args.model, "problems": len(out), "attempts": args.attempts,
        "first_attempt_correct": round(first / len(out), 4), "any_verified": round(any_ok / len(out), 4),
        "kept": len(kept), "kept_verified": round(verified / len(kept), 4) if kept else None,
        "pairs": sum(bool(s.candidates) for s in kept),
        "right_answer_slipped": slipped,
        "kept_with_slips": sum(bool(slips(s.messages[-1].reasoning or "")) for s in kept),
        "dropped": dict(Counter(s.verdicts[-1].reason for s in out if s.dropped)),
        "minutes": round((time.perf_counter() - started) / 60, 2),
    }))


if __name__ == "__main__":
    main()
