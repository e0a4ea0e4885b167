"""Padding-free packing is exact for LFM2: a packed row gives every sequence the logits it gets alone."""

import pytest
import torch

from pipelines.train import packed_conv
from pipelines.train.tiny import build_model
from tests.formats.samples import tiny_tokenizer


def test_packed_sequences_get_exactly_their_unpacked_logits():
    tok = tiny_tokenizer()
    model = build_model(tok, layer_types=["conv", "full_attention", "conv", "conv", "full_attention"]).eval()
    texts = ["An immigration lawyer from Auckland asks about a contract clause.",
             "Weather in Paris?", "[get_weather(city='Oslo', days=3)]"]
    seqs = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    ids = torch.tensor([sum(seqs, [])])
    position_ids = torch.tensor([[p for s in seqs for p in range(len(s))]])
    seq_idx = torch.tensor([[i for i, s in enumerate(seqs) for _ in s]], dtype=torch.int32)
    with torch.no_grad():
        alone = [model(torch.tensor([s]), use_cache=False).logits[0] for s in seqs]
        packed_conv.disable()
        # Without it, transformers refuses packed LFM2 input on machines without the CUDA conv kernel...
        with pytest.raises(ValueError, match="packed sequences"):
            model(ids, position_ids=position_ids, seq_idx=seq_idx, use_cache=False)
        # ...and without seq_idx the short convolutions would read across sequence boundaries.
        leaky = model(ids, position_ids=position_ids, use_cache=False).logits[0]
        packed_conv.enable()
        packed = model(ids, position_ids=position_ids, seq_idx=seq_idx, use_cache=False).logits[0]
    start = 0
    for s, logits in zip(seqs, alone):
        assert torch.allclose(packed[start:start + len(s)], logits, atol=1e-5)
        start += len(s)
    assert not torch.allclose(leaky[len(seqs[0]):], torch.cat(alone[1:]), atol=1e-3)
    # Unpacked calls still take transformers' own path.
    with torch.no_grad():
        assert torch.equal(model(torch.tensor([seqs[0]]), use_cache=False).logits[0], alone[0])
