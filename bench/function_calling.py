"""Function calling on a real teacher: how many seeds become a kept sample, per case, and why the rest drop.

Runs `generate.function_calling` (catalog builtin, the default cases drawn per seed) over N personas
sampled for coverage, and reports per case attempted / kept, the drop reasons, the invalid-call rate of the
kept samples (every call re-validated here against its tool's JSON Schema; must be 0), and how many kept
samples go on after the answer (follow-up turn), and how many kept samples exist only because of the
`reanchor` and `call_attempts` machinery (first calls read off the request, first calls asked again). Model answers are cached under --dir, so a rerun costs
nothing. Run by hand:

    .venv/bin/python bench/function_calling.py --n 40            # --model embedded-qwen-1.5b

The last line is one JSON object with those figures and the minutes it took.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personas.bank import load_bank  # noqa: E402
from personas.sampler import sample_personas  # noqa: E402
from pipelines.core.registry import get_component, load_components  # noqa: E402
from pipelines.core.sample import Sample  # noqa: E402
from pipelines.core.step import StepContext  # noqa: E402
from pipelines.llm.client import LLMConfig  # noqa: E402
from pipelines.tools.schema import validate_calls  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--model", default="embedded-qwen-0.5b")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=Path("runs/bench-function-calling"))
    args = ap.parse_args()
    load_components()
    started = time.perf_counter()
    args.dir.mkdir(parents=True, exist_ok=True)
    personas = sample_personas(load_bank(), args.n, seed=args.seed, strategy="coverage", pool=400)
    seeds = [Sample(kind="seed", persona=p.model_dump()) for p in personas]
    cls = get_component("generate.function_calling")
    cfg = LLMConfig(model=args.model, temperature=args.temperature, seed=args.seed).model_dump()
    step = cls(cls.Params(), StepContext("calls", "bench", "fp", args.dir, llm_config=cfg))
    try:
        out = list(step.run(iter(seeds)))
    finally:
        step.ctx.close()
    cases: dict[str, Counter] = {}
    reasons: Counter = Counter()
    invalid = follow_ups = reanchored = retried = 0
    for s in out:
        case = s.meta.get("case") or (s.verdicts[-1].details.get("case") if s.dropped else None) or "unknown"
        c = cases.setdefault(case, Counter())
        c["attempted"] += 1
        if s.dropped:
            reasons[f"{case}:{s.verdicts[-1].reason}"] += 1
            continue
        c["kept"] += 1
        invalid += bool(validate_calls([t for m in s.messages for t in m.tool_calls], s.tools))
        follow_ups += s.messages[-2].role == "user"
        reanchored += s.provenance.get("first_calls") == "from_request"  # kept only thanks to `reanchor`
        retried += bool(s.provenance.get("call_retries"))  # kept only thanks to `call_attempts`
    with (args.dir / "samples.jsonl").open("w") as f:
        for s in out:
            f.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
    tool_cases = [k for k in cases if k != "no_tool"]
    kept = sum(c["kept"] for c in cases.values())
    print(json.dumps({
        "model": args.model, "seeds": len(out), "kept": kept,
        "per_case": {k: f"{c['kept']}/{c['attempted']}" for k, c in sorted(cases.items())},
        "tool_calling_kept_share": round(sum(cases[k]["kept"] for k in tool_cases) /
                                         max(1, sum(cases[k]["attempted"] for k in tool_cases)), 3),
        "invalid_call_rate_kept": round(invalid / kept, 3) if kept else None,
        "with_follow_up": follow_ups, "kept_after_reanchor": reanchored, "kept_after_call_retry": retried, "dropped": dict(reasons.most_common()),
        "minutes": round((time.perf_counter() - started) / 60, 2),
    }))


if __name__ == "__main__":
    main()
