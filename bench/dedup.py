"""Near-duplicate dedup: quality against exact Jaccard ground truth, and throughput against datatrove's
MinHash pipeline and datasketch's MinHashLSH on the same input; exact dedup throughput per core.

    .venv/bin/python bench/dedup.py                 # ~21,000 samples, threshold 0.8
    .venv/bin/python bench/dedup.py --generated 20000 --copies 8000

Corpus (bench/_corpus.py): every GSM8K question with its worked solution (8,792), generated multi-turn
conversations, and near-duplicates of random earlier samples edited to a target Jaccard drawn uniformly
from [0.6, 1.0] (a tenth of them verbatim), shuffled. Similarity is the Jaccard of word 3-gram shingles of
the normalised conversation (`filters.normalize.shingles` of `Sample.text()`), the definition the filter
uses. Ground truth is computed exactly (all pairs, by prefix filtering: a pair with Jaccard >= t must share
a token in the rarest-first prefixes), then the same greedy rule as the filter: a sample is a duplicate when
an earlier *kept* sample is at least t similar. Precision/recall/F1 are over "dropped as duplicate".

Throughput is samples / wall seconds over the same samples: ours = the filter.near_dedup step's run() (one
process: rendering, ids, verdicts included); datasketch = MinHash + MinHashLSH with the same shingles, one
process; datatrove = its four MinHash stages (signatures, buckets, clusters, filter) with LocalPipelineExecutor
on 2 tasks/2 workers (forkserver), reading and writing JSON Lines as it does. Exact = filter.exact_dedup's
run() in one process (= per core), over samples read from a parquet shard as the executor hands them to
the step (ids come with the shard, texts are normalised in chunks); the shard read is not timed.

Last line: {"f1", "ours_samples_per_s", "datatrove_samples_per_s", "datasketch_samples_per_s",
"exact_samples_per_s_per_core"}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import gsm8k_rows, gsm8k_samples, generated_samples, near_copy, personas  # noqa: E402

from filters.normalize import shingles  # noqa: E402
from filters.views import view  # noqa: E402
from pipelines.core.sample import Sample  # noqa: E402
from pipelines.core.step import StepContext  # noqa: E402

N_GRAM = 3


def render(s: Sample) -> str:
    return view(s, "conversation")


def build_corpus(n_generated: int, n_copies: int, seed: int) -> tuple[list[Sample], list[float]]:
    rng = random.Random(seed)
    rows = gsm8k_rows()
    base = gsm8k_samples(rows) + generated_samples(n_generated, rng, rows, personas())
    rng.shuffle(base)
    vocab = sorted({w for s in base[:2000] for m in s.messages for w in m.content.split()})
    out: list[Sample] = list(base)
    targets = []
    for _ in range(n_copies):
        src = rng.choice(base)
        target = 1.0 if rng.random() < 0.1 else rng.uniform(0.6, 1.0)
        copy, jac = (src, 1.0) if target == 1.0 else near_copy(src, target, rng, vocab, render, N_GRAM)
        targets.append(jac)
        out.append(copy)
    rng.shuffle(out)
    return out, targets


def exact_pairs(sets: list[frozenset], t: float) -> dict[int, list[tuple[int, float]]]:
    """For each j, every i < j with Jaccard(i, j) >= t: exact, by prefix filtering (AllPairs)."""
    freq = Counter(tok for s in sets for tok in s)
    rank = {tok: r for r, (tok, _) in enumerate(sorted(freq.items(), key=lambda kv: (kv[1], kv[0])))}
    ordered = [sorted(rank[tok] for tok in s) for s in sets]
    index: dict[int, list[int]] = defaultdict(list)
    pairs: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for j, toks in enumerate(ordered):
        size = len(toks)
        prefix = size - math.ceil(t * size) + 1
        seen: set[int] = set()
        for tok in toks[:prefix]:
            for i in index[tok]:
                if i in seen:
                    continue
                seen.add(i)
                other = len(ordered[i])
                if other < t * size or size < t * other:
                    continue
                inter = len(sets[i] & sets[j])
                jac = inter / (size + other - inter)
                if jac >= t:
                    pairs[j].append((i, jac))
        for tok in toks[:prefix]:
            index[tok].append(j)
    return pairs


def greedy(n: int, pairs: dict[int, list[tuple[int, float]]]) -> list[bool]:
    dropped = [False] * n
    for j in range(n):
        if any(not dropped[i] for i, _ in pairs.get(j, ())):
            dropped[j] = True
    return dropped


def prf(pred: list[bool], truth: list[bool]) -> dict[str, float]:
    tp = sum(p and t for p, t in zip(pred, truth))
    fp = sum(p and not t for p, t in zip(pred, truth))
    fn = sum(t and not p for p, t in zip(pred, truth))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn}


def run_ours(samples: list[Sample], t: float, tmp: Path, **params) -> tuple[list[bool], float]:
    from filters.near_dedup import NearDedup, NearDedupParams

    step = NearDedup(NearDedupParams(threshold=t, **params), StepContext("near", "bench", "fp", tmp))
    start = time.perf_counter()
    out = [s.dropped for s in step.run(iter(samples))]
    return out, time.perf_counter() - start


def run_exact(samples: list[Sample], tmp: Path) -> float:
    from filters.exact_dedup import ExactDedup, ExactDedupParams
    from pipelines.core.shards import read_shard, write_shard

    # The step gets its input as the executor hands it over: read from the upstream step's shard (so the
    # ids stored there are not hashed again). Writing and reading the shard is not timed.
    write_shard(tmp / "exact-input.parquet", samples)
    samples = list(read_shard(tmp / "exact-input.parquet"))
    best = float("inf")
    for _ in range(3):
        step = ExactDedup(ExactDedupParams(), StepContext("exact", "bench", "fp", tmp))
        start = time.perf_counter()
        for _ in step.run(iter(samples)):
            pass
        best = min(best, time.perf_counter() - start)
    return best


def run_datasketch(texts: list[str], t: float) -> tuple[list[bool], float]:
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    lsh = MinHashLSH(threshold=t, num_perm=128)
    out = []
    for i, text in enumerate(texts):
        m = MinHash(num_perm=128)
        m.update_batch(list(shingles(text, N_GRAM)))  # UTF-8 bytes shingles, the same as ours
        if lsh.query(m):
            out.append(True)
        else:
            lsh.insert(i, m)
            out.append(False)
    return out, time.perf_counter() - start


def run_datatrove(texts: list[str], tmp: Path, workers: int = 2) -> tuple[list[bool], float]:
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                  MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    inp = tmp / "dt_in"
    inp.mkdir()
    half = (len(texts) + 1) // 2
    for f, chunk in enumerate((texts[:half], texts[half:])):
        with gzip.open(inp / f"{f:02d}.jsonl.gz", "wt", encoding="utf-8") as fh:
            for k, text in enumerate(chunk):
                fh.write(json.dumps({"text": text, "id": str(f * half + k)}) + "\n")
    # 128 hashes like ours, in 16 buckets of 8 (datatrove's own layout); 3-grams like ours.
    config = MinhashConfig(n_grams=N_GRAM, num_buckets=16, hashes_per_bucket=8, hash_config=HashConfig(precision=64))
    logs = tmp / "dt_logs"
    start = time.perf_counter()
    s1 = LocalPipelineExecutor([JsonlReader(str(inp)), MinhashDedupSignature(str(tmp / "sigs"), config=config)],
                               tasks=2, workers=workers, logging_dir=str(logs / "1"))
    s2 = LocalPipelineExecutor([MinhashDedupBuckets(str(tmp / "sigs"), str(tmp / "buckets"), config=config)],
                               tasks=config.num_buckets, workers=workers, logging_dir=str(logs / "2"), depends=s1)
    s3 = LocalPipelineExecutor([MinhashDedupCluster(str(tmp / "buckets"), str(tmp / "remove"), config=config)],
                               tasks=1, logging_dir=str(logs / "3"), depends=s2)
    s4 = LocalPipelineExecutor([JsonlReader(str(inp)), MinhashDedupFilter(
        str(tmp / "remove"), exclusion_writer=JsonlWriter(str(tmp / "removed"))), JsonlWriter(str(tmp / "kept"))],
        tasks=2, workers=workers, logging_dir=str(logs / "4"), depends=s3)
    s4.run()
    seconds = time.perf_counter() - start
    removed = set()
    for path in (tmp / "removed").glob("*.jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            removed |= {int(json.loads(line)["id"]) for line in fh}
    return [i in removed for i in range(len(texts))], seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generated", type=int, default=8000, help="generated conversations")
    ap.add_argument("--copies", type=int, default=4200, help="injected near-duplicates")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t = args.threshold

    t0 = time.perf_counter()
    samples, injected = build_corpus(args.generated, args.copies, args.seed)
    texts = [render(s) for s in samples]
    print(f"corpus: {len(samples)} samples ({args.copies} injected copies, Jaccard "
          f"min {min(injected):.3f} mean {sum(injected) / len(injected):.3f}) in {time.perf_counter() - t0:.1f}s", flush=True)
    t0 = time.perf_counter()
    pairs = exact_pairs([frozenset(shingles(x, N_GRAM)) for x in texts], t)
    truth = greedy(len(samples), pairs)
    print(f"ground truth: {sum(len(v) for v in pairs.values())} pairs >= {t}, {sum(truth)} duplicates "
          f"({time.perf_counter() - t0:.1f}s)", flush=True)

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ours, ours_s = run_ours(samples, t, tmp)
        q = prf(ours, truth)
        print(f"ours (rensa MinHash+LSH, exact Jaccard verification): {q}, {len(samples) / ours_s:,.0f} samples/s", flush=True)
        est, est_s = run_ours(samples, t, tmp, verify="minhash")
        print(f"ours (verify: minhash): {prf(est, truth)}, {len(samples) / est_s:,.0f} samples/s", flush=True)
        ds, ds_s = run_datasketch(texts, t)
        print(f"datasketch MinHashLSH: {prf(ds, truth)}, {len(samples) / ds_s:,.0f} samples/s", flush=True)
        dt, dt_s = run_datatrove(texts, tmp)
        print(f"datatrove MinHash pipeline (2 workers; its own tokenizer): {prf(dt, truth)}, "
              f"{len(samples) / dt_s:,.0f} samples/s", flush=True)
        ex_s = run_exact(samples, tmp)
        print(f"exact dedup: {len(samples) / ex_s:,.0f} samples/s on one core", flush=True)
    print(json.dumps({
        "f1": q["f1"],
        "ours_samples_per_s": round(len(samples) / ours_s),
        "datatrove_samples_per_s": round(len(samples) / dt_s),
        "datasketch_samples_per_s": round(len(samples) / ds_s),
        "exact_samples_per_s_per_core": round(len(samples) / ex_s),
    }))


if __name__ == "__main__":
    main()
