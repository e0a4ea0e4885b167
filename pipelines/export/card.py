"""The dataset card (README.md) of a version, made from its manifest.

Its YAML front matter lists the configs and split files, which is what makes `datasets.load_dataset(folder)`
(and the Hugging Face Hub viewer, after a push) find the SFT and preference tables.
"""

from __future__ import annotations

from typing import Any

import yaml


def front_matter(manifest: dict[str, Any]) -> dict[str, Any]:
    configs = []
    for name, config in manifest["configs"].items():
        configs.append({
            "config_name": name,
            "data_files": [{"split": split, "path": f"data/{name}/{split}-*.parquet"} for split in config["splits"]],
            **({"default": True} if name == next(iter(manifest["configs"])) else {}),
        })
    return {"configs": configs, "tags": ["refinery", "synthetic", "lfm2"], "license": "other"}


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def dataset_card(manifest: dict[str, Any]) -> str:
    m = manifest
    origin = m.get("origin") or {}
    counts = m["counts"]
    ref = f"{m['name']}@{m['version']}"
    parts = ["---", yaml.safe_dump(front_matter(m), sort_keys=False).strip(), "---", "",
             f"# {ref}", ""]
    if m.get("description"):
        parts += [m["description"], ""]
    parts += [
        f"Made by Refinery on {m['created']} from recipe `{origin.get('recipe')}` "
        f"(fingerprint `{str(origin.get('fingerprint'))[:16]}`)"
        + (f", parent version `{m['parent']}`" if m.get("parent") else ", first version") + ".",
        f"Review snapshot: `{m['review_snapshot']}`." if m.get("review_snapshot") else "Not human-reviewed.",
        f"Content hash: `{m['content_hash']}`.", "",
        "## Contents", "",
        _table(["config", "split", "rows"], [[c, s, info["rows"]] for c, cfg in m["configs"].items()
                                             for s, info in cfg["splits"].items()]), "",
        f"Splits: {m['splits']['validation_share']:.0%} of {m['splits']['groups']} groups go to validation; "
        f"samples are grouped by {', '.join(m['splits']['group_by'])} so near-identical samples never "
        "straddle the split.", "",
        "## Composition", "",
        _table(["kind", "samples"], [[k, v] for k, v in counts["by_kind"].items()]), "",
        _table(["generator", "samples"], [[k, v] for k, v in counts["by_generator"].items()]), "",
        f"Distinct personas: {counts['personas']}.", "",
    ]
    if counts.get("dropped"):
        parts += ["Not exported: " + ", ".join(f"{k}: {v}" for k, v in counts["dropped"].items()) + ".", ""]
    if m.get("funnel"):
        parts += ["## How it was made (filter funnel)", "",
                  _table(["step", "component", "in", "out", "dropped"],
                         [[f["step"], f["component"], f["in"], f["out"],
                           ", ".join(f"{k}: {v}" for k, v in sorted(f["dropped"].items())) or "-"]
                          for f in m["funnel"]]), ""]
    parts += [
        "## Use it", "",
        "```python",
        "from datasets import load_dataset",
        "from pipelines.formats.trl import decode_row   # arguments and tools are stored as JSON text",
        "",
        "sft = load_dataset(\"PATH/TO/THIS/FOLDER\", \"sft\")",
        "row = decode_row(sft[\"train\"][0])              # {\"messages\": [...], \"tools\": [...]}",
        "```", "",
        f"or train on it directly: `refinery train sft CONFIG dataset={ref}`.",
        "" if not m.get("text") else f"\nThe `text` columns hold each conversation rendered in the `{m['text']}` "
                                    "chat format, ready for a plain language-modeling trainer.",
        "" if not m.get("chat_format") else f"\nMessages are laid out for the `{m['chat_format']}` chat templates "
                                           "(where reasoning and tool calls sit: Refinery's docs/export.md).",
    ]
    return "\n".join(parts).rstrip() + "\n"
