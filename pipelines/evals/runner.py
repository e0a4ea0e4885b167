"""Run eval suites against one model and write what happened, item by item, into an eval directory.

EVAL_DIR/items.jsonl   one line per item and prompt format: the prompt, the raw output, the parsed calls or
                       answer, correct, and the reason when it is not
EVAL_DIR/summary.json  per suite and format: n, correct, accuracy; `best`: the better format per suite
EVAL_DIR/llm_cache.sqlite  every answer, so an interrupted eval resumes where it stopped

The model is a GGUF or an embedded name (llama.cpp), a checkpoint folder (transformers) or a model name on an
OpenAI-compatible server (`base_url`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.evals import ast_checker
from pipelines.evals.prompting import FORMATS, read_answer, read_calls, request
from pipelines.evals.suites import BFCL_SUITES, Item, held_out_report, load_suite
from pipelines.formats.math_answers import answers_match
from pipelines.llm.errors import RequestError

# Output budgets. A batch decodes until its longest answer stops, and an untrained model rambles to the cap,
# so caps are what the answers need: BFCL's longest single call is ~110 tokens, its longest parallel set ~260,
# a GSM8K solution a dozen lines. Output cut at a cap is graded as it stands (usually no call: wrong).
_MAX_TOKENS = {"gsm8k": 512, "bfcl_parallel": 320, "bfcl_parallel_multiple": 320}
_DEFAULT_MAX_TOKENS = 160
_CHUNK = 16  # requests per generate() call: progress is cached and reported at this grain


def llm_config(model: str, base_url: str | None = None, n_threads: int | None = None) -> dict[str, Any]:
    """The `llm:` block that serves `model`: a server's model name with `base_url`, a checkpoint folder
    (transformers), else a GGUF path or embedded name (llama.cpp)."""
    cfg: dict[str, Any] = {"model": model, "temperature": 0.0, "top_p": 1.0, "n_ctx": 4096}
    if base_url:
        cfg.update(backend="openai", base_url=base_url)
    elif Path(model).is_dir():
        # Keep the LFM2 markers: a model trained on them writes its calls between special tokens.
        cfg.update(backend="transformers", model=str(Path(model).resolve()), output_parser="lfm2")
    else:
        cfg.update(backend="llama_cpp")
    if n_threads:
        cfg["n_threads"] = n_threads
    return cfg


def grade(item: Item, text: str, fmt: str, parsed_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """correct, reason (None when correct) and what was read out of the output. `parsed_calls`: the calls
    a backend already took out of the text (output_parser lfm2)."""
    if item.suite == "gsm8k":
        answer = read_answer(text, fmt)
        ok = answers_match(item.expected, answer)[0]
        return {"answer": answer, "correct": ok, "reason": None if ok else f"answer {answer!r} (want {item.expected})"}
    calls, problem = (parsed_calls, None) if parsed_calls else read_calls(text, fmt)
    if item.suite == "irrelevance":
        called = ast_checker.is_call(calls)
        return {"calls": calls, "correct": not called,
                "reason": "called a function that does not fit" if called else None}
    if problem is None and not calls:
        problem = "no call"
    elif problem is None:
        problem = ast_checker.check(BFCL_SUITES[item.suite], item.tools, item.expected, calls)
    return {"calls": calls, "correct": problem is None, "reason": problem}


def _prompt_view(req: Any) -> Any:
    return req.prompt if req.prompt is not None else list(req.messages)


def evaluate(model: str, suites: list[str], out_dir: Path, formats: list[str] | None = None,
             limit: int | None = None, base_url: str | None = None, n_threads: int | None = None,
             progress: Callable[[str], None] = lambda line: None,
             training_texts: list[str] | None = None) -> dict[str, Any]:
    """Run every suite in every format against the model; write items.jsonl and summary.json; return the
    summary. `training_texts`: the training data's messages, for the 13-gram overlap check."""
    from pipelines.llm.factory import build_client

    formats = formats or list(FORMATS)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown prompt format {unknown[0]!r}; known: {', '.join(FORMATS)}")
    items = {s: load_suite(s, limit) for s in suites}  # unknown suites fail here, before any model loads
    out_dir.mkdir(parents=True, exist_ok=True)
    client = build_client(llm_config(model, base_url, n_threads), out_dir / "llm_cache.sqlite")
    started = time.monotonic()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        with (out_dir / "items.jsonl.tmp").open("w", encoding="utf-8") as f:
            for suite, suite_items in items.items():
                for fmt in formats:
                    correct = 0
                    for i in range(0, len(suite_items), _CHUNK):
                        chunk = suite_items[i:i + _CHUNK]
                        reqs = [request(it, fmt, _MAX_TOKENS.get(suite, _DEFAULT_MAX_TOKENS)) for it in chunk]
                        for it, req, res in zip(chunk, reqs, client.generate(reqs)):
                            if isinstance(res, RequestError):  # e.g. a call the lfm2 parser could not read
                                row = {"id": it.id, "suite": suite, "format": fmt, "prompt": _prompt_view(req),
                                       "output": res.text, "correct": False,
                                       "reason": f"{res.kind}: {res.reason}"}
                            else:
                                c = res[0]
                                row = {"id": it.id, "suite": suite, "format": fmt, "prompt": _prompt_view(req),
                                       "output": c.text, "reasoning": c.reasoning,
                                       **grade(it, c.text, fmt, c.tool_calls)}
                            correct += row["correct"]
                            f.write(json.dumps(row, ensure_ascii=False) + "\n")
                        progress(f"{suite} [{fmt}] {min(i + _CHUNK, len(suite_items))}/{len(suite_items)}")
                    n = len(suite_items)
                    results.setdefault(suite, {})[fmt] = {"n": n, "correct": correct,
                                                          "accuracy": round(correct / n, 4) if n else None}
        (out_dir / "items.jsonl.tmp").replace(out_dir / "items.jsonl")
    finally:
        client.close()
    best = {}
    for suite, by_format in results.items():
        fmt = max(by_format, key=lambda k: by_format[k]["accuracy"] or 0)  # ties: the first format asked
        best[suite] = {"format": fmt, **by_format[fmt]}
    summary = {"model": model, "base_url": base_url, "formats": formats, "limit": limit, "suites": results,
               "best": best, "minutes": round((time.monotonic() - started) / 60, 2),
               "held_out": held_out_report([i for its in items.values() for i in its], training_texts)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
