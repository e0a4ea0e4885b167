"""A tiny random LFM2 checkpoint and tokenizer, built offline, for tests, smoke runs and benchmarks.

No real LFM2 weights can be downloaded here, so CI trains this instead: the real architecture
(`Lfm2ForCausalLM`, short-convolution blocks and grouped-query attention blocks mixed by `layer_types`,
head_dim 64) at a size that trains in seconds on a CPU, with a byte-level BPE tokenizer trained on the
persona bank that carries LFM2's chat special tokens and ships TRL's LFM2 chat template.
It learns nothing useful; it exercises every code path a real checkpoint does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pipelines.formats.lfm2 import BOS, IM_END, SPECIAL_TOKENS, THINK_CLOSE, THINK_OPEN

PAD = "<|pad|>"
DEFAULT_LAYER_TYPES = ("conv", "full_attention", "conv", "full_attention")
_BANK = Path(__file__).resolve().parents[2] / "personas" / "data" / "bank.jsonl"
# Text shapes the tokenizer should have seen besides prose: tool schemas, calls, numbers.
_EXTRA = [
    '{"type": "function", "function": {"name": "get_weather", "description": "Current weather", '
    '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}',
    "[get_weather(city='Paris', days=3), math.sum(numbers=[1, 2, 3.5], exact=True)]",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14 -2 True False None null true false",
]


def default_corpus() -> list[str]:
    if not _BANK.exists():
        raise FileNotFoundError(f"{_BANK} is missing: the tiny tokenizer is trained on the persona bank")
    lines = []
    with open(_BANK, encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            lines.append(p.get("description", ""))
            lines.append(" ".join(str(p.get(k, "")) for k in ("occupation", "domain", "region", "goals")))
    return lines + _EXTRA * 50


def build_tokenizer(corpus: Iterable[str] | None = None, vocab_size: int = 1024, chat_format: str = "lfm2"):
    """A fast tokenizer with LFM2's special tokens, bos/eos/pad as LFM2 sets them, and its chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from pipelines.train.templates import chat_template

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(corpus if corpus is not None else default_corpus()), trainer=trainer)
    tok.add_tokens([THINK_OPEN, THINK_CLOSE])
    # Like LFM2's tokenizer: plain `tokenizer(text)` prepends <|startoftext|>. Chat text already carries it,
    # so everything in Refinery tokenizes rendered text with add_special_tokens=False.
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A $B",
                                                       special_tokens=[(BOS, bos_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=IM_END, pad_token=PAD)
    fast.chat_template = chat_template(chat_format)
    return fast


def build_model(tokenizer, hidden_size: int = 128, layer_types: Iterable[str] = DEFAULT_LAYER_TYPES,
                intermediate_size: int = 256, seed: int = 0):
    """A randomly initialised Lfm2ForCausalLM; head_dim 64 like the real models."""
    import torch
    from transformers import Lfm2Config, Lfm2ForCausalLM

    layer_types = list(layer_types)
    if hidden_size % 64:
        raise ValueError(f"hidden_size must be a multiple of 64 (LFM2's head_dim), got {hidden_size}")
    config = Lfm2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        block_auto_adjust_ff_dim=False, num_hidden_layers=len(layer_types), layer_types=layer_types,
        num_attention_heads=hidden_size // 64, num_key_value_heads=max(1, hidden_size // 128),
        max_position_embeddings=8192, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Lfm2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def init_tiny(path: str | Path, seed: int = 0, hidden_size: int = 128, chat_format: str = "lfm2") -> Path:
    """Write a tiny random LFM2 checkpoint + tokenizer to `path` (a folder from_pretrained can load)."""
    path = Path(path)
    tokenizer = build_tokenizer(chat_format=chat_format)
    model = build_model(tokenizer, hidden_size=hidden_size, seed=seed)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "REFINERY_TINY.md").write_text(
        "A tiny randomly initialised LFM2 made by `refinery train init-tiny` for tests and smoke runs.\n"
        "It has the real architecture and tokenizer conventions but has learned nothing.\n", encoding="utf-8")
    return path
