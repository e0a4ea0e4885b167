"""SFT on an exported dataset version with TRL's SFTTrainer: parse -> load data -> trainer -> train -> save.

Loss is on assistant turns only (labels are -100 elsewhere, built by `pipelines.train.data`). Batches are
padded and grouped by length by default: on CPU (PyTorch attention, no variable-length kernel) that beat
packing, whose one long row pays attention over its whole length (bench/train.py). With `packing` each batch
is padding-free: its sequences are concatenated into one row, kept apart by position ids (attention) and
sequence ids (LFM2's short convolutions, see `packed_conv`).
"""

from __future__ import annotations

from typing import Any

from pipelines.train.config import SFTRunConfig
from pipelines.train.data import tokenize_sft
from pipelines.train.runner import shared_args, train_run


def trainer_args(cfg: SFTRunConfig, has_eval: bool, **extra: Any):
    from trl import SFTConfig

    return SFTConfig(
        **shared_args(cfg, has_eval),
        # Rows arrive tokenized and truncated; labels already hold the assistant-only mask.
        max_length=None, packing=False, padding_free=cfg.packing, assistant_only_loss=False,
        completion_only_loss=False,
        train_sampling_strategy="group_by_length" if cfg.group_by_length and not cfg.packing else "random",
        **extra,
    )


def train_sft(cfg: SFTRunConfig) -> dict[str, Any]:
    """Train; returns a summary (also stored in output_dir/refinery_train.json)."""

    def trainer_class():
        from trl import SFTTrainer

        if cfg.packing:  # else LFM2's short convolutions would mix neighbouring packed sequences
            from pipelines.train import packed_conv

            packed_conv.enable()
        return SFTTrainer

    return train_run(cfg, "sft", tokenize_sft, "input_ids",
                     "no training row of {ref} has an assistant token within max_length={max_length}",
                     trainer_class, trainer_args)
