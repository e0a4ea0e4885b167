"""Progress bars per step (rich). The executor calls start/advance/finish; this only draws."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RichProgress:
    def __init__(self, console: Console | None = None):
        self.bars = Progress(
            TextColumn("[bold]{task.fields[step]:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("shards"),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bars.__exit__(*exc)

    def start(self, step: str, total: int, done: int) -> None:
        note = f"(resumed {done})" if done else ""
        self.tasks[step] = self.bars.add_task("", total=total, completed=done, step=step, note=note)

    def advance(self, step: str, stats: dict[str, Any]) -> None:
        self.bars.advance(self.tasks[step])

    def finish(self, step: str, stats: dict[str, Any]) -> None:
        if step not in self.tasks:  # reused without running
            self.tasks[step] = self.bars.add_task("", total=1, completed=1, step=step, note="")
        dropped = sum(stats["dropped"].values())
        note = f"{stats['in']} in, {stats['out']} out" + (f", {dropped} dropped" if dropped else "")
        task = self.tasks[step]
        self.bars.update(task, completed=self.bars.tasks[task].total, note=note)
