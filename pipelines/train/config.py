"""Trainer configs: dataclasses with a help string per field, loaded from YAML plus `key=value` overrides.

    # refinery train sft recipes/train/lfm2_sft_tiny.yaml
    model: models/tiny-lfm2
    dataset: quickstart@latest
    output_dir: runs/train/lfm2_sft_tiny

Loading validates everything before anything heavy is imported: unknown keys (with a "did you mean"),
wrong types and bad values are reported together, one `FILE:LINE: key: message` line each, like recipes.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError

from pipelines.core.errors import Problem, RecipeError, got, hint, pydantic_messages
from pipelines.core.yaml_lines import compose_with_lines, describe_yaml_error, line_of

LFM2_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "in_proj", "w1", "w2", "w3"]
_REF_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*(@(latest|v?\d+))?$")


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass
class TrainConfig:
    """Shared by SFT and DPO.

    Model and data: model, dataset, registry, output_dir, init_tiny_model, chat_format, max_length.
    Optimisation: learning_rate, num_train_epochs, max_steps, per_device_train_batch_size,
        gradient_accumulation_steps, warmup_ratio, lr_scheduler_type, weight_decay, seed.
    LoRA: lora, lora_r, lora_alpha, lora_dropout, lora_target_modules.
    Hardware: precision, gradient_checkpointing.
    Checkpoints and logs: save_steps, save_total_limit, logging_steps, eval_steps, resume, report_to.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    model: str = _help("local folder of an LFM2 checkpoint (config, weights, tokenizer)")
    dataset: str = _help("dataset version to train on: NAME@VERSION from the registry (@latest allowed)")
    output_dir: str = _help("where checkpoints, metrics, the final model and refinery_train.json go")
    registry: str | None = _help("dataset registry folder (default: $REFINERY_DATASETS or ./datasets)", None)
    init_tiny_model: bool = _help("when `model` does not exist, build a tiny random LFM2 there first "
                                  "(smoke tests and CI only: it has learned nothing)", False)
    chat_format: Literal["lfm2", "lfm2.5"] = _help(
        "chat format: lfm2 (LFM2 checkpoints: tool list and tool response markers, <think> on every "
        "assistant turn) or lfm2.5 (LFM2.5: <think> kept after the last user turn only)", "lfm2")
    max_length: int = _help("longest training sequence in tokens; longer ones are truncated", 2048)
    learning_rate: float = _help("peak learning rate (AdamW)", 2e-5)
    num_train_epochs: float = _help("passes over the training split (ignored when max_steps > 0)", 1.0)
    max_steps: int = _help("stop after this many optimizer steps; -1: run num_train_epochs", -1)
    per_device_train_batch_size: int = _help("sequences per device per step (packed into one row for SFT)", 8)
    gradient_accumulation_steps: int = _help("micro-batches per optimizer step", 1)
    warmup_ratio: float = _help("share of steps spent warming the learning rate up", 0.0)
    lr_scheduler_type: str = _help("learning-rate schedule (transformers names: linear, cosine, constant...)",
                                   "linear")
    weight_decay: float = _help("AdamW weight decay", 0.0)
    seed: int = _help("seed for data order, dropout and LoRA initialisation", 42)
    lora: bool = _help("train LoRA adapters (peft) instead of every weight", False)
    lora_r: int = _help("LoRA rank", 16)
    lora_alpha: int = _help("LoRA scaling numerator (scale = alpha / r)", 32)
    lora_dropout: float = _help("dropout on the LoRA path", 0.05)
    lora_target_modules: list[str] = _help(
        "modules that get adapters; LFM2: attention q/k/v/out_proj, short-conv in_proj/out_proj, MLP w1/w2/w3",
        factory=lambda: list(LFM2_LORA_TARGETS))
    precision: Literal["auto", "fp32", "bf16"] = _help(
        "auto: bf16 where the hardware has it natively (GPU weights in bf16; CPU with AVX-512 BF16 or AMX: "
        "fp32 weights, bf16 autocast), else fp32", "auto")
    gradient_checkpointing: bool = _help("recompute activations in the backward pass to save memory", False)
    save_steps: int = _help("write a checkpoint every this many steps (also written at the end)", 500)
    save_total_limit: int | None = _help("keep at most this many checkpoints (null: all)", 2)
    logging_steps: int = _help("log loss, learning rate and tokens/s every this many steps", 10)
    eval_steps: int | None = _help("evaluate on the validation split every this many steps (null: never)", None)
    resume: bool = _help("continue from the newest checkpoint in output_dir when there is one", True)
    report_to: list[str] = _help("extra metric sinks (tensorboard, wandb...); metrics.jsonl is always written",
                                 factory=list)


@dataclass
class SFTRunConfig(TrainConfig):
    """Supervised fine-tuning: loss on assistant turns only."""

    packing: bool = _help("padding-free packed batches: a batch's sequences are concatenated into one row and "
                          "kept apart by position ids and sequence-aware short convolutions. Pays with a "
                          "variable-length attention kernel (flash-attention on GPU); with PyTorch's attention "
                          "the packed row costs attention over its whole length (slower on CPU, measured)", False)
    group_by_length: bool = _help("padded batches of sequences of similar length (transformers' length-grouped "
                                  "sampler, still shuffled in blocks): little compute spent on padding", True)


