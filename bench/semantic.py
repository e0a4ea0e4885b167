"""Semantic dedup at scale, both embedders: filter.semantic_dedup over 100,000 samples with the static
(model2vec) embedder and with MiniLM, each one's samples/s and peak memory, and how the static filter's
decisions agree with exact all-pairs MiniLM cosine on a 5,000-sample subset.

    .venv/bin/python bench/semantic.py               # 100,000 samples, threshold 0.9
    .venv/bin/python bench/semantic.py --n 20000
    .venv/bin/python bench/semantic.py --skip-minilm # the static run and the agreement only

Corpus (bench/_corpus.py): requests as an SFT set has them: the GSM8K questions, generated single-turn
requests (a persona-bank user, their goal and a follow-up question), and semantic near-copies (a tenth):
GSM8K questions with one number changed, requests with a few words edited. What is embedded is the user
side (`--scope user_turns`, about 50 tokens a sample).
samples/s and peak RSS cover a whole run of a recipe that reads the corpus and deduplicates it on the
local executor with 2 workers (embedding per shard in parallel, then k-means, the within-cluster search
and the verdicts), one embedder after the other in fresh processes (RSS summed over the process tree,
sampled every 0.1 s; the static model is distilled before timing, once per machine). agreement_f1: on the first 5,000 samples, the samples the static filter
(the step's own search) drops as duplicates against those exact all-pairs MiniLM cosine drops, at the same
threshold, as an F1 of the two duplicate sets; also printed: the MiniLM filter's own agreement.

Last line: {"static_samples_per_s", "minilm_samples_per_s", "agreement_f1", "static_peak_rss_mb",
"minilm_peak_rss_mb", "minilm_agreement_f1"}
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
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


RECIPE = """\
name: bench-semantic
shard_size: 10000
steps:
  source: {{use: io.read_jsonl, path: '{path}'}}
  semantic: {{use: filter.semantic_dedup, after: [source], threshold: {threshold}, scope: {scope}, embedder: {embedder}}}
"""


def run_step(corpus: Path, embedder: str, threshold: float, scope: str, workers: int) -> dict:
    """The step as a user runs it: a recipe reading the corpus, on the local executor with `workers`
    processes. samples/s = samples / wall time of the whole run (reading the JSONL and writing the
    shards included); peak RSS summed over the process tree (this process and its workers)."""
    from pipelines.core.executor import run_recipe
    from pipelines.core.recipe import load_recipe

    with tempfile.TemporaryDirectory() as d:
        recipe = Path(d) / "recipe.yaml"
        recipe.write_text(RECIPE.format(path=corpus, threshold=threshold, scope=scope, embedder=embedder))
        spec = load_recipe(recipe)
        with PeakRSS() as rss:
            start = time.perf_counter()
            result = run_recipe(spec, Path(d) / "run", workers=workers)
            seconds = time.perf_counter() - start
    stats = result.steps["semantic"]
    return {"samples_per_s": round(stats["in"] / seconds), "seconds": round(seconds, 1),
            "dropped": stats["dropped"].get("semantic_duplicate", 0),
            "clusters": stats["counters"]["semantic_clusters"], "peak_rss_mb": rss.peak_mb}


def f1(predicted, truth) -> float:
    import numpy as np

    p, t = np.asarray(predicted) >= 0, np.asarray(truth) >= 0
    both = int((p & t).sum())
    return 1.0 if not p.any() and not t.any() else 2 * both / max(1, int(p.sum()) + int(t.sum()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--subset", type=int, default=5_000)
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scope", default="user_turns", help="what is embedded (the step's scope parameter)")
    ap.add_argument("--skip-minilm", action="store_true", help="no 100,000-sample MiniLM run (it takes ~30 min)")
    ap.add_argument("--workers", type=int, default=2, help="local executor worker processes")
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    ap.add_argument("--one", choices=["static", "minilm"], help=argparse.SUPPRESS)  # a child process's run
    args = ap.parse_args()

    if args.one:  # a child: the corpus is on disk already, this process never holds it
        print(json.dumps(run_step(Path(args.corpus), args.one, args.threshold, args.scope, args.workers)))
        return
    samples = build(args.n, args.seed)
    print(f"corpus: {len(samples)} samples", flush=True)
    tmp = tempfile.TemporaryDirectory()
    corpus = Path(tmp.name) / "corpus.jsonl"
    corpus.write_text("".join(s.to_json() + "\n" for s in samples), encoding="utf-8")
    from filters.embeddings import PACKAGED, STATIC, embed_texts, static_model_path

    static_model_path()  # distilled once per machine, before anything is timed
    runs = {}
    for embedder in ("static",) if args.skip_minilm else ("static", "minilm"):
        # A fresh process per embedder, so one's memory and loaded model do not count against the other.
        out = subprocess.run([sys.executable, __file__, "--one", embedder, "--corpus", str(corpus),
                              "--threshold", str(args.threshold), "--scope", args.scope,
                              "--workers", str(args.workers)],
                             capture_output=True, text=True, check=True)
        runs[embedder] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{embedder}: {runs[embedder]}", flush=True)

    from filters.semantic_core import exact_duplicates, semantic_duplicates

    subset = [view(s, args.scope) for s in samples[: args.subset]]
    minilm = embed_texts(PACKAGED, subset)
    static = embed_texts(STATIC, subset)
    truth, _ = exact_duplicates(minilm, args.threshold)
    static_dup = semantic_duplicates(static, args.threshold).duplicate_of
    minilm_dup = semantic_duplicates(minilm, args.threshold).duplicate_of
    agreement, minilm_agreement = f1(static_dup, truth), f1(minilm_dup, truth)
    static_exact, _ = exact_duplicates(static, args.threshold)
    print(f"subset of {len(subset)} at cosine >= {args.threshold}: exact MiniLM drops {int((truth >= 0).sum())}; "
          f"static filter drops {int((static_dup >= 0).sum())} (F1 {agreement:.4f}; exact static "
          f"{int((static_exact >= 0).sum())}, F1 {f1(static_exact, truth):.4f}); MiniLM filter F1 "
          f"{minilm_agreement:.4f}", flush=True)
    print(json.dumps({"static_samples_per_s": runs["static"]["samples_per_s"],
                      "minilm_samples_per_s": runs.get("minilm", {}).get("samples_per_s"),
                      "agreement_f1": round(agreement, 4), "static_peak_rss_mb": runs["static"]["peak_rss_mb"],
                      "minilm_peak_rss_mb": runs.get("minilm", {}).get("peak_rss_mb"),
                      "minilm_agreement_f1": round(minilm_agreement, 4)}))


if __name__ == "__main__":
    main()
