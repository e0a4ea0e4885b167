"""`refinery eval MODEL --suite NAME ...` and `refinery eval compare BEFORE AFTER`."""

# No `from __future__ import annotations`: typer reads the option help, built from the suite names inside
# register(), from annotations evaluated where the commands are defined.
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

_HELP = ("Functional evals of a model (GGUF or embedded name, checkpoint folder, or a model on an "
         "OpenAI-compatible server): `refinery eval MODEL --suite bfcl_simple ...`, and "
         "`refinery eval compare BEFORE_DIR AFTER_DIR`.")


class _ModelFirst(TyperGroup):
    """`refinery eval MODEL ...` runs the eval: a first argument that names no subcommand is a model."""

    def resolve_command(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


def _fail(message: str, code: int = 2) -> None:
    print(message, file=sys.stderr)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    from pipelines.evals.suites import SUITES

    evals = typer.Typer(cls=_ModelFirst, help=_HELP, no_args_is_help=True)

    @evals.command("run")
    def run(
        model: Annotated[str, typer.Argument(help="GGUF path, embedded model name, checkpoint folder, or the "
                                                  "server's model name with --base-url")],
        suite: Annotated[list[str], typer.Option(help=f"suite to run (repeat for several): {', '.join(SUITES)}")],
        out: Annotated[Path, typer.Option("-o", "--out", help="eval directory to write")],
        limit: Annotated[Optional[int], typer.Option(min=1, help="first N items of each suite (fixed order)")] = None,
        format: Annotated[Optional[list[str]], typer.Option(
            help="prompt format (repeat for both): lfm2 (Refinery's training format) or json (a plain "
                 "prompt for an untrained chat model); default both, the better counts")] = None,
        base_url: Annotated[Optional[str], typer.Option(
            help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")] = None,
        threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads (llama.cpp, transformers)")] = None,
    ) -> None:
        """Run eval suites against one model: items.jsonl (every item's prompt, output, verdict and reason)
        and summary.json (accuracy per suite and format) in the eval directory."""
        from pipelines.evals.runner import evaluate

        try:
            summary = evaluate(model, suite, out, format, limit, base_url, threads,
                               progress=lambda line: print(line, file=sys.stderr))
        except (ValueError, FileNotFoundError) as e:
            _fail(f"refinery eval: {e}")
        for name, best in summary["best"].items():
            print(f"{name:24} {best['accuracy']:.3f}  ({best['correct']}/{best['n']}, {best['format']} prompt)")
        print(out)

    @evals.command("compare")
    def compare_cmd(
        before: Annotated[Path, typer.Argument(help="eval directory of the model before training")],
        after: Annotated[Path, typer.Argument(help="eval directory of the model after training")],
        as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
        show: Annotated[int, typer.Option(min=0, help="flipped item ids to list per suite and direction")] = 5,
    ) -> None:
        """Per-suite accuracy deltas with 95% paired-bootstrap intervals, and the items that flipped."""
        from pipelines.evals.compare import compare

        try:
            result = compare(before, after)
        except FileNotFoundError as e:
            _fail(f"refinery eval compare: {e}")
        if as_json:
            print(json.dumps(result, indent=2))
            return
        print(f"{'suite':24} {'n':>4} {'before':>7} {'after':>7} {'delta':>7}  95% interval")
        for name, r in result.items():
            print(f"{name:24} {r['n']:>4} {r['before']:>7.3f} {r['after']:>7.3f} {r['delta']:>+7.3f}  "
                  f"[{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]")
            for label, ids in (("fixed", r["fixed"]), ("broken", r["broken"])):
                if ids and show:
                    more = f" (+{len(ids) - show} more)" if len(ids) > show else ""
                    print(f"    {label}: {', '.join(ids[:show])}{more}")

    app.add_typer(evals, name="eval")
