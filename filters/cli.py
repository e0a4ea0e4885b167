"""`refinery diversity RUN_DIR`: diversity metrics of a run's samples, for the whole run and per group.

Heavy libraries (sentence-transformers, scikit-learn) are imported inside the command, so `refinery --help`
stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

METRICS = ("n", "vendi", "distinct_1", "distinct_2", "distinct_3", "cluster_coverage", "cluster_balance", "mean_cosine")


def diversity(
    run_dir: Annotated[Path, typer.Argument(help="a run directory")],
    step: Annotated[Optional[str], typer.Option(help="step whose output is measured (default: the final steps)")] = None,
    by: Annotated[Optional[list[str]], typer.Option(
        "--by", help="group key, repeatable: kind, generator, persona.ATTR, provenance.KEY, meta.KEY")] = None,
    scope: Annotated[str, typer.Option(help="text measured: conversation, user_turns, first_user_turn, assistant_turns, last_assistant_turn")] = "conversation",
    embedder: Annotated[str, typer.Option(help="minilm, or static (model2vec distilled from MiniLM: ~70x faster, coarser)")] = "minilm",
    model: Annotated[str, typer.Option(help="with --embedder minilm: sentence-transformers model (packaged name or local folder)")] = "all-MiniLM-L6-v2",
    clusters: Annotated[int, typer.Option(min=1, help="k-means clusters for coverage and balance")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Vendi score, distinct-n and embedding cluster coverage/balance, per run and per group."""
    from rich.console import Console
    from rich.table import Table

    from filters.views import check_group_key, group_value, view
    from pipelines.cli_views import iter_samples

    try:
        keys = [check_group_key(k) for k in (by or ["kind", "generator"])]
        samples = list(iter_samples(run_dir, step, False))
        texts = [view(s, scope) for s in samples]
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(str(e).strip("'\""), file=sys.stderr)
        raise typer.Exit(2)
    if not samples:
        print(f"no samples in {run_dir}{' step ' + step if step else ''}", file=sys.stderr)
        raise typer.Exit(1)
    from filters.diversity_metrics import diversity_report
    from filters.embeddings import embed_texts, model_for

    if embedder not in ("static", "minilm"):
        print(f"--embedder: expected static or minilm, got {embedder!r}", file=sys.stderr)
        raise typer.Exit(2)
    model = model_for(embedder, model)
    try:
        emb = embed_texts(model, texts)
    except (FileNotFoundError, RuntimeError) as e:
        print(str(e), file=sys.stderr)
        raise typer.Exit(2)
    groups = {key: [group_value(s, key) for s in samples] for key in keys}
    report = diversity_report(texts, emb, groups, clusters)
    report.update({"model": model, "scope": scope, "run_dir": str(run_dir), "step": step})
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table(title=f"diversity of {run_dir}{' / ' + step if step else ''} ({report['clusters']} clusters, {scope})")
    for col in ("group", "value", *METRICS):
        table.add_column(col, justify="left" if col in ("group", "value") else "right")
    rows = [("run", "all", report["overall"])] + [
        (key, value, m) for key, per in report["groups"].items() for value, m in per.items()]
    for group, value, m in rows:
        table.add_row(group, value, *(str(m[k]) for k in METRICS))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def register(app: typer.Typer) -> None:
    app.command()(diversity)
