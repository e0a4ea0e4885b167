"""`refinery tools check|show SOURCE...`: load tool catalogs the way generate.function_calling will.

    refinery tools check builtin bfcl my_tools.jsonl     counts, or the first bad tool with file:line
    refinery tools show bfcl:multiple --limit 5          tools as the prompts list them, with their groups
    refinery tools show my_tools.jsonl --json            the normalised OpenAI-style tools, one per line
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

tools_app = typer.Typer(help="Tool catalogs for function-calling generation.", no_args_is_help=True,
                        add_completion=False)
SOURCES_HELP = "tool sources: builtin, bfcl, bfcl:<category>, or .json/.jsonl files"


def _load(sources: list[str]):
    from pipelines.tools.catalog import load_catalog
    from pipelines.tools.schema import ToolSchemaError

    try:
        return load_catalog(tuple(sources))
    except (ToolSchemaError, ValueError, FileNotFoundError) as e:
        print(str(e), file=sys.stderr)
        raise typer.Exit(2)


@tools_app.command()
def check(sources: Annotated[list[str], typer.Argument(help=SOURCES_HELP)]) -> None:
    """Normalise every tool and check it against the JSON Schema meta-schema; print what was found."""
    catalog = _load(sources)
    print(f"ok: {len(catalog)} distinct tools in {len(catalog.groups)} groups "
          f"({len(catalog.executable)} run in Python, {len(catalog.result_schemas)} with a result schema, "
          f"{len(catalog.chains)} multi-step chains)")


@tools_app.command()
def show(
    sources: Annotated[list[str], typer.Argument(help=SOURCES_HELP)],
    limit: Annotated[int, typer.Option(min=1, help="most tools to show")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print the normalised tools as JSON lines")] = False,
) -> None:
    """List tools as the few-shot prompts show them (or as normalised JSON)."""
    from pipelines.tools.prompting import signature

    catalog = _load(sources)
    for i, tool in enumerate(catalog.tools[:limit]):
        if as_json:
            print(json.dumps(tool, ensure_ascii=False))
        else:
            how = "python" if i in catalog.executable else "simulated"
            print(f"{signature(tool)}  [{how}]")


def register(app: typer.Typer) -> None:
    app.add_typer(tools_app, name="tools")
