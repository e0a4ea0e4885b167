"""Where an exported assistant turn carries its reasoning and its tool calls, for the chat template that will
render it.

Trainers apply the templates that ship with the models and runtimes, and those read different fields:

| chat_format  | reasoning                              | tool calls                                  | for the templates     |
|--------------|----------------------------------------|---------------------------------------------|-----------------------|
| `lfm2`       | `<think>...</think>` opening `content` | `tool_calls`                                | TRL `lfm2_v2`, llama.cpp `llama-cpp-lfm2` |
| `lfm2-leap`  | `<think>...</think>` opening `content` | written into `content`, before the text     | leap-finetune `lfm2_chat_template`, `lfm2_tool_call_chat_template` |
| `lfm2.5`     | `thinking`                             | `tool_calls`                                | TRL `lfm2_2_5_v2`, llama.cpp `LFM2.5-8B-A1B`, leap-finetune `lfm2_5_chat_template` |
| `structured` | `reasoning`                            | `tool_calls`                                | Refinery's own trainer (renders itself); templates that read `reasoning` |

None of the LFM2 templates has a reasoning field, so `lfm2` writes the reasoning where the template copies it
from (the content); a row in the `structured` layout trained through one of them silently loses its
reasoning. leap-finetune's LFM2 templates ignore `tool_calls`, and its docs want the calls in the content,
before any text. The LFM2.5 templates read `thinking` (TRL's also `reasoning` and `reasoning_content`).
Every layout reads back into the same conversation (`pipelines.formats.messages`), except that
`lfm2-leap`'s calls become part of the text.
"""

from __future__ import annotations

from typing import Any

from pipelines.formats.lfm2 import THINK_CLOSE, THINK_OPEN
from pipelines.formats.messages import from_trl_message
from pipelines.formats.pythonic_calls import render_tool_calls

CHAT_FORMATS = ("lfm2", "lfm2-leap", "lfm2.5", "structured")


def lay_out(message: dict[str, Any], chat_format: str) -> dict[str, Any]:
    """A TRL message dict (reasoning in `reasoning`, calls in `tool_calls`) in the layout of `chat_format`."""
    if chat_format not in CHAT_FORMATS:
        raise ValueError(f"unknown chat_format {chat_format!r}; known: {', '.join(CHAT_FORMATS)}")
    if message["role"] != "assistant" or chat_format == "structured":
        return message
    out = dict(message)
    reasoning = out.pop("reasoning", None)
    if chat_format == "lfm2.5":
        if reasoning:
            out["thinking"] = reasoning
        return out
    think = f"{THINK_OPEN}{reasoning}{THINK_CLOSE}" if reasoning else ""
    calls = ""
    if chat_format == "lfm2-leap" and out.get("tool_calls"):
        calls = render_tool_calls(from_trl_message(out).tool_calls, "lfm2")
        del out["tool_calls"]
    out["content"] = think + calls + (out.get("content") or "")
    return out
