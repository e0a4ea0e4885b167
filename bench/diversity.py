"""Diversity of generated data: with vs without persona sampling, and one process vs the mix of processes.

Same model (the default teacher, embedded Qwen2.5-Coder-0.5B-Instruct, unless --model), same budget (N seeds per configuration, same
sampling settings), three configurations:

- plain:   generate.multi_turn (one exchange) from N seeds without a persona: the same prompt, N seeds;
- persona: generate.multi_turn from N personas (personas.sample strategy coverage): one process;
- mix:     the same N personas dealt round-robin over every process: multi_turn, reasoning, evolve,
           grounded (bundled documents, the persona asks) and function_calling when it is registered.

Measured on the kept samples' user/assistant text (reasoning and tool calls included, system turns such
as grounded documents excluded): distinct-2 (distinct word bigrams / all bigrams), the Vendi score over
all-MiniLM-L6-v2 embeddings (personas.embeddings.vendi_score: exp of the entropy of the eigenvalues of
the normalised cosine-similarity matrix) and the mean nearest-neighbour cosine similarity. Vendi grows
with the number of items, and the configurations lose different numbers of samples to the processes'
checks, so each comparison is made at the same count k (the smaller side's kept samples): both sides are
subsampled to k, --draws times with a seeded shuffle, and the figures are the means over the draws (with
their standard deviation, and k, in the details).
Model answers are cached under --dir (with the measured samples in samples-t<temperature>.jsonl), so a rerun costs
nothing, and a larger --n only asks for the new seeds. Run by hand:

    .venv/bin/python bench/diversity.py --n 48                    # --model embedded-gemma-270m, --temperature 0.3

The last line is one JSON object: vendi_persona, vendi_plain, vendi_ratio (target >= 1.3), distinct2_persona,
distinct2_plain, vendi_mix, vendi_single_process, and the details behind them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personas.bank import load_bank  # noqa: E402
from personas.coverage_step import distinct_n  # noqa: E402
from personas.embeddings import embed, nearest_neighbour_similarity, vendi_score  # noqa: E402
from personas.sampler import sample_personas  # noqa: E402
from pipelines.core.registry import get_component, load_components  # noqa: E402
from pipelines.core.sample import Sample, canonical_json  # noqa: E402
from pipelines.core.step import StepContext  # noqa: E402
from pipelines.llm.client import LLMConfig  # noqa: E402

PROCESS_PARAMS = {
    "generate.multi_turn": {"turns": 1, "max_user_tokens": 48, "max_assistant_tokens": 96},
    # Chat reasoning writes worked steps then an "Answer:" line; cut shorter it is dropped as truncated.
    "generate.reasoning": {"max_reasoning_tokens": 384, "max_answer_tokens": 32},
    "generate.evolve": {"max_instruction_tokens": 64, "max_answer_tokens": 96},
    "generate.grounded": {"max_answer_tokens": 96},
    "generate.function_calling": {},
}


def text_of(s: Sample) -> str:
    parts = []
    for m in s.messages:
        if m.role == "system":
            continue
        body = " ".join(filter(None, [m.reasoning, m.content]))
        if m.tool_calls:
            body += " " + canonical_json([c.to_dict() for c in m.tool_calls])
        parts.append(body)
    return "\n".join(parts)


def run_step(name: str, samples: list[Sample], work: Path, llm: dict, **params) -> list[Sample]:
    cls = get_component(name)
    step = cls(cls.Params(**params), StepContext(name, "bench", "fp", work, llm_config=llm))
    try:
        return list(step.run(iter(samples)))
    finally:
        step.ctx.close()


def measure(texts: list[str], vectors) -> dict[str, float]:
    return {"vendi": vendi_score(vectors), "distinct2": distinct_n(texts),
            "nn_similarity": nearest_neighbour_similarity(vectors)}


def compare(a: list[Sample], b: list[Sample], draws: int, seed: int) -> tuple[dict, dict, int]:
    """Both sides measured at the same count k = min(len(a), len(b)): each subsampled to k `draws` times
    (the smaller side is then only reordered); mean and standard deviation of every figure over the draws."""
    import random

    import numpy as np

    k = min(len(a), len(b))
    sides = []
    for samples in (a, b):
        texts = [text_of(s) for s in samples]
        vectors = embed(texts)
        rng = random.Random(seed)
        runs = []
        for _ in range(draws if len(samples) > k else 1):
            pick = sorted(rng.sample(range(len(samples)), k))
            runs.append(measure([texts[i] for i in pick], vectors[pick]))
        sides.append({key: round(float(np.mean([r[key] for r in runs])), 4) for key in runs[0]} |
                     {f"{key}_sd": round(float(np.std([r[key] for r in runs])), 4) for key in runs[0]})
    return sides[0], sides[1], k


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="seeds per configuration (the prompt budget)")
    ap.add_argument("--dir", default="runs/bench-diversity", help="working folder (model cache)")
    ap.add_argument("--model", default="embedded-qwen-0.5b")
    ap.add_argument("--draws", type=int, default=20, help="subsamples per comparison at the common count k")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=0.8, help="sampling temperature for every process")
    args = ap.parse_args()
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    llm = LLMConfig(model=args.model, seed=args.seed, temperature=args.temperature).model_dump()
    started = time.perf_counter()

    personas = sample_personas(load_bank(), args.n, seed=args.seed, strategy="coverage", pool=400)
    persona_seeds = [Sample(kind="seed", persona=p.model_dump()) for p in personas]
    # Without personas every seed has the same prompt; distinct ids give each its own request seed.
    plain_seeds = [Sample(kind="seed", meta={"bench_index": i}) for i in range(args.n)]

    mt = PROCESS_PARAMS["generate.multi_turn"]
    plain = [s for s in run_step("generate.multi_turn", plain_seeds, work, llm, **mt) if not s.dropped]
    persona = [s for s in run_step("generate.multi_turn", persona_seeds, work, llm, **mt) if not s.dropped]

    processes = [p for p in PROCESS_PARAMS if p in load_components()]
    docs = run_step("seeds.documents", [], work, None)
    mix: list[Sample] = []
    per_process: dict[str, int] = {}
    for k, name in enumerate(processes):
        share = persona_seeds[k::len(processes)]
        if name == "generate.grounded":  # the persona asks about a passage of the bundled documents
            from dataclasses import replace

            share = [replace(docs[(k + j) % len(docs)], persona=s.persona) for j, s in enumerate(share)]
        out = [s for s in run_step(name, share, work, llm, **PROCESS_PARAMS[name]) if not s.dropped]
        per_process[name] = len(out)
        mix += out
    with open(work / f"samples-t{args.temperature}.jsonl", "w", encoding="utf-8") as f:  # for reading what was measured
        for config, samples in (("plain", plain), ("persona", persona), ("mix", mix)):
            for s in samples:
                f.write(json.dumps({"config": config, "sample": s.to_dict()}, ensure_ascii=False) + "\n")
    m_persona, m_plain, k1 = compare(persona, plain, args.draws, args.seed)
    m_mix, m_single, k2 = compare(mix, persona, args.draws, args.seed)
    result = {
        "vendi_persona": m_persona["vendi"],
        "vendi_plain": m_plain["vendi"],
        "vendi_ratio": round(m_persona["vendi"] / m_plain["vendi"], 3),
        "distinct2_persona": m_persona["distinct2"],
        "distinct2_plain": m_plain["distinct2"],
        "vendi_mix": m_mix["vendi"],
        "vendi_single_process": m_single["vendi"],
        "nn_similarity_persona": m_persona["nn_similarity"],
        "nn_similarity_plain": m_plain["nn_similarity"],
        "nn_similarity_mix": m_mix["nn_similarity"],
        "nn_similarity_single_process": m_single["nn_similarity"],
        "distinct2_mix": m_mix["distinct2"],
        "distinct2_single_process": m_single["distinct2"],
        "k_persona_vs_plain": k1,
        "k_mix_vs_single": k2,
        "draws": args.draws,
        "sd": {"persona": m_persona["vendi_sd"], "plain": m_plain["vendi_sd"], "mix": m_mix["vendi_sd"],
               "single_process": m_single["vendi_sd"]},
        "n_seeds": args.n,
        "kept": {"plain": len(plain), "persona": len(persona), **per_process},
        "model": args.model,
        "temperature": args.temperature,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
