"""`refinery` — run, validate and look into recipe runs.

Exit status: 0 success, 1 the run failed (a step raised; finished work is kept and a rerun resumes),
2 bad input (recipe, override, run directory), with one line per problem and no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
# Wide enough for the status table when piped (rich assumes 80 columns without a terminal).
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)


def _fail(message: str, code: int = 2) -> None:
    # Plain print: rich would wrap long lines, and each problem must stay on one line for grep and editors.
    print(message, file=sys.stderr)
    raise typer.Exit(code)


def _split_args(args: list[str]) -> tuple[list[str], list[str]]:
    recipes = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    return recipes, overrides


@app.command()
def validate(
    args: Annotated[list[str], typer.Argument(help="recipe files, then optional key=value overrides")],
) -> None:
    """Check recipes without running anything: components, parameters, types, dependencies, overrides."""
    from pipelines.core.recipe import validate_recipes

    recipes, overrides = _split_args(args)
    if not recipes:
        _fail("refinery validate: give at least one recipe file")
    problems = validate_recipes(recipes, overrides)
    if problems:
        _fail("\n".join(str(p) for p in problems))
    for r in recipes:
        out.print(f"ok: {r}")


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="recipe YAML file")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides, e.g. steps.chat.turns=2")] = None,
    run_dir: Annotated[Optional[Path], typer.Option(help="run directory (default: runs/<recipe name>)")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="worker processes (default: recipe, else CPUs)")] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    executor: Annotated[Optional[str], typer.Option(
        help="local (a process pool here) or ray (default: the recipe's executor:, else local); docs/scale.md")] = None,
    address: Annotated[Optional[str], typer.Option(
        help="Ray cluster address, host:port or auto (default: start Ray on this machine)")] = None,
) -> None:
    """Run a recipe. Rerunning the same command resumes: finished steps and shards are reused."""
    from pipelines.core.executor import RunFailed, run_recipe
    from pipelines.core.pools import PoolUnavailable
    from pipelines.core.recipe import EXECUTORS, RecipeError, load_recipe

    if executor is not None and executor not in EXECUTORS:
        _fail(f"--executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")

    try:
        spec = load_recipe(recipe, overrides or [])
    except RecipeError as e:
        _fail("\n".join(str(p) for p in e.problems))
    target = run_dir or Path("runs") / spec.name
    try:
        if progress:
            from pipelines.progress import RichProgress

            with RichProgress(err) as bars:
                result = run_recipe(spec, target, workers, bars, executor, address)
        else:
            result = run_recipe(spec, target, workers, executor=executor, address=address)
    except PoolUnavailable as e:
        _fail(str(e))
    except RunFailed as e:
        _fail(f"run failed: {e}\nfinished work is kept in {target}; rerun the same command to resume", 1)
    if result.reused:
        err.print(f"reused finished steps: {', '.join(result.reused)}")
    for name, shards in result.repaired.items():
        err.print(f"recomputed damaged shards of {name}: {shards}")
    print(target)


@app.command()
def status(run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Per-step state, counts, drops by reason, model requests, cache hits, tokens and time."""
    from pipelines.cli_views import comparison_tables, status_table

    try:
        out.print(status_table(run_dir))
    except FileNotFoundError as e:
        _fail(str(e))
    for table in comparison_tables(run_dir):
        out.print(table)


@app.command()
def inspect(
    run_dir: Annotated[Path, typer.Argument(help="a run directory")],
    id: Annotated[Optional[str], typer.Option("--id", help="show the sample with this id (prefix ok)")] = None,
    rejected: Annotated[bool, typer.Option(help="show dropped samples with the verdicts that dropped them")] = False,
    step: Annotated[Optional[str], typer.Option(help="step to read (default: the final steps)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="most samples to show")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print samples as JSON")] = False,
) -> None:
    """Show samples of a run: the final output, one step's output, or what a step dropped and why."""
    from pipelines.cli_views import iter_samples, show_sample

    shown = 0
    try:
        for s in iter_samples(run_dir, step, rejected or False, id):
            show_sample(out, s, as_json)
            shown += 1
            if shown >= limit:
                break
    except (FileNotFoundError, KeyError) as e:
        _fail(str(e).strip("'\""))
    if shown == 0:
        _fail(f"no {'rejected ' if rejected else ''}sample{' with id ' + id if id else ''} found in {run_dir}", 1)


# Command groups of other capabilities. Each module has `register(app)`, which adds its commands; the
# modules import their heavy dependencies inside the commands, so `refinery --help` stays fast.
COMMAND_MODULES: tuple[str, ...] = (
    "pipelines.export.cli",
    "pipelines.train.cli",
    "review_ui.cli",
    "filters.cli",
    "pipelines.tools.cli",
    "pipelines.evals.cli",
    "pipelines.report.cli",
)


def _register_commands() -> None:
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)


_register_commands()


def main() -> None:
    app(prog_name="refinery")


if __name__ == "__main__":
    sys.exit(main())
