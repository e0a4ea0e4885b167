"""SFT on an exported dataset version with TRL's SFTTrainer: parse -> load data -> trainer -> train -> save.

Loss is on assistant turns only (labels are -100 elsewhere, built by `pipelines.train.data`). With packing
(the default) each batch is padding-free: its sequences are concatenated into one row, kept apart by
position ids (attention) and sequence ids (LFM2's short convolutions, see `packed_conv`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipelines.train.config import SFTRunConfig
from pipelines.train.data import load_version, to_dataset, tokenize_sft
from pipelines.train.metrics import metrics_callback, read_metrics, trained_tokens
from pipelines.train.model import (
    apply_lora, finish_record, load_model_and_tokenizer, start_record, use_bf16,
)


def trainer_args(cfg: SFTRunConfig, has_eval: bool, **extra: Any):
    import torch
    from trl import SFTConfig

    return SFTConfig(
        output_dir=cfg.output_dir, learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler_type, weight_decay=cfg.weight_decay, seed=cfg.seed,
        logging_steps=cfg.logging_steps, logging_first_step=True, save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, bf16=use_bf16(cfg), use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=cfg.gradient_checkpointing, report_to=cfg.report_to or "none",
        eval_strategy="steps" if has_eval else "no", eval_steps=cfg.eval_steps if has_eval else None,
        # Rows arrive tokenized and truncated; labels already hold the assistant-only mask.
        max_length=None, packing=False, padding_free=cfg.packing, assistant_only_loss=False,
        completion_only_loss=False, dataloader_num_workers=0, disable_tqdm=True, **extra,
    )


def train_sft(cfg: SFTRunConfig) -> dict[str, Any]:
    """Train; returns a summary (also stored in output_dir/refinery_train.json)."""
    data = load_version(cfg.dataset, "sft", cfg.registry)
    if not data.rows.get("train"):
        raise ValueError(f"{data.ref} has no SFT training rows")
    from trl import SFTTrainer

    model, tokenizer = load_model_and_tokenizer(cfg)
    record_path, checkpoint = start_record(cfg, "sft", data)
    train = tokenize_sft(data.rows["train"], tokenizer, cfg.chat_format, cfg.max_length)
    if not train["input_ids"]:
        raise ValueError(f"no training row of {data.ref} has an assistant token within max_length={cfg.max_length}")
    has_eval = cfg.eval_steps is not None and bool(data.rows.get("validation"))
    eval_data = tokenize_sft(data.rows["validation"], tokenizer, cfg.chat_format, cfg.max_length) if has_eval else None
    if cfg.packing:
        from pipelines.train import packed_conv

        packed_conv.enable()
    if cfg.lora:
        model = apply_lora(model, cfg)
    trainer = SFTTrainer(model=model, args=trainer_args(cfg, has_eval), train_dataset=to_dataset(train),
                         eval_dataset=to_dataset(eval_data) if eval_data else None, processing_class=tokenizer)
    metrics_path = Path(cfg.output_dir) / "metrics.jsonl"
    trainer.add_callback(metrics_callback(metrics_path))
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started
    return finish(trainer, tokenizer, cfg, record_path, result, seconds, len(train["skipped"]), metrics_path)


def finish(trainer, tokenizer, cfg, record_path: Path, result, seconds: float, skipped: int,
           metrics_path: Path) -> dict[str, Any]:
    """Save the model and tokenizer, write the summary into refinery_train.json, return it."""
    tokens = trained_tokens(trainer)
    model = trainer.model
    model.config.use_cache = True  # generation after training should use the cache again
    trainer.save_model(cfg.output_dir)
    tokenizer.save_pretrained(cfg.output_dir)
    losses = [m["loss"] for m in read_metrics(metrics_path) if "loss" in m]
    summary = {
        "global_step": trainer.state.global_step,
        "train_loss": result.training_loss,
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
        "rows_skipped_too_long": skipped,
    }
    finish_record(record_path, summary)
    return summary
