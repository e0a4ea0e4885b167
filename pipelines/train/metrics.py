"""Training metrics: every log line to output_dir/metrics.jsonl, with real (non-padding) tokens per second.

Tokens are TRL's own count (`num_tokens`): every token of a padding-free batch, the attention mask of a
padded one. That is the throughput that matters (useful tokens trained per second), and it is comparable
between packed and padded training.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def trained_tokens(trainer) -> int:
    """Non-padding tokens the trainer has trained on (TRL keeps the running total behind `num_tokens`)."""
    return int(getattr(trainer, "_total_train_tokens", 0))


def metrics_callback(path: Path):
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        """Appends one JSON object per log event; adds tokens seen and tokens/s since the previous log."""

        def __init__(self) -> None:
            self.last_time = None
            self.last_tokens = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.last_time = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            now = time.perf_counter()
            entry: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch, **(logs or {})}
            if self.last_time is not None and now > self.last_time and "num_tokens" in entry:
                tokens = int(entry["num_tokens"])
                entry["tokens_per_s"] = round((tokens - self.last_tokens) / (now - self.last_time), 1)
                self.last_time, self.last_tokens = now, tokens
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    return MetricsCallback()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
