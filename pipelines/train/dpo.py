"""DPO on an exported dataset version with TRL's DPOTrainer: parse -> load pairs -> trainer -> train -> save.

Pairs arrive tokenized by `pipelines.train.data.tokenize_preference` (our LFM2 rendering, cut into prompt /
chosen / rejected exactly as TRL cuts them), so the only change to DPOTrainer is to skip its own
tokenization. With LoRA the reference model is the base model with adapters disabled (no second copy).
"""

from __future__ import annotations

from typing import Any

from pipelines.train.config import DPORunConfig
from pipelines.train.data import tokenize_preference
from pipelines.train.runner import shared_args, train_run

_TOKENIZED = {"prompt_ids", "chosen_ids", "rejected_ids"}


def _trainer_class():
    from trl import DPOTrainer

    class PretokenizedDPOTrainer(DPOTrainer):
        """DPOTrainer for rows that already hold prompt_ids / chosen_ids / rejected_ids."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if not _TOKENIZED <= set(dataset.column_names):
                raise ValueError(f"{dataset_name} dataset must be tokenized ({sorted(_TOKENIZED)}), "
                                 f"got columns {dataset.column_names}")
            return dataset

    return PretokenizedDPOTrainer


def trainer_args(cfg: DPORunConfig, has_eval: bool):
    from trl import DPOConfig

    return DPOConfig(**shared_args(cfg, has_eval), max_length=cfg.max_length, beta=cfg.beta,
                     loss_type=[cfg.loss_type])


def train_dpo(cfg: DPORunConfig) -> dict[str, Any]:
    """Train; returns a summary (also stored in output_dir/refinery_train.json)."""
    return train_run(cfg, "dpo", tokenize_preference, "prompt_ids",
                     "every preference prompt of {ref} is longer than max_length={max_length}",
                     _trainer_class, trainer_args)
