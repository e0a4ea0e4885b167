"""`refinery export` and `refinery datasets list|show|diff|pull`: publish runs as dataset versions, read them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

REGISTRY_HELP = "dataset registry folder (default: $REFINERY_DATASETS or ./datasets)"


def _fail(message: str, code: int = 2) -> None:
    print(message, file=sys.stderr)
    raise typer.Exit(code)


def _registry(path: Optional[Path]):
    from pipelines.export.registry import Registry

    return Registry(path)


def _resolve(registry, ref: str):
    from pipelines.export.registry import DatasetNotFound

    try:
        return registry.resolve(ref)
    except (DatasetNotFound, ValueError) as e:
        _fail(str(e))


def export(
    run_dir: Annotated[Path, typer.Argument(help="a finished run directory")],
    name: Annotated[str, typer.Option(help="dataset name in the registry")],
    registry: Annotated[Optional[Path], typer.Option(help=REGISTRY_HELP)] = None,
    format: Annotated[Optional[list[str]],
                      typer.Option(help="sft and/or preference (repeatable; default both)")] = None,
    validation: Annotated[float, typer.Option(min=0.0, max=0.99, help="share of groups held out")] = 0.1,
    split_by: Annotated[Optional[list[str]],
                        typer.Option(help="persona, source, prompt (repeatable; default all)")] = None,
    text: Annotated[str, typer.Option(
        help="add LFM2-rendered text columns in a dialect: lfm2, lfm2.5, lfm2.5-canonical, lfm2-llamacpp, "
             "lfm2.5-llamacpp, or none")] = "lfm2",
    template_date: Annotated[Optional[str], typer.Option(
        help="YYYY-MM-DD written as \"Today's date:\" by lfm2.5-canonical text (default: today, UTC)")] = None,
    chat_format: Annotated[str, typer.Option(
        help="where assistant turns carry reasoning and tool calls: lfm2 (TRL and llama.cpp LFM2 templates), "
             "lfm2-leap (leap-finetune's LFM2 templates), lfm2.5 (the LFM2.5 templates) or structured "
             "(Refinery's trainer); see docs/export.md")] = "lfm2",
    review_snapshot: Annotated[Optional[str], typer.Option(help="review snapshot id these samples come from")] = None,
    step: Annotated[Optional[str], typer.Option(help="export this step's output (default: the final steps)")] = None,
    description: Annotated[Optional[str], typer.Option(help="a sentence for the dataset card")] = None,
) -> None:
    """Publish a finished run's final samples as the next version of a dataset."""
    from pipelines.export.builder import FORMATS, ExportOptions
    from pipelines.export.runs import export_run
    from pipelines.export.splits import GROUP_KEYS
    from pipelines.formats.trl import ConversionError

    from pipelines.formats.chat_formats import CHAT_FORMATS

    from pipelines.formats.pythonic_calls import DIALECTS

    if text not in (*DIALECTS, "none"):
        _fail(f"--text: expected one of {', '.join(DIALECTS)} or none, got {text!r}")
    if chat_format not in CHAT_FORMATS:
        _fail(f"--chat-format: expected one of {', '.join(CHAT_FORMATS)}, got {chat_format!r}")
    try:
        options = ExportOptions(name=name, formats=tuple(format or FORMATS), validation=validation,
                                split_by=tuple(split_by or GROUP_KEYS), text=None if text == "none" else text,
                                chat_format=chat_format, template_date=template_date,
                                review_snapshot=review_snapshot, description=description)
        ref, reused, builder = export_run(run_dir, options, _registry(registry), step)
    except (FileNotFoundError, KeyError) as e:
        _fail(str(e).strip("'\""))
    except ConversionError as e:
        _fail(f"cannot export: {e}", 1)
    except ValueError as e:
        _fail(str(e))
    rows = json.loads((ref.path / "manifest.json").read_text())["counts"]["rows"]
    summary = ", ".join(f"{c}: {n} rows" for c, n in rows.items())
    dropped = ", ".join(f"{k}: {v}" for k, v in sorted(builder.dropped.items()))
    note = f"; not exported: {dropped}" if dropped else ""
    print(f"{'unchanged, reusing' if reused else 'exported'} {ref} ({summary}){note}", file=sys.stderr)
    print(ref.path)


