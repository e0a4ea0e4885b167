"""Semantic dedup at scale: filter.semantic_dedup over 100,000 samples on this machine's cores, its time
and peak memory, and its agreement with exact all-pairs cosine on a 5,000-sample subset.

    .venv/bin/python bench/semantic.py               # 100,000 samples, threshold 0.9
    .venv/bin/python bench/semantic.py --n 20000

Corpus (bench/_corpus.py): requests as an SFT set has them: the GSM8K questions, generated single-turn
requests (a persona-bank user, their goal and a follow-up question), and semantic near-copies (a tenth):
GSM8K questions with one number changed, requests with a few words edited. What is embedded is the user
side (`--scope user_turns`, about 50 tokens a sample): embedding dominates the cost (MiniLM-L6 spends ~21
MFLOP per token), so the figure scales with the text length embedded.
seconds and peak_rss_mb cover the whole step (packaged all-MiniLM-L6-v2 embeddings on CPU, k-means, the
within-cluster search, verdicts), measured in this process (RSS sampled every 0.1 s). agreement: the 5,000
first samples are deduplicated again by the same clustered search (default clusters, i.e. ceil(sqrt(5000)))
and by exact all-pairs cosine with the same greedy rule; it is the share of samples with the same decision
(kept, or dropped as a duplicate of the same sample).

Last line: {"seconds": ..., "peak_rss_mb": ..., "agreement": ...}
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import generated_prompts, gsm8k_rows, near_copy, personas  # noqa: E402
from _measure import PeakRSS  # noqa: E402

from filters.views import view  # noqa: E402
from pipelines.core.sample import Message, Sample  # noqa: E402
from pipelines.core.step import StepContext  # noqa: E402


def build(n: int, seed: int) -> list[Sample]:
    rng = random.Random(seed)
    rows = gsm8k_rows()
    questions = [Sample(kind="chat", messages=[Message("user", r["question"])], provenance={"generator": "gsm8k"})
                 for r in rows]
    n_copies = n // 10
    base = questions + generated_prompts(max(0, n - len(questions) - n_copies), rng, rows, personas())
    vocab = sorted({w for s in base[:2000] for m in s.messages for w in m.content.split()})
    copies = []
    for _ in range(n_copies):
        src = rng.choice(base)
        if src.provenance["generator"] == "gsm8k" and re.search(r"\d", src.messages[0].content):
            text = re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 5)), src.messages[0].content, count=1)
            copies.append(Sample(kind="chat", messages=[Message("user", text)], provenance={"generator": "copy"}))
        else:
            copies.append(near_copy(src, rng.uniform(0.75, 0.95), rng, vocab, lambda s: view(s, "user_turns"))[0])
    out = base + copies
    rng.shuffle(out)
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--subset", type=int, default=5_000)
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scope", default="user_turns", help="what is embedded (the step's scope parameter)")
    args = ap.parse_args()

    samples = build(args.n, args.seed)
    print(f"corpus: {len(samples)} samples", flush=True)

    from filters.semantic_dedup import SemanticDedup, SemanticDedupParams

    with tempfile.TemporaryDirectory() as d, PeakRSS() as rss:
        step = SemanticDedup(SemanticDedupParams(threshold=args.threshold, scope=args.scope), StepContext("semantic", "bench", "fp", Path(d)))
        start = time.perf_counter()
        dropped = sum(s.dropped for s in step.run(iter(samples)))
        seconds = time.perf_counter() - start
    print(f"semantic dedup: {len(samples)} samples in {seconds:.1f}s ({len(samples) / seconds:,.0f}/s), "
          f"{dropped} dropped, {step.ctx.counters['semantic_clusters']} clusters, peak RSS {rss.peak_mb} MB", flush=True)

    from filters.embeddings import embed_texts
    from filters.semantic_core import exact_duplicates, semantic_duplicates

    subset = samples[: args.subset]
    emb = embed_texts("all-MiniLM-L6-v2", [view(s, args.scope) for s in subset])
    t0 = time.perf_counter()
    exact, _ = exact_duplicates(emb, args.threshold)
    exact_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = semantic_duplicates(emb, args.threshold)
    clustered_s = time.perf_counter() - t0
    agreement = float((res.duplicate_of == exact).mean())
    same_keep = float(((res.duplicate_of < 0) == (exact < 0)).mean())
    print(f"subset of {len(subset)}: exact all-pairs {int((exact >= 0).sum())} duplicates in {exact_s:.2f}s; "
          f"clustered (k={res.k}) {int((res.duplicate_of >= 0).sum())} in {clustered_s:.2f}s; "
          f"same decision {same_keep:.4f}, same decision and same kept sample {agreement:.4f}", flush=True)
    print(json.dumps({"seconds": round(seconds, 1), "peak_rss_mb": rss.peak_mb, "agreement": round(agreement, 4)}))


if __name__ == "__main__":
    main()
