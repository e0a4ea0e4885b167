"""DPO on an exported dataset version with TRL's DPOTrainer: parse -> load pairs -> trainer -> train -> save.

Pairs arrive tokenized by `pipelines.train.data.tokenize_preference` (our LFM2 rendering, cut into prompt /
chosen / rejected exactly as TRL cuts them), so the only change to DPOTrainer is to skip its own
tokenization. With LoRA the reference model is the base model with adapters disabled (no second copy).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipelines.train.config import DPORunConfig
from pipelines.train.data import load_version, to_dataset, tokenize_preference
from pipelines.train.metrics import metrics_callback
from pipelines.train.model import apply_lora, load_model_and_tokenizer, start_record, use_bf16
from pipelines.train.sft import finish

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
    import torch
    from trl import DPOConfig

    return DPOConfig(
        output_dir=cfg.output_dir, learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler_type, weight_decay=cfg.weight_decay, seed=cfg.seed,
        logging_steps=cfg.logging_steps, logging_first_step=True, save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, bf16=use_bf16(cfg), use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=cfg.gradient_checkpointing, report_to=cfg.report_to or "none",
        eval_strategy="steps" if has_eval else "no", eval_steps=cfg.eval_steps if has_eval else None,
        max_length=cfg.max_length, beta=cfg.beta, loss_type=[cfg.loss_type], dataloader_num_workers=0,
        disable_tqdm=True,
    )


def train_dpo(cfg: DPORunConfig) -> dict[str, Any]:
    """Train; returns a summary (also stored in output_dir/refinery_train.json)."""
    data = load_version(cfg.dataset, "preference", cfg.registry)
    if not data.rows.get("train"):
        raise ValueError(f"{data.ref} has no preference training rows")
    model, tokenizer = load_model_and_tokenizer(cfg)
    record_path, checkpoint = start_record(cfg, "dpo", data)
    train = tokenize_preference(data.rows["train"], tokenizer, cfg.chat_format, cfg.max_length)
    if not train["prompt_ids"]:
        raise ValueError(f"every preference prompt of {data.ref} is longer than max_length={cfg.max_length}")
    has_eval = cfg.eval_steps is not None and bool(data.rows.get("validation"))
    eval_data = (tokenize_preference(data.rows["validation"], tokenizer, cfg.chat_format, cfg.max_length)
                 if has_eval else None)
    if cfg.lora:
        model = apply_lora(model, cfg)
    trainer = _trainer_class()(model=model, args=trainer_args(cfg, has_eval), train_dataset=to_dataset(train),
                               eval_dataset=to_dataset(eval_data) if eval_data else None,
                               processing_class=tokenizer)
    metrics_path = Path(cfg.output_dir) / "metrics.jsonl"
    trainer.add_callback(metrics_callback(metrics_path))
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started
    return finish(trainer, tokenizer, cfg, record_path, result, seconds, len(train["skipped"]), metrics_path)
