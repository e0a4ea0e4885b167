"""A token/cost budget for a whole run directory, shared by every worker process through the cache's calls log.

Every request that reaches a model writes one `calls` row (tokens in/out and cost) in the run directory's
SQLite cache, whichever process sent it. A guard sums those rows (incrementally: only rows it has not seen)
before a batch is sent and after every answer; once the total reaches the limit it raises BudgetExceeded,
the backend starts no further request, and the executor stops the run. What finished is kept; rerunning
with a larger budget resumes, and cached answers cost nothing against it.

Overshoot is bounded: requests already in flight when the limit is crossed finish and are counted (at most
`concurrency` requests per worker process, or one batch for vLLM/transformers).
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
        if self.max_total_tokens is not None and self.tokens >= self.max_total_tokens:
            raise BudgetExceeded(
                f"token budget spent: {self.tokens:,} of {self.max_total_tokens:,} tokens (llm.max_total_tokens) "
                f"in {self.where}; finished work is kept: raise the budget and rerun to resume")
        if self.max_cost is not None and self.cost >= self.max_cost:
            raise BudgetExceeded(
                f"cost budget spent: {self.cost:.4f} of {self.max_cost:.4f} (llm.max_cost) in {self.where}; "
                "finished work is kept: raise the budget and rerun to resume")
