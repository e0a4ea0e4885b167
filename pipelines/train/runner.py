"""What SFT and DPO runs share: loading, the TrainingArguments both configs take, training and the summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from pipelines.train.config import TrainConfig
from pipelines.train.data import load_version, to_dataset
from pipelines.train.metrics import metrics_callback, read_metrics, trained_tokens
from pipelines.train.model import apply_lora, finish_record, load_model_and_tokenizer, start_record, use_bf16

# method -> (export format it trains on, its name in messages)
_FORMATS = {"sft": ("sft", "SFT"), "dpo": ("preference", "preference")}


def shared_args(cfg: TrainConfig, has_eval: bool) -> dict[str, Any]:
    """Keyword arguments that SFTConfig and DPOConfig take alike."""
    import torch

    return dict(
        output_dir=cfg.output_dir, learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler_type, weight_decay=cfg.weight_decay, seed=cfg.seed,
        logging_steps=cfg.logging_steps, logging_first_step=True, save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, bf16=use_bf16(cfg), use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=cfg.gradient_checkpointing, report_to=cfg.report_to or "none",
        eval_strategy="steps" if has_eval else "no", eval_steps=cfg.eval_steps if has_eval else None,
        dataloader_num_workers=0, disable_tqdm=True,
    )


def train_run(cfg: TrainConfig, method: str, tokenize: Callable, column: str, empty: str,
              trainer_class: Callable[[], type], trainer_args: Callable) -> dict[str, Any]:
    """Load data and model, tokenize, train, save; returns the summary (also in output_dir/refinery_train.json).

    `empty` is raised (formatted with ref and max_length) when no training row keeps a `column` entry."""
    fmt, label = _FORMATS[method]
    data = load_version(cfg.dataset, fmt, cfg.registry)
    if not data.rows.get("train"):
        raise ValueError(f"{data.ref} has no {label} training rows")
    model, tokenizer = load_model_and_tokenizer(cfg)
    record_path, checkpoint = start_record(cfg, method, data)
    train = tokenize(data.rows["train"], tokenizer, cfg.chat_format, cfg.max_length)
    if not train[column]:
        raise ValueError(empty.format(ref=data.ref, max_length=cfg.max_length))
    has_eval = cfg.eval_steps is not None and bool(data.rows.get("validation"))
    eval_data = tokenize(data.rows["validation"], tokenizer, cfg.chat_format, cfg.max_length) if has_eval else None
    cls = trainer_class()
    if cfg.lora:
        model = apply_lora(model, cfg)
    trainer = cls(model=model, args=trainer_args(cfg, has_eval), train_dataset=to_dataset(train),
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
