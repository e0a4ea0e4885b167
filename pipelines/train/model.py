"""Loading a checkpoint for training (LFM2, or any causal LM taught the LFM2 tokens): device and precision,
chat template, LoRA, run records."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipelines.train.config import TrainConfig, as_dict

RECORD = "refinery_train.json"


def use_bf16(cfg: TrainConfig) -> bool:
    """Whether to train with bf16 autocast: on a GPU that supports it, or on a CPU with native bf16 (AVX-512
    BF16 or AMX; TRL defaults to bf16 too). On the student that doubled CPU throughput (docs/train.md)."""
    if cfg.precision == "fp32":
        return False
    native = _gpu_bf16() or _cpu_bf16()
    if cfg.precision == "bf16" and not native:
        raise ValueError("precision=bf16 needs a GPU or CPU with native bf16 (AVX-512 BF16, AMX); use "
                         "precision=auto or fp32")
    return native


def _gpu_bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _cpu_bf16() -> bool:
    import torch

    return not torch.cuda.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def load_model_and_tokenizer(cfg: TrainConfig):
    """(model, tokenizer) from cfg.model; builds the tiny random model there first when asked to."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipelines.train.templates import chat_template

    from pipelines.train.students import STUDENTS, student_path

    path = student_path(cfg.model) if cfg.model in STUDENTS else Path(cfg.model)
    if not (path / "config.json").exists():
        if not cfg.init_tiny_model:
            raise FileNotFoundError(f"no checkpoint at {path} (config.json missing); point `model` at a local "
                                    f"folder or a named student ({', '.join(STUDENTS)}), or set "
                                    "init_tiny_model=true for a tiny random LFM2")
        from pipelines.train.tiny import init_tiny

        init_tiny(path, seed=cfg.seed, chat_format=cfg.chat_format)
    tokenizer = AutoTokenizer.from_pretrained(path)
    # On a GPU the weights are bf16; on CPU they stay fp32 and bf16 is autocast (mixed precision).
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.bfloat16 if use_bf16(cfg) and _gpu_bf16() else torch.float32)
    if model.config.model_type != "lfm2":
        add_lfm2_tokens(model, tokenizer)
    # The saved model should render prompts exactly as it was trained; TRL's template for this dialect.
    tokenizer.chat_template = chat_template(cfg.chat_format)
    if tokenizer.pad_token is None:
        raise ValueError(f"the tokenizer at {path} has no pad token; LFM2 tokenizers use <|pad|>")
    # Caches are for generation; with one, transformers stops keeping packed sequences apart.
    model.config.use_cache = False
    return model, tokenizer


def add_lfm2_tokens(model, tokenizer) -> list[str]:
    """Teach a non-LFM2 model LFM2's conversation format: the LFM2 special tokens it lacks become special
    tokens (so `<|tool_call_start|>` is one token, not nine), `<|pad|>` pads (SmolLM2 pads with its end of
    turn, which would hide where turns end), and the embeddings grow to the new vocabulary (new rows start
    drawn around the mean of the old ones, transformers' default). Returns the tokens added."""
    from pipelines.formats.lfm2 import SPECIAL_TOKENS, THINK_CLOSE, THINK_OPEN

    vocab = tokenizer.get_vocab()
    new = [t for t in (*SPECIAL_TOKENS, THINK_OPEN, THINK_CLOSE) if t not in vocab]
    if new:
        tokenizer.add_special_tokens({"additional_special_tokens": new}, replace_extra_special_tokens=False)
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        tokenizer.pad_token = "<|pad|>"
    model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    return new


def apply_lora(model, cfg: TrainConfig):
    from peft import LoraConfig, get_peft_model

    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in cfg.lora_target_modules if m not in present]
    if missing:
        known = sorted(present & {"q_proj", "k_proj", "v_proj", "o_proj", "out_proj", "in_proj", "w1", "w2", "w3",
                                  "gate_proj", "up_proj", "down_proj"})
        raise ValueError(f"LoRA target modules {missing} are not in this model (its projections: {known})")
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.lora_target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None


def start_record(cfg: TrainConfig, method: str, data: Any) -> tuple[Path, str | None]:
    """Write output_dir/refinery_train.json (what is trained on what) and decide where to resume from.

    Refuses to resume a run that trained on another dataset version: its checkpoints belong to other data."""
    import torch
    import transformers
    import trl

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / RECORD
    previous = json.loads(record_path.read_text()) if record_path.exists() else None
    checkpoint = last_checkpoint(out)
    if checkpoint and not cfg.resume:
        raise ValueError(f"{out} already holds checkpoints ({Path(checkpoint).name}); set resume=true to continue "
                         "or choose another output_dir")
    dataset = {"ref": str(data.ref), "path": str(data.ref.path.resolve()),
               "content_hash": data.manifest["content_hash"],
               "rows": {split: len(rows) for split, rows in data.rows.items()}}
    if checkpoint and previous and previous["dataset"]["content_hash"] != dataset["content_hash"]:
        raise ValueError(f"{out} holds checkpoints trained on {previous['dataset']['ref']}, not {data.ref}; "
                         "use another output_dir")
    record = {
        "method": method,
        "dataset": dataset,
        "model": str(Path(cfg.model).resolve()),
        "config": as_dict(cfg),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "resumed_from": Path(checkpoint).name if checkpoint else None,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                     "python": platform.python_version()},
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "bf16": use_bf16(cfg),
        "history": (previous or {}).get("history", []),
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record_path, checkpoint


def finish_record(record_path: Path, summary: dict[str, Any]) -> None:
    record = json.loads(record_path.read_text())
    record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record["summary"] = summary
    record["history"] = [*record.get("history", []), {"started": record["started"], "finished": record["finished"],
                                                       "resumed_from": record["resumed_from"], **summary}]
    record_path.write_text(json.dumps(record, indent=2) + "\n")
