"""`refinery report RUN_DIR`: the run report as one self-contained HTML file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def report(
    run_dir: Annotated[Path, typer.Argument(help="a run directory (finished, failed or still running)")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="HTML file (default RUN_DIR/report.html)")] = None,
    embedder: Annotated[str, typer.Option(help="diversity map embeddings: static (fast) or minilm")] = "static",
    max_map: Annotated[int, typer.Option(min=3, help="most kept samples on the diversity map")] = 5000,
    max_browser: Annotated[int, typer.Option(min=10, help="most samples in the page's sample browser")] = 2000,
) -> None:
    """Funnel, drop reasons, yield per process, persona coverage, diversity map, cost, evals and a sample
    browser, in one HTML file that opens from disk with no network."""
    from pipelines.report.page import EMBEDDERS, build_report

    if embedder not in EMBEDDERS:
        print(f"--embedder: expected one of {', '.join(EMBEDDERS)}, got {embedder!r}", file=sys.stderr)
        raise typer.Exit(2)
    try:
        path = build_report(run_dir, output, embedder, max_browser, max_map)
    except FileNotFoundError as e:
        print(str(e), file=sys.stderr)
        raise typer.Exit(2) from None
    print(path)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
