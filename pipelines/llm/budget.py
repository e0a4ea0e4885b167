"""A token/cost budget for a whole run directory, shared by every worker process through the cache's calls log.

Every request that reaches a model writes one `calls` row (tokens in/out and cost) in the run directory's
SQLite cache, whichever process sent it. A guard sums those rows (incrementally: only rows it has not seen)
before a batch is sent and after every answer; once the total reaches the limit it raises BudgetExceeded,
the backend starts no further request, and the executor stops the run. What finished is kept; rerunning
with a larger budget resumes, and cached answers cost nothing against it.

Overshoot is bounded: requests already in flight when the limit is crossed finish and are counted (at most
`concurrency` requests per worker process, or one batch for vLLM/transformers).

On the ray executor each worker writes its own cache part (`pipelines.llm.cache_parts`) and cannot see the
others' rows while they run: a worker's guard counts what earlier runs spent plus its own spending, and
the driver counts every finished task's tokens against the same limits (`check_spent`), so the run stops
at most the tasks in flight past the limit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from pipelines.llm.errors import BudgetExceeded


class BudgetGuard:
    def __init__(self, max_total_tokens: int | None, max_cost: float | None, where: str) -> None:
        self.max_total_tokens = max_total_tokens
        self.max_cost = max_cost
        self.where = where
        self._last_id = 0
        self.tokens = 0
        self.cost = 0.0

    @property
    def active(self) -> bool:
        return self.max_total_tokens is not None or self.max_cost is not None

    def baseline(self, conn: sqlite3.Connection) -> None:
        """Add what another file's calls log holds (a read-only main cache), without tracking its ids."""
        tokens, cost = conn.execute(
            "SELECT COALESCE(SUM(tokens_in + tokens_out), 0), COALESCE(SUM(cost), 0) FROM calls").fetchone()
        self.tokens += tokens
        self.cost += cost

    def reset(self) -> None:
        self._last_id, self.tokens, self.cost = 0, 0, 0.0

    def refresh(self, conn: sqlite3.Connection) -> None:
        row = conn.execute(
            "SELECT COALESCE(SUM(tokens_in + tokens_out), 0), COALESCE(SUM(cost), 0), MAX(id) "
            "FROM calls WHERE id > ?", (self._last_id,)).fetchone()
        self.tokens += row[0]
        self.cost += row[1]
        if row[2] is not None:
            self._last_id = row[2]

    def check(self, db: Callable[[], sqlite3.Connection]) -> None:
        """Raise BudgetExceeded if the run directory has spent its budget (reads new calls rows first)."""
        if not self.active:
            return
        self.refresh(db())
        self.check_spent()

    def check_spent(self) -> None:
        """Raise BudgetExceeded if `tokens` or `cost` (however they were summed) reached a limit."""
        if self.max_total_tokens is not None and self.tokens >= self.max_total_tokens:
            raise BudgetExceeded(
                f"token budget spent: {self.tokens:,} of {self.max_total_tokens:,} tokens (llm.max_total_tokens) "
                f"in {self.where}; finished work is kept: raise the budget and rerun to resume")
        if self.max_cost is not None and self.cost >= self.max_cost:
            raise BudgetExceeded(
                f"cost budget spent: {self.cost:.4f} of {self.max_cost:.4f} (llm.max_cost) in {self.where}; "
                "finished work is kept: raise the budget and rerun to resume")


class DriverBudget:
    """The ray executor's driver's count: what the run directory's cache held when the run started plus
    every finished task's tokens and cost (its stats), checked against the limits of the step whose task
    it was. Workers there cannot read each other's cache parts, so their own guards see only their share."""

    def __init__(self, tokens: int, cost: float, where: str) -> None:
        self.tokens, self.cost, self.where = tokens, cost, where

    def add(self, llm: dict | None, counters: dict) -> None:
        self.tokens += counters.get("llm_tokens_in", 0) + counters.get("llm_tokens_out", 0)
        self.cost += counters.get("llm_cost", 0.0)
        if llm is None:
            return
        guard = BudgetGuard(llm.get("max_total_tokens"), llm.get("max_cost"), self.where)
        guard.tokens, guard.cost = self.tokens, self.cost
        guard.check_spent()