def list_datasets(registry: Annotated[Optional[Path], typer.Option(help=REGISTRY_HELP)] = None) -> None:
    """Every dataset in the registry with its latest version."""
    from rich.console import Console
    from rich.table import Table

    reg = _registry(registry)
    names = reg.names()
    if not names:
        print(f"no datasets in {reg.root}", file=sys.stderr)
        return
    table = Table(title=f"datasets in {reg.root}")
    for col in ("name", "latest", "versions", "rows", "created", "review snapshot"):
        table.add_column(col)
    for name in names:
        ref = reg.latest(name)
        m = reg.manifest(ref)
        rows = ", ".join(f"{c} {n}" for c, n in m["counts"]["rows"].items())
        table.add_row(name, ref.tag, str(len(reg.versions(name))), rows, m["created"], m.get("review_snapshot") or "-")
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def show(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (e.g. quickstart@v2, quickstart@latest)")],
    registry: Annotated[Optional[Path], typer.Option(help=REGISTRY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole manifest as JSON")] = False,
) -> None:
    """A version's manifest: origin, counts, splits, funnel and whether its files are intact."""
    reg = _registry(registry)
    version = _resolve(reg, ref)
    m = reg.manifest(version)
    problems = reg.verify(version)
    if as_json:
        print(json.dumps({**m, "path": str(version.path), "intact": not problems, "problems": problems}, indent=2))
        raise typer.Exit(1 if problems else 0)
    origin = m.get("origin") or {}
    lines = [
        f"{version}  ({version.path})",
        f"created {m['created']}, parent {m.get('parent') or '-'}, content hash {m['content_hash'][:16]}",
        f"recipe {origin.get('recipe')} (fingerprint {str(origin.get('fingerprint'))[:16]}), "
        f"run {origin.get('run_dir')}, review snapshot {m.get('review_snapshot') or '-'}",
    ]
    for config, info in m["configs"].items():
        splits = ", ".join(f"{s} {v['rows']}" for s, v in info["splits"].items())
        lines.append(f"{config}: {splits}")
    c = m["counts"]
    lines.append("kinds: " + ", ".join(f"{k} {v}" for k, v in c["by_kind"].items()))
    lines.append("generators: " + ", ".join(f"{k} {v}" for k, v in c["by_generator"].items()))
    sp = m["splits"]
    lines.append(f"personas: {c['personas']}; split groups: {sp['groups']} "
                 f"(validation share {sp['validation_share']}, grouped by {', '.join(sp['group_by'])})")
    if c.get("dropped"):
        lines.append("not exported: " + ", ".join(f"{k} {v}" for k, v in c["dropped"].items()))
    for f in m.get("funnel") or []:
        drops = ", ".join(f"{k} {v}" for k, v in sorted(f["dropped"].items())) or "-"
        lines.append(f"  {f['step']:<16} {f['component']:<22} in {f['in']:>6}  out {f['out']:>6}  dropped: {drops}")
    lines.append("files intact" if not problems else "DAMAGED: " + "; ".join(problems))
    print("\n".join(lines))
    if problems:
        raise typer.Exit(1)


def diff(
    old: Annotated[str, typer.Argument(help="NAME@VERSION")],
    new: Annotated[str, typer.Argument(help="NAME@VERSION, or just VERSION for the same dataset")],
    registry: Annotated[Optional[Path], typer.Option(help=REGISTRY_HELP)] = None,
    limit: Annotated[int, typer.Option(min=0, help="most ids listed per change kind")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print the diff as JSON")] = False,
) -> None:
    """What was added, removed and changed between two versions."""
    from pipelines.export.diff import diff_versions

    reg = _registry(registry)
    a = _resolve(reg, old)
    b = _resolve(reg, new if "@" in new else f"{a.name}@{new}")
    d = diff_versions(reg, a, b, detail=limit)
    if as_json:
        print(json.dumps(d, indent=2))
        return
    print(f"{d['from']} -> {d['to']}" + ("  (same content)" if d["same_content"] else ""))
    for config, c in d["configs"].items():
        print(f"{config}: +{c['n_added']} added, -{c['n_removed']} removed, ~{c['n_changed']} changed, "
              f"{c['unchanged']} unchanged")
        for sid in c["added"]:
            print(f"  + {sid}")
        for sid in c["removed"]:
            print(f"  - {sid}")
        for ch in c["changed"]:
            print(f"  ~ {ch['from_id']} -> {ch['to_id']}: {', '.join(ch['fields'])}")
    for kind, (x, y) in d["counts"]["by_kind"].items():
        if x != y:
            print(f"kind {kind}: {x} -> {y}")


def pull(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (@latest allowed)")],
    registry: Annotated[Optional[Path], typer.Option(help=REGISTRY_HELP)] = None,
    to: Annotated[Optional[Path], typer.Option(help="copy the version into this new folder")] = None,
) -> None:
    """Check a version's files and print its folder (or copy it with --to): what trainers load."""
    reg = _registry(registry)
    version = _resolve(reg, ref)
    problems = reg.verify(version)
    if problems:
        _fail(f"{version} is damaged: " + "; ".join(problems), 1)
    if to is not None:
        try:
            print(reg.copy(version, to))
        except FileExistsError as e:
            _fail(str(e))
        return
    print(version.path)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    datasets = typer.Typer(help="Versioned datasets in the local registry: list, show, diff, pull.",
                           no_args_is_help=True)
    datasets.command("list")(list_datasets)
    datasets.command("show")(show)
    datasets.command("diff")(diff)
    datasets.command("pull")(pull)
    app.add_typer(datasets, name="datasets")
