"""A tiny, randomly initialised LFM2 checkpoint built in-test (no downloads): a byte-level BPE tokenizer
trained here with LFM2's special tokens and a ChatML-style LFM2 chat template, and a 2-layer Lfm2ForCausalLM
(one short-conv layer, one attention layer, head_dim 64). Its output is gibberish; it exists to exercise
the plumbing of the transformers and vLLM backends (batching, seeds, token counts, n, structured retries).
"""

from __future__ import annotations

from pathlib import Path

SPECIAL = ["<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|tool_call_start|>",
           "<|tool_call_end|>", "<|tool_list_start|>", "<|tool_list_end|>", "<|tool_response_start|>",
           "<|tool_response_end|>", "<think>", "</think>"]

CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- if tools %}<|im_start|>system\nList of tools: <|tool_list_start|>{{ tools | tojson }}"
    "<|tool_list_end|><|im_end|>\n{% endif %}"
    "{%- for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the weather in Paris today? It is sunny and warm.",
    'get_weather(city="Paris", days=3) returns a forecast as JSON: {"temp": 21, "sky": "clear"}',
    "Persona: a nurse from Lagos who likes chess and wants quick dinner recipes.",
    "User: How do I bake bread?\nAssistant: Mix flour, water, salt and yeast, then knead.",
    "Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000, and symbols: [ ] ( ) { } : , \" ' = < > | _",
] * 20


def build_tiny_lfm2(path: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Lfm2Config, Lfm2ForCausalLM, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=448, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|startoftext|>", eos_token="<|im_end|>",
                                  pad_token="<|pad|>", additional_special_tokens=SPECIAL[5:])
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(path)

    vocab = 512  # >= the tokenizer's size, a multiple of 64 as real checkpoints use
    assert len(tok) <= vocab, len(tok)
    config = Lfm2Config(
        vocab_size=vocab, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=1024, layer_types=["conv", "full_attention"],
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        block_auto_adjust_ff_dim=False, tie_word_embeddings=True,
    )
    # Keys that real LFM2 config.json files carry and vLLM's LFM2 reads (transformers derives them).
    config.conv_dim = config.conv_dim_out = config.block_dim = config.hidden_size
    config.block_ff_dim = config.intermediate_size
    torch.manual_seed(seed)
    model = Lfm2ForCausalLM(config)
    model.save_pretrained(path)
    return path
