"""Padding-free (packed) training for LFM2 without the CUDA-only `causal-conv1d` kernel.

TRL's padding-free collator concatenates a batch's sequences into one row and passes `position_ids` (which
keep the attention blocks apart) and `seq_idx` (the sequence each token belongs to). LFM2's short
convolutions must not mix tokens of neighbouring sequences either; transformers keeps them apart only with
the `causal-conv1d` CUDA kernel and otherwise refuses packed input. This module supplies the missing piece in
plain PyTorch: a depthwise causal convolution that zeroes every tap reaching back into another sequence. It
is exact (tested against running each sequence alone) and runs on CPU and GPU.

`enable()` swaps it into transformers' LFM2 module; unpacked calls go to the original function untouched, and
packed ones too when the CUDA kernel is installed (it handles `seq_idx` itself).
"""

from __future__ import annotations

from typing import Any

_ORIGINAL: dict[str, Any] = {}


def segment_causal_conv1d(hidden_states, weight, bias=None, activation=None, seq_idx=None, **_: Any):
    """out[:, :, t] = sum_s w[:, K-1-s] * x[:, :, t-s] over taps s whose token t-s is in t's sequence.

    hidden_states (B, C, T); weight (C, K); seq_idx (B, T) sequence index per token, or None.
    """
    import torch.nn.functional as F
    from transformers.activations import ACT2FN

    x = hidden_states.to(weight.dtype)
    k = weight.shape[-1]
    out = x * weight[:, k - 1].unsqueeze(-1)
    if seq_idx is not None:
        seq = seq_idx.to(x.device)
    for s in range(1, k):
        shifted = F.pad(x, (s, 0))[..., : x.shape[-1]]
        if seq_idx is not None:
            same = F.pad(seq[:, s:] == seq[:, :-s], (s, 0), value=False).unsqueeze(1).to(x.dtype)
            shifted = shifted * same
        out = out + shifted * weight[:, k - 1 - s].unsqueeze(-1)
    if bias is not None:
        out = out + bias.unsqueeze(-1)
    if activation is not None:
        out = ACT2FN[activation](out)
    return out.to(hidden_states.dtype)


def _dispatch(hidden_states, weight, bias=None, activation=None, **kwargs: Any):
    original = _ORIGINAL["causal_conv1d_fn"]
    if kwargs.get("seq_idx") is None:
        return original(hidden_states, weight, bias, activation, **kwargs)
    if _ORIGINAL.get("kernel") is not False:
        # Where the causal-conv1d kernel is installed (CUDA), it keeps sequences apart itself and is faster.
        try:
            out = original(hidden_states, weight, bias, activation, **kwargs)
            _ORIGINAL["kernel"] = True
            return out
        except ValueError as e:
            if "packed sequences" not in str(e):
                raise
            _ORIGINAL["kernel"] = False
    return segment_causal_conv1d(hidden_states, weight, bias, activation, seq_idx=kwargs["seq_idx"])


def enable() -> None:
    """Route LFM2's packed short-convolution calls through `segment_causal_conv1d` (idempotent)."""
    from transformers.models.lfm2 import modeling_lfm2

    if "causal_conv1d_fn" not in _ORIGINAL:
        if not hasattr(modeling_lfm2, "causal_conv1d_fn"):
            raise RuntimeError("this transformers version has no modeling_lfm2.causal_conv1d_fn; packed LFM2 "
                               "training needs the version pinned in the train extra")
        _ORIGINAL["causal_conv1d_fn"] = modeling_lfm2.causal_conv1d_fn
        modeling_lfm2.causal_conv1d_fn = _dispatch


def disable() -> None:
    from transformers.models.lfm2 import modeling_lfm2

    if "causal_conv1d_fn" in _ORIGINAL:
        modeling_lfm2.causal_conv1d_fn = _ORIGINAL.pop("causal_conv1d_fn")
        _ORIGINAL.pop("kernel", None)
