"""`refinery review ...`: the local stack, pushing samples, annotator users, pulling snapshots.

Exit status: 0 success, 1 the operation failed (server unreachable, a push stopped: rerun to resume),
2 bad input (unknown dataset, unreadable source).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

review = typer.Typer(help="Human review in Argilla: local stack, push, users, pull snapshots.",
                     no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
stack_app = typer.Typer(help="The local Argilla stack (argilla-server, worker, redis, noida-db search).",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
users_app = typer.Typer(help="Annotator accounts.", no_args_is_help=True, add_completion=False,
                        pretty_exceptions_enable=False)
review.add_typer(stack_app, name="stack")
review.add_typer(users_app, name="users")

StackDir = Annotated[Optional[Path], typer.Option("--dir", help="stack folder (default: $REFINERY_CACHE/review-stack)")]


def register(app: typer.Typer) -> None:
    app.add_typer(review, name="review")


def _fail(message: str, code: int = 1) -> None:
    print(message, file=sys.stderr)
    raise typer.Exit(code)


def _errors():
    from review_ui.connection import ReviewError
    from review_ui.stack import StackError
    from review_ui.system import InstallError

    return (ReviewError, StackError, InstallError)


# ---- stack ------------------------------------------------------------------------------------------

@stack_app.command("up")
def stack_up(port: Annotated[Optional[int], typer.Option(help="UI/API port (default 6900)")] = None,
             dir: StackDir = None) -> None:
    """Start the local stack, installing it on first use (a minute or two), and print URL and login."""
    from review_ui.stack import LocalStack

    stack = LocalStack(dir, log=lambda m: print(m, file=sys.stderr))
    try:
        st = stack.up(port)
    except _errors() as e:
        _fail(str(e))
    print(f"Argilla UI:  {st.url}\nlogin:       {st.username} / {st.password}\napi key:     {st.api_key}\n"
          f"folder:      {stack.root}\n"
          f"search:      noida-db (an Elasticsearch emulator, for local use; production Argilla runs on "
          f"Elasticsearch)\n"
          f"use it:      refinery review ... picks this stack up when ARGILLA_API_URL is not set")


@stack_app.command("down")
def stack_down(dir: StackDir = None) -> None:
    """Stop the local stack; its data stays for the next `up`."""
    from review_ui.stack import LocalStack

    LocalStack(dir).down()
    print("stopped")


@stack_app.command("status")
def stack_status(dir: StackDir = None) -> None:
    """Which processes run, and whether the server answers. Exit 1 when it is not healthy."""
    from review_ui.stack import LocalStack

    status = LocalStack(dir).status()
    print(json.dumps(status, indent=2))
    if not status["healthy"]:
        raise typer.Exit(1)


# ---- users ------------------------------------------------------------------------------------------

@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="login name")],
    workspace: Annotated[str, typer.Option(help="workspace the user may annotate in")] = "refinery",
    role: Annotated[str, typer.Option(help="annotator | admin")] = "annotator",
    password: Annotated[Optional[str], typer.Option(help="password (default: a random one, printed)")] = None,
) -> None:
    """Create an annotator (or admin) and give them the workspace; an existing user just gets access."""
    from review_ui.connection import resolve
    from review_ui.datasets import ensure_user

    if role not in ("annotator", "admin"):
        _fail(f"--role must be annotator or admin, got {role!r}", 2)
    try:
        user = ensure_user(resolve(), username, workspace, role, password)
    except _errors() as e:
        _fail(str(e))
    pw = user["password"] or "(unchanged)"
    print(f"user {username} ({user['role']}) in workspace {workspace}; password: {pw}")


# ---- push / pull ------------------------------------------------------------------------------------

def _source_samples(source: Path):
    if source.is_dir():
        from pipelines.cli_views import iter_samples

        return iter_samples(source, None, False), source / "review" / "journal"
    if source.is_file():
        from pipelines.core.sample import Sample
        from review_ui.system import cache_dir

        def read():
            with open(source, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            yield Sample.from_json(line)
                        except (ValueError, KeyError, TypeError) as e:
                            raise ValueError(f"{source}:{lineno}: not a sample: {e}") from None

        return read(), cache_dir() / "review-journal"
    raise FileNotFoundError(f"{source}: no such run directory or JSONL file")


@review.command("push")
def push_cmd(
    source: Annotated[Path, typer.Argument(help="a run directory (its final samples) or a samples JSONL file")],
    dataset: Annotated[str, typer.Option(help="dataset base name; one dataset per kind: <dataset>-<kind>")],
    workspace: Annotated[str, typer.Option(help="Argilla workspace (created if missing)")] = "refinery",
    min_submitted: Annotated[int, typer.Option(min=1, help="answers each record needs")] = 1,
    vectors: Annotated[str, typer.Option(help="none | minilm | meta")] = "none",
    batch_size: Annotated[int, typer.Option(min=1, max=500)] = 200,
    concurrency: Annotated[int, typer.Option(min=1, max=8)] = 2,
    judge: Annotated[str, typer.Option(help="filter whose verdict pre-fills suggestions")] = "judge",
    answers: Annotated[int, typer.Option(min=2, max=8, help="preference: answer slots")] = 3,
) -> None:
    """Push samples for review: batched, idempotent (record id = sample id), resumable (rerun it)."""
    from review_ui.connection import resolve
    from review_ui.push import PushOptions, push

    try:
        samples, journal = _source_samples(source)
        opts = PushOptions(dataset=dataset, workspace=workspace, min_submitted=min_submitted, vectors=vectors,
                           batch_size=batch_size, concurrency=concurrency, judge=judge, answers=answers)
        report = push(samples, resolve(), opts, journal, log=lambda m: print(m, file=sys.stderr))
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e), 2)
    except _errors() as e:
        _fail(str(e))
    for d in report.datasets.values():
        print(f"{d.name}: sent {d.sent}, already there {d.skipped}, repeated in input {d.repeated}, "
              f"records on server {d.on_server}")
    print(f"{report.sent} records in {report.seconds:.1f} s")


@review.command("pull")
def pull_cmd(
    dataset: Annotated[str, typer.Argument(help="dataset name, e.g. quickstart-chat")],
    out: Annotated[Path, typer.Option(help="snapshots folder")] = Path("reviews"),
    workspace: Annotated[Optional[str], typer.Option(help="workspace, when the name is in several")] = None,
    policy: Annotated[str, typer.Option(help="conflict policy for the summary: majority | unanimous | latest")]
    = "majority",
) -> None:
    """Freeze the dataset's answers as a new snapshot version (unchanged answers: no new version)."""
    from collections import Counter

    from review_ui.connection import resolve
    from review_ui.merge import merge_record
    from review_ui.pull import pull, read_snapshot

    if policy not in ("majority", "unanimous", "latest"):
        _fail(f"--policy must be majority, unanimous or latest, got {policy!r}", 2)
    from review_ui.connection import NotFound

    try:
        folder, created = pull(resolve(), dataset, out, workspace)
    except NotFound as e:
        _fail(str(e), 2)
    except _errors() as e:
        _fail(str(e))
    manifest, rows = read_snapshot(folder)
    outcome = Counter(s.verdicts[-1].reason for s in (
        merge_record(r, policy=policy, min_votes=manifest["min_submitted"]) for r in rows))
    print(folder)
    print(("new snapshot" if created else "answers unchanged since this snapshot") +
          f": {manifest['records']} records, responses {manifest['responses']}")
    print(f"outcome under policy {policy}: {dict(sorted(outcome.items()))}")
    print(f"agreement: {json.dumps(manifest['agreement'])}")
    print(f"use it:    review.pull with snapshot: {folder}")
