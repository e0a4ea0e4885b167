"""Samples -> the rows of one dataset version (SFT and preference), with splits and counts.

`VersionBuilder.add` converts one sample (raising ConversionError on anything it does not understand) and
returns a drop Verdict when the sample yields no row at all; `write` assigns splits and writes the version
into the registry. Rows are held in memory until then, because a sample's split depends on every other
sample sharing its persona, source or prompt.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pipelines.core.sample import Sample, Verdict, content_hash
from pipelines.export.splits import GROUP_KEYS, assign_splits, group_keys
from pipelines.formats.chat_formats import CHAT_FORMATS, lay_out
from pipelines.formats.trl import ConversionError, NoPreferenceSignal, encode_message, preference_row, sft_row

FORMATS = ("sft", "preference")
STEP_NAME = "export.dataset"


@dataclass(frozen=True)
class ExportOptions:
    name: str
    formats: tuple[str, ...] = FORMATS
    validation: float = 0.1
    split_by: tuple[str, ...] = GROUP_KEYS
    split_seed: int = 0
    text: str | None = "lfm2"  # add LFM2-rendered text columns in this dialect; None for no text
    chat_format: str = "lfm2"  # where assistant turns carry reasoning and calls (pipelines.formats.chat_formats)
    template_date: str | None = None  # "Today's date:" of LFM2.5 canonical text; default: the export's UTC date
    review_snapshot: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if not set(self.formats) <= set(FORMATS) or not self.formats:
            raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {self.formats}")
        if not 0.0 <= self.validation < 1.0:
            raise ValueError(f"validation share must be in [0, 1), got {self.validation}")
        if not set(self.split_by) <= set(GROUP_KEYS):
            raise ValueError(f"split_by must be a subset of {GROUP_KEYS}, got {self.split_by}")
        if self.chat_format not in CHAT_FORMATS:
            raise ValueError(f"chat_format must be one of {', '.join(CHAT_FORMATS)}, got {self.chat_format!r}")
        if self.template_date is not None:
            try:
                datetime.strptime(self.template_date, "%Y-%m-%d")
            except ValueError:
                raise ValueError(f"template_date must be YYYY-MM-DD, got {self.template_date!r}") from None
        elif self.text in ("lfm2.5-canonical", "lfm2.5-llamacpp"):  # it writes a date: fix it, record it
            object.__setattr__(self, "template_date", datetime.now(timezone.utc).strftime("%Y-%m-%d"))


@dataclass
class _Row:
    config: str
    data: dict[str, Any]
    group: list[str]


@dataclass
class VersionBuilder:
    options: ExportOptions
    rows: list[_Row] = field(default_factory=list)
    samples_in: int = 0
    samples_out: int = 0
    dropped: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)
    by_generator: Counter = field(default_factory=Counter)
    by_persona: Counter = field(default_factory=Counter)
    snapshots: set = field(default_factory=set)  # review snapshots named by the samples (review.pull sets them)

    def add(self, sample: Sample) -> Verdict | None:
        """Convert one sample. Returns None when it yields rows, else the Verdict that drops it."""
        self.samples_in += 1
        if sample.kind == "seed":
            raise ConversionError(sample.id, "a seed sample has no conversation to export; "
                                             "put a generator between the source and the export")
        made, skipped = [], []
        keys = group_keys(sample, list(self.options.split_by))
        if "sft" in self.options.formats and sample.kind != "preference":
            made.append(self._sft(sample, keys))
        if "preference" in self.options.formats and (sample.kind == "preference" or sample.candidates):
            try:
                made.append(self._preference(sample, keys))
            except NoPreferenceSignal as e:
                skipped.append(e)
        if not made:
            wanted = self.options.formats
            reason = skipped[0].reason if skipped else f"no_{'_or_'.join(wanted)}_row"
            detail = skipped[0].detail if skipped else f"a {sample.kind} sample makes no {'/'.join(wanted)} row"
            self.dropped[reason] += 1
            return Verdict(filter=STEP_NAME, keep=False, reason=reason, details={"detail": detail})
        for e in skipped:  # an SFT row was made; the preference pair was not: count it, do not drop
            self.dropped[f"preference:{e.reason}"] += 1
        self.rows.extend(made)
        self.samples_out += 1
        review = sample.meta.get("review")
        if isinstance(review, dict) and review.get("snapshot"):
            self.snapshots.add(str(review["snapshot"]))
        self.by_kind[sample.kind] += 1
        self.by_generator[str(sample.provenance.get("generator") or "unknown")] += 1
        if sample.persona:
            self.by_persona[str(sample.persona.get("id", "unnamed"))] += 1
        return None

    def _meta(self, sample: Sample) -> dict[str, Any]:
        persona_id = sample.persona.get("id") if isinstance(sample.persona, dict) else None
        return {"id": sample.id, "kind": sample.kind,
                "generator": sample.provenance.get("generator"),
                "persona_id": None if persona_id is None else str(persona_id)}

    def _laid_out(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [lay_out(m, self.options.chat_format) for m in messages]

    def _sft(self, sample: Sample, keys: list[str]) -> _Row:
        row = sft_row(sample)
        prompt_side = [m for m in row["messages"] if m["role"] != "assistant"]
        messages = self._laid_out(row["messages"])
        data = {**self._meta(sample),
                "key": content_hash({"tools": row["tools"], "turns": prompt_side}, 16),
                "messages": [encode_message(m) for m in messages],
                "tools": _json(row["tools"])}
        text = _render(sample.id, messages, row["tools"], self.options)
        if self.options.text:
            data["text"] = text
        return _Row("sft", data, keys)

    def _preference(self, sample: Sample, keys: list[str]) -> _Row:
        row = preference_row(sample)
        laid = {k: self._laid_out(row[k]) for k in ("prompt", "chosen", "rejected")}
        data = {**self._meta(sample),
                "key": content_hash({"tools": row["tools"], "prompt": row["prompt"]}, 16),
                **{k: [encode_message(m) for m in laid[k]] for k in laid},
                "tools": _json(row["tools"]),
                "score_chosen": _float(row["score_chosen"]), "score_rejected": _float(row["score_rejected"]),
                "preference_source": row["preference_source"]}
        chosen = _render(sample.id, laid["prompt"] + laid["chosen"], row["tools"], self.options)
        rejected = _render(sample.id, laid["prompt"] + laid["rejected"], row["tools"], self.options)
        if self.options.text:
            data["text_chosen"], data["text_rejected"] = chosen, rejected
        return _Row("preference", data, keys)

    # ---- splitting and summary ------------------------------------------------------------------

    def split(self) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], int]:
        """{config: {split: rows sorted by id}} and the number of split groups."""
        splits, groups = assign_splits([r.group for r in self.rows], self.options.validation,
                                       self.options.split_seed)
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for row, split in zip(self.rows, splits):
            out.setdefault(row.config, {}).setdefault(split, []).append(row.data)
        for config in out.values():
            for rows in config.values():
                rows.sort(key=lambda d: (d["id"], d["key"]))
        return out, groups

    def review_snapshot(self) -> str | None:
        """The snapshot named in the options, else the one(s) the reviewed samples came from."""
        return self.options.review_snapshot or (", ".join(sorted(self.snapshots)) or None)

    def counts(self) -> dict[str, Any]:
        return {
            "samples_in": self.samples_in,
            "samples_exported": self.samples_out,
            "by_kind": dict(sorted(self.by_kind.items())),
            "by_generator": dict(sorted(self.by_generator.items())),
            "personas": len(self.by_persona),
            "by_persona": dict(sorted(self.by_persona.items())),
            "dropped": dict(sorted(self.dropped.items())),
        }


def _render(sample_id: str, messages: list[dict[str, Any]], tools: list[Any], options: ExportOptions) -> str:
    """The LFM2 text of a row. Rendered even when no text column is wanted: a row the trainer could not
    render (a tool name that is no Python identifier, reasoning holding </think>) must fail the export, not
    the training run weeks later."""
    from pipelines.formats.lfm2 import render

    dialect = options.text or "lfm2"
    try:
        return render(messages, tools, dialect, date=options.template_date)
    except ValueError as e:  # LFM2FormatError, ToolCallFormatError
        raise ConversionError(sample_id, f"cannot be written in the {dialect} chat format: {e}") from None


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
