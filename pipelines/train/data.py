"""An exported dataset version -> token ids and loss masks, rendered with our LFM2 renderer.

We tokenize ourselves instead of letting TRL apply the chat template, for two reasons: the rendering is the
one `pipelines.formats.lfm2` defines (tested equal to TRL's LFM2 templates, token for token), and rows keep
their exact tool-call arguments (a datasets/Arrow column would merge every function's argument names into
every call). The loss mask follows transformers' `{% generation %}` rule exactly: a token is supervised when
it overlaps an assistant span (the assistant turn's body through its `<|im_end|>\\n`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.export.registry import Registry, VersionRef
from pipelines.formats.lfm2 import render, render_segments
from pipelines.formats.trl import decode_row

IGNORE = -100


@dataclass
class VersionData:
    ref: VersionRef
    manifest: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]]  # split -> decoded TRL rows


def load_version(dataset: str, config: str, registry: str | None = None) -> VersionData:
    """Decoded rows per split of one config ('sft' or 'preference') of NAME@VERSION; checks file integrity."""
    import pyarrow.parquet as pq

    reg = Registry(registry)
    ref = reg.resolve(dataset)
    problems = reg.verify(ref)
    if problems:
        raise ValueError(f"{ref} is damaged: {'; '.join(problems)}")
    manifest = reg.manifest(ref)
    if config not in manifest["configs"]:
        advice = "; export preference pairs (judged candidates) to train DPO" if config == "preference" else ""
        raise ValueError(f"{ref} has no {config} rows (configs: {', '.join(manifest['configs'])}){advice}")
    rows = {}
    for split, info in manifest["configs"][config]["splits"].items():
        rows[split] = [decode_row(r) for f in info["files"] for r in pq.read_table(ref.path / f).to_pylist()]
    return VersionData(ref, manifest, rows)


def assistant_mask(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[int]:
    """1 for every token overlapping a span: transformers' rule for `return_assistant_tokens_mask`."""
    mask = [0] * len(offsets)
    i = 0
    for t, (start, end) in enumerate(offsets):
        while i < len(spans) and start >= spans[i][1]:
            i += 1
        if i == len(spans):
            break
        if end > spans[i][0]:
            mask[t] = 1
    return mask


def tokenize_sft(rows: list[dict[str, Any]], tokenizer, dialect: str, max_length: int) -> dict[str, list]:
    """{"input_ids", "labels"} per conversation; labels are -100 outside assistant turns.

    Conversations longer than max_length are cut at the end; one left with no supervised token is skipped
    (counted in "skipped")."""
    texts, spans = [], []
    for row in rows:
        segments = render_segments(row["messages"], row["tools"], dialect)
        pos, these = 0, []
        for seg in segments:
            if seg.trainable:
                these.append((pos, pos + len(seg.text)))
            pos += len(seg.text)
        texts.append("".join(s.text for s in segments))
        spans.append(these)
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    out: dict[str, list] = {"input_ids": [], "labels": [], "skipped": []}
    for i, ids in enumerate(enc["input_ids"]):
        mask = assistant_mask(enc["offset_mapping"][i], spans[i])
        ids, mask = ids[:max_length], mask[:max_length]
        if not any(mask):
            out["skipped"].append(i)
            continue
        out["input_ids"].append(ids)
        out["labels"].append([t if m else IGNORE for t, m in zip(ids, mask)])
    return out


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def tokenize_preference(rows: list[dict[str, Any]], tokenizer, dialect: str, max_length: int) -> dict[str, list]:
    """{"prompt_ids", "chosen_ids", "rejected_ids"} the way TRL's DPOTrainer cuts them: the prompt rendered
    with the generation prompt, each completion the rest of prompt + answer after their common prefix."""
    out: dict[str, list] = {"prompt_ids": [], "chosen_ids": [], "rejected_ids": [], "skipped": []}
    for i, row in enumerate(rows):
        def ids(text: str) -> list[int]:
            return tokenizer(text, add_special_tokens=False)["input_ids"]

        prompt = ids(render(row["prompt"], row["tools"], dialect, add_generation_prompt=True))
        chosen = ids(render(row["prompt"] + row["chosen"], row["tools"], dialect))
        rejected = ids(render(row["prompt"] + row["rejected"], row["tools"], dialect))
        cut = min(_common_prefix(prompt, chosen), _common_prefix(prompt, rejected))
        if cut >= max_length:
            out["skipped"].append(i)  # the prompt alone fills max_length: nothing left to compare
            continue
        out["prompt_ids"].append(prompt[:cut])
        out["chosen_ids"].append(chosen[cut:])
        out["rejected_ids"].append(rejected[cut:])
    return out


def to_dataset(columns: dict[str, list]):
    from datasets import Dataset

    return Dataset.from_dict({k: v for k, v in columns.items() if k != "skipped"})
