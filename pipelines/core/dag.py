"""Pure graph helpers over a recipe's `{step: [steps it runs after]}` mapping.

Kept free of recipe types so the executor, the fingerprinting code and the CLI can share them.
Dependencies that name steps missing from the mapping are ignored here: the recipe validator reports
them with a line number, and these helpers must not crash on a half-valid graph while it does so.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def topological_order(deps: Mapping[str, Sequence[str]], file_order: Sequence[str] = ()) -> list[str]:
    """Every step after all of its dependencies; among ready steps, the one earliest in the file first.

    Tie-breaking by file order (not by name) makes the run order read like the recipe. Steps missing
    from `file_order` come after those in it, by name. Raises ValueError on a cycle.
    """
    rank = {name: i for i, name in enumerate(file_order)}

    def key(name: str) -> tuple[int, str]:
        return (rank.get(name, len(rank)), name)

    waiting = {step: {d for d in after if d in deps and d != step} for step, after in deps.items()}
    self_loops = [step for step, after in deps.items() if step in after]
    if self_loops:
        raise ValueError(f"step {self_loops[0]!r} depends on itself")
    dependents: dict[str, list[str]] = {step: [] for step in deps}
    for step, after in waiting.items():
        for dep in after:
            dependents[dep].append(step)
    ready = [key(step) for step, after in waiting.items() if not after]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, step = heapq.heappop(ready)
        order.append(step)
        for child in dependents[step]:
            waiting[child].discard(step)
            if not waiting[child]:
                heapq.heappush(ready, key(child))
    if len(order) != len(deps):
        cycle = find_cycle(deps) or sorted(set(deps) - set(order))
        raise ValueError(f"dependency cycle: {' -> '.join(cycle)}")
    return order


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle as [a, b, c] meaning a runs after b, b after c, c after a; None if the graph is acyclic.

    A self-dependency is the cycle [a]. Search starts from steps in mapping order, so the answer is
    deterministic for a given recipe.
    """
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(deps, WHITE)
    for root in deps:
        if colour[root] != WHITE:
            continue
        # Iterative DFS (recipes are small, but a recursion limit is a silly way to fail).
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        colour[root] = GREY
        while stack:
            node, i = stack[-1]
            after = [d for d in deps[node] if d in deps]
            if i < len(after):
                stack[-1] = (node, i + 1)
                nxt = after[i]
                if colour[nxt] == GREY:
                    return path[path.index(nxt):]
                if colour[nxt] == WHITE:
                    colour[nxt] = GREY
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                colour[node] = BLACK
                stack.pop()
                path.pop()
    return None


def downstream(deps: Mapping[str, Sequence[str]], step: str) -> set[str]:
    """Steps that (transitively) run after `step`, not including `step`: what a change to it invalidates."""
    dependents: dict[str, set[str]] = {}
    for child, after in deps.items():
        for dep in after:
            dependents.setdefault(dep, set()).add(child)
    seen: set[str] = set()
    todo = [step]
    while todo:
        for child in dependents.get(todo.pop(), ()):
            if child not in seen and child != step:
                seen.add(child)
                todo.append(child)
    return seen