@dataclass
class DPORunConfig(TrainConfig):
    """Direct preference optimisation on chosen/rejected pairs."""

    learning_rate: float = _help("peak learning rate (AdamW)", 5e-7)
    beta: float = _help("DPO temperature: how far the policy may move from the reference model", 0.1)
    loss_type: str = _help("DPO loss (TRL names: sigmoid, ipo, hinge, ...)", "sigmoid")
    per_device_train_batch_size: int = _help("preference pairs per device per step", 4)


METHODS: dict[str, type[TrainConfig]] = {"sft": SFTRunConfig, "dpo": DPORunConfig}


def describe(cls: type[TrainConfig]) -> str:
    """Every key with its default and help: the text `refinery train sft --help` shows."""
    lines = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f"default {f.default!r}"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"default {f.default_factory()!r}"
        else:
            default = "required"
        lines.append(f"{f.name} ({default}): {f.metadata.get('help', '')}")
    return "\n\n".join(lines)


def _check_values(cfg: TrainConfig) -> list[tuple[str, str]]:
    bad = []
    if not _REF_RE.match(cfg.dataset):
        bad.append(("dataset", f"expected NAME@VERSION (e.g. quickstart@v2 or quickstart@latest), got {cfg.dataset!r}"))
    for key in ("max_length", "per_device_train_batch_size", "gradient_accumulation_steps", "lora_r",
                "lora_alpha", "save_steps", "logging_steps"):
        if getattr(cfg, key) < 1:
            bad.append((key, f"must be >= 1, got {getattr(cfg, key)}"))
    if cfg.max_steps == 0 or cfg.max_steps < -1:
        bad.append(("max_steps", f"must be -1 (use num_train_epochs) or >= 1, got {cfg.max_steps}"))
    if cfg.learning_rate <= 0:
        bad.append(("learning_rate", f"must be > 0, got {cfg.learning_rate}"))
    if not 0 <= cfg.warmup_ratio < 1:
        bad.append(("warmup_ratio", f"must be in [0, 1), got {cfg.warmup_ratio}"))
    if not 0 <= cfg.lora_dropout < 1:
        bad.append(("lora_dropout", f"must be in [0, 1), got {cfg.lora_dropout}"))
    if cfg.lora and not cfg.lora_target_modules:
        bad.append(("lora_target_modules", "LoRA needs at least one target module"))
    if cfg.eval_steps is not None and cfg.eval_steps < 1:
        bad.append(("eval_steps", f"must be >= 1 or null, got {cfg.eval_steps}"))
    if isinstance(cfg, DPORunConfig) and cfg.beta <= 0:
        bad.append(("beta", f"must be > 0, got {cfg.beta}"))
    return bad


def load_config(method: str, path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read, override and validate a train config; RecipeError lists every problem (FILE:LINE: ...)."""
    if method not in METHODS:
        raise ValueError(f"unknown training method {method!r}; known: {', '.join(METHODS)}")
    cls = METHODS[method]
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise RecipeError([Problem(filename, 1, f"cannot read config: {e.strerror}")]) from None
    doc = compose_with_lines(text, filename)
    if doc.problems:
        raise RecipeError(doc.problems)
    data = doc.data if doc.data is not None else {}
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise RecipeError([Problem(filename, 1, f"a train config is a mapping of keys, got {got(data)}")])
    from_override: dict[str, str] = {}
    for item in overrides:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            problems.append(Problem(filename, 1, f"override '{item}': expected KEY=VALUE, e.g. max_steps=10"))
            continue
        try:
            data[key] = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            problems.append(Problem(filename, 1,
                                    f"override '{item}': value is not valid YAML: {describe_yaml_error(e)}"))
            continue
        from_override[key] = item

    def report(key: Any, message: str) -> None:
        prefix = f"override '{from_override[key]}': " if key in from_override else ""
        problems.append(Problem(filename, line_of(doc.lines, (key,)), f"{prefix}{key}: {message}"))

    names = [f.name for f in dataclasses.fields(cls)]
    for key in [k for k in data if k not in names]:
        other = next((m for m, c in METHODS.items() if c is not cls and key in
                      {f.name for f in dataclasses.fields(c)}), None)
        why = f" (it is a {other} setting; this is a {method} config)" if other else hint(key, names)
        report(key, f"unknown key{why}")
        del data[key]
    cfg = None
    try:
        cfg = TypeAdapter(cls).validate_python(data)
    except ValidationError as exc:
        for loc, message in pydantic_messages(exc, data, "key", names):
            report(loc[0] if loc else "", message)
    if cfg is not None:
        for key, message in _check_values(cfg):
            report(key, message)
    if problems:
        raise RecipeError(problems)
    return cfg


def as_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)

