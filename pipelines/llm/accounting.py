"""What model work cost: counters, prices, and the one-line summary `refinery status` shows.

Counters (all numbers; the executor adds each, prefixed `llm_`, to the step's stats, summed over shards):
  requests, cache_hits, model_calls     requests asked / answered from the cache / sent to the backend
  tokens_in, tokens_out                 tokens the model processed, failed attempts included (hits are free)
  failures, failures_<reason>           requests that ended in an error, by reason (structured_output_invalid,
                                        request_rejected, tool_call_invalid, server_unreachable, ...)
  retries, retries_<reason>             HTTP attempts repeated (http_429, http_500, timeout, reset, connect)
  structured_retries                    answers asked again because they failed their JSON schema
  busy_s                                wall seconds this worker waited on the backend
  cost                                  only when a price is configured: tokens x price per 1M tokens,
                                        plus busy_s x price per GPU-hour
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def cost_of(config: Any, tokens_in: int, tokens_out: int, busy_s: float) -> float:
    """Cost of one call under `config`'s prices (0 when none is set)."""
    cost = 0.0
    if config is None:
        return cost
    if config.price_in_per_mtok:
        cost += tokens_in * config.price_in_per_mtok / 1e6
    if config.price_out_per_mtok:
        cost += tokens_out * config.price_out_per_mtok / 1e6
    if config.price_per_gpu_hour:
        cost += busy_s * config.price_per_gpu_hour / 3600
    return cost


def has_prices(config: Any) -> bool:
    return config is not None and any(
        (config.price_in_per_mtok, config.price_out_per_mtok, config.price_per_gpu_hour))


def snake(name: str) -> str:
    """'ServerUnreachable' -> 'server_unreachable' (failure reasons from exception classes)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _num(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.1f}M"
    if x >= 1e4:
        return f"{x / 1e3:.1f}k"
    return f"{x:g}" if isinstance(x, float) else str(x)


def _by_reason(c: Mapping[str, Any], prefix: str) -> str:
    parts = [f"{k[len(prefix):]}: {int(v)}" for k, v in sorted(c.items()) if k.startswith(prefix) and v]
    return f" ({', '.join(parts)})" if parts else ""


def format_llm_counters(counters: Mapping[str, Any]) -> str:
    """One line for a step's stats counters (keys `llm_*`), e.g.
    '40 req, 12 cached · tok 5.1k/1.2k · 3 retries (http_429: 2, timeout: 1) · 1 failed
    (structured_output_invalid: 1) · busy 41.2 s · cost 0.0123'. '-' when the step asked no model."""
    c = {k[4:]: v for k, v in counters.items() if k.startswith("llm_")}
    if not c.get("requests"):
        return "-"
    parts = [f"{int(c['requests'])} req, {int(c.get('cache_hits', 0))} cached",
             f"tok {_num(int(c.get('tokens_in', 0)))}/{_num(int(c.get('tokens_out', 0)))}"]
    if c.get("retries"):
        parts.append(f"{int(c['retries'])} retries{_by_reason(c, 'retries_')}")
    if c.get("structured_retries"):
        parts.append(f"{int(c['structured_retries'])} schema retries")
    if c.get("failures"):
        parts.append(f"{int(c['failures'])} failed{_by_reason(c, 'failures_')}")
    if c.get("busy_s"):
        parts.append(f"busy {c['busy_s']:.1f} s")
    if "cost" in c:
        parts.append(f"cost {c['cost']:.4f}")
    return " · ".join(parts)


def backend_label(llm: Mapping[str, Any] | None) -> str:
    """'openai:Qwen/Qwen3-8B' for a step's resolved llm block (as stored in _SUCCESS 'spec.llm')."""
    if not llm:
        return "-"
    return f"{llm.get('backend', 'llama_cpp')}:{llm.get('model', '?')}"


def totals_by_backend(steps: Mapping[str, tuple[Mapping[str, Any] | None, Mapping[str, Any]]]) -> dict[str, dict]:
    """{backend label: summed llm_ counters} from {step: (llm block, stats counters)}."""
    out: dict[str, dict] = {}
    for llm, counters in steps.values():
        if not llm:
            continue
        acc = out.setdefault(backend_label(llm), {})
        for k, v in counters.items():
            if k.startswith("llm_") and isinstance(v, (int, float)):
                acc[k] = acc.get(k, 0) + v
    return out
