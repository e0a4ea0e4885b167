"""Model-layer overhead and server throughput: the same prompts through
  (a) raw llama-cpp-python calls (`Llama.create_completion`, as a user would write them),
  (b) our llama.cpp backend as steps use it (CachedClient over LlamaCppClient, fresh cache),
  (c) our OpenAI-compatible backend against `python -m llama_cpp.server` (same GGUF, same threads), batch
      API with concurrency 1 and 4 (fresh cache each).

    .venv/bin/python bench/llm.py                   # 200 prompts, 32 tokens each, 1 thread
    .venv/bin/python bench/llm.py --n 50 --threads 2

Last line: {"raw_tok_s": ..., "ours_tok_s": ..., "ratio": ..., "openai_c1_tok_s": ..., "openai_c4_tok_s": ...}
tok/s = generated tokens / wall seconds (model load excluded: each path answers one warm-up prompt first).
Raw and ours run in alternating blocks of 10 prompts, so changes in machine load weigh on both alike.
ratio = ours / raw (target >= 0.95). Our backend resets llama.cpp's KV cache before every request (for
reproducibility, see pipelines/llm/llama_cpp.py); the raw path does not, so the ratio includes that price.
llama_cpp.server runs one request at a time, so concurrency 4 mostly overlaps HTTP and JSON work.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.llm.cache import CachedClient  # noqa: E402
from pipelines.llm.client import LLMConfig, Request, Sampling  # noqa: E402
from pipelines.llm.embedded import embedded_gemma_path  # noqa: E402
from pipelines.llm.local_server import llama_cpp_server  # noqa: E402

_TOPICS = ("bread baking", "river fishing", "chess openings", "tax forms", "bicycle repair", "jazz history",
           "tomato plants", "job interviews", "moon phases", "sourdough starters", "train timetables",
           "knitting socks", "volcanoes", "budget travel", "first aid", "houseplants", "coffee brewing",
           "marathon training", "old maps", "solar panels")
_ASKS = ("What should a beginner know about", "Give me one tip about", "Explain briefly", "What is a common "
         "mistake in", "Why do people enjoy", "How do I start with", "Tell me a fact about", "Describe")


def prompts(n: int, max_tokens: int) -> list[Request]:
    rng = random.Random(0)
    out = []
    for i in range(n):
        text = f"Q: {rng.choice(_ASKS)} {rng.choice(_TOPICS)}? (#{i})\nA:"
        out.append(Request(sampling=Sampling(temperature=0.8, top_p=0.95, max_tokens=max_tokens, seed=i),
                           prompt=text))
    return out


def raw_and_ours(reqs: list[Request], threads: int, tmp: Path, block: int = 10) -> tuple[float, float]:
    """tok/s of raw calls and of our backend, run in alternating blocks of prompts so that a change in
    machine load during the run weighs on both alike."""
    import llama_cpp

    from pipelines.llm.llama_cpp import LlamaCppClient

    llm = llama_cpp.Llama(model_path=str(embedded_gemma_path()), n_ctx=2048, n_threads=threads,
                          n_threads_batch=threads, seed=0, verbose=False)
    llm.create_completion("Q: warm up\nA:", max_tokens=4)
    client = CachedClient(LlamaCppClient(LLMConfig(n_threads=threads)), tmp / "ours.sqlite")
    client.complete("Q: warm up\nA:", sampling=Sampling(max_tokens=4))
    raw_tokens = raw_s = our_tokens = our_s = 0.0
    for start in range(0, len(reqs), block):
        part = reqs[start:start + block]
        t0 = time.perf_counter()
        for r in part:
            s = r.sampling
            resp = llm.create_completion(r.prompt, max_tokens=s.max_tokens, temperature=s.temperature,
                                         top_p=s.top_p, top_k=40, min_p=0.05, repeat_penalty=1.0, seed=s.seed)
            raw_tokens += resp["usage"]["completion_tokens"]
        raw_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        results = client.generate(part)
        our_s += time.perf_counter() - t0
        our_tokens += sum(c.tokens_out for r in results for c in r)
    llm.close()
    client.close()
    return raw_tokens / raw_s, our_tokens / our_s


def openai(reqs: list[Request], base_url: str, concurrency: int, tmp: Path) -> float:
    from pipelines.llm.openai_compat import OpenAICompatClient

    cfg = LLMConfig(backend="openai", base_url=base_url, concurrency=concurrency, timeout_s=600.0)
    client = CachedClient(OpenAICompatClient(cfg), tmp / f"openai-c{concurrency}.sqlite")
    client.complete(f"Q: warm up {concurrency}\nA:", sampling=Sampling(max_tokens=4))
    t0 = time.perf_counter()
    results = client.generate(reqs)
    seconds = time.perf_counter() - t0
    failures = [r for r in results if not isinstance(r, list)]
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, first: {failures[0]}")
    client.close()
    return sum(c.tokens_out for r in results for c in r) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    reqs = prompts(args.n, args.max_tokens)
    with tempfile.TemporaryDirectory(prefix="refinery-bench-llm-") as tmp_s:
        tmp = Path(tmp_s)
        r, o = raw_and_ours(reqs, args.threads, tmp)
        print(f"raw llama-cpp-python: {r:.1f} tok/s; our llama_cpp backend: {o:.1f} tok/s", file=sys.stderr)
        with llama_cpp_server(n_threads=args.threads, n_ctx=2048) as url:
            c1 = openai(reqs, url, 1, tmp)
            print(f"openai backend, concurrency 1: {c1:.1f} tok/s", file=sys.stderr)
            c4 = openai(reqs, url, 4, tmp)
            print(f"openai backend, concurrency 4: {c4:.1f} tok/s", file=sys.stderr)
    print(json.dumps({"raw_tok_s": round(r, 1), "ours_tok_s": round(o, 1), "ratio": round(o / r, 3),
                      "openai_c1_tok_s": round(c1, 1), "openai_c4_tok_s": round(c4, 1)}))


if __name__ == "__main__":
    main()
