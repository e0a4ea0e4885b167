"""Tool catalogs: the tools a function-calling generator may offer, loaded from files or built in.

A catalog is named by a list of sources:

- `builtin`: the tools we execute in Python (pipelines/tools/executors.py), with their chains;
- `bfcl` (all four categories) or `bfcl:simple_python|multiple|parallel|parallel_multiple`: the real BFCL v4
  schemas in ../shared/data/bfcl (set REFINERY_BFCL_DIR to read them from elsewhere), less the functions
  held out for evaluation (`bfcl_held_out`: `refinery eval` asks only about those, so no training sample
  ever offers a function an eval question uses);
- a path to a .json or .jsonl file.

A file may hold one tool, a list of tools, or one JSON value per line, each a tool (bare
`{name, description, parameters}` or OpenAI `{"type": "function", "function": {...}}`), a list of tools, a
BFCL question (`{"function": [...]}`) or any record with a `tools` list (a sample written by
io.write_jsonl). Tools that came together (one BFCL question, one line) form a *group*: groups give
realistic distractors for multiple-choice samples. An entry may carry `result_schema` (a JSON Schema for
what the tool returns), which the LLM-simulated tool then follows. Every tool is normalised and checked
against the JSON Schema meta-schema on load; a bad one is an error that names the file and line.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipelines.core.sample import canonical_json
from pipelines.tools.executors import CHAINS, builtin_executors
from pipelines.tools.schema import ToolSchemaError, check_schema, normalise_tool, tool_name

BFCL_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")
_REPO = Path(__file__).resolve().parents[2]


def bfcl_dir() -> Path:
    return Path(os.environ.get("REFINERY_BFCL_DIR") or _REPO.parent / "shared" / "data" / "bfcl")


def bfcl_held_out(name: str) -> bool:
    """Is this BFCL function name eval-only? Half the names, by a hash of the name alone, so the split is
    the same on every machine and for every category a name appears in."""
    return hashlib.sha256(f"refinery-eval:{name}".encode()).digest()[0] < 128


@dataclass
class Catalog:
    tools: list[dict[str, Any]] = field(default_factory=list)
    groups: list[list[int]] = field(default_factory=list)
    result_schemas: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Indices of tools that run in Python (exactly the built-in schema, not just the same name).
    executable: set[int] = field(default_factory=set)
    chains: list[tuple[int, int]] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)

    def add(self, tool: dict[str, Any], result_schema: dict[str, Any] | None = None) -> int:
        """Index of `tool` (normalised), adding it unless an identical tool is already there."""
        key = canonical_json(tool)
        if key not in self._index:
            self._index[key] = len(self.tools)
            self.tools.append(tool)
        i = self._index[key]
        if result_schema is not None:
            self.result_schemas[i] = result_schema
        return i

    def add_group(self, entries: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> None:
        group = list(dict.fromkeys(self.add(t, r) for t, r in entries))
        if group:
            self.groups.append(group)

    def groups_of(self, i: int) -> list[list[int]]:
        return [g for g in self.groups if i in g]

    def __len__(self) -> int:
        return len(self.tools)


def _builtin(catalog: Catalog) -> None:
    executors = builtin_executors()
    index = {name: catalog.add(e.tool) for name, e in executors.items()}
    catalog.executable |= set(index.values())
    catalog.groups.append(list(index.values()))
    catalog.chains += [(index[a], index[b]) for a, b in CHAINS]


def _entries(value: Any, where: str) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """The tools in one JSON value (see the module docstring), each with its result schema or None."""
    if isinstance(value, list):
        return [e for j, v in enumerate(value) for e in _entries(v, f"{where}[{j}]")]
    if not isinstance(value, dict):
        raise ToolSchemaError(f"{where}: expected a tool, a list of tools or a record with tools, got {value!r:.80}")
    if isinstance(value.get("function"), list):  # a BFCL question
        return _entries(value["function"], f"{where}.function")
    if isinstance(value.get("tools"), list) and "name" not in value:
        return _entries(value["tools"], f"{where}.tools")
    entry = dict(value)
    result_schema = entry.pop("result_schema", None)
    tool = normalise_tool(entry, where)
    if result_schema is not None:
        check_schema(result_schema, f"{where}.result_schema")
    return [(tool, result_schema)]


def _json_values(path: Path) -> list[tuple[Any, str]]:
    text = path.read_text(encoding="utf-8")
    whole_error = "a .jsonl file is read line by line"
    if path.suffix != ".jsonl":
        try:
            return [(json.loads(text), str(path))]
        except json.JSONDecodeError as whole:
            # BFCL's *.json files are JSON Lines despite the name, so fall back to one value per line.
            whole_error = whole.msg
    values = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append((json.loads(line), f"{path}:{lineno}"))
        except json.JSONDecodeError as exc:
            raise ToolSchemaError(f"{path}:{lineno}: not JSON ({exc.msg}); the file is neither one JSON "
                                  f"value ({whole_error}) nor JSON Lines") from None
    return values


def _file(catalog: Catalog, path: Path, held_out: bool = False) -> None:
    """Every group of tools in the file; `held_out`: a BFCL file, whose eval-only functions are left out."""
    if not path.is_file():
        raise FileNotFoundError(f"tool catalog {str(path)!r} does not exist")
    for value, where in _json_values(path):
        entries = _entries(value, where)
        catalog.add_group([e for e in entries if not (held_out and bfcl_held_out(tool_name(e[0])))])


def _source_paths(source: str) -> list[Path]:
    if source == "bfcl" or source.startswith("bfcl:"):
        cats = BFCL_CATEGORIES if source == "bfcl" else (source.split(":", 1)[1],)
        unknown = [c for c in cats if c not in BFCL_CATEGORIES]
        if unknown:
            raise ValueError(f"unknown BFCL category {unknown[0]!r}; known: {', '.join(BFCL_CATEGORIES)}")
        paths = [bfcl_dir() / f"BFCL_v4_{c}.json" for c in cats]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"BFCL data not found at {missing[0]}; set REFINERY_BFCL_DIR to the folder "
                                    "holding BFCL_v4_*.json")
        return paths
    return [Path(source)]


def validate_sources(sources: list[str]) -> None:
    """Cheap checks for recipe validation: names are known and files exist (nothing is parsed)."""
    if not sources:
        raise ValueError("name at least one tool source: builtin, bfcl, bfcl:<category> or a file")
    for s in sources:
        if s != "builtin":
            for p in _source_paths(s):
                if not p.is_file():
                    raise FileNotFoundError(f"tool catalog {str(p)!r} does not exist")


@lru_cache(maxsize=16)
def load_catalog(sources: tuple[str, ...]) -> Catalog:
    """The catalog of `sources` (cached per process: steps call this once per shard)."""
    validate_sources(list(sources))
    catalog = Catalog()
    for source in sources:
        if source == "builtin":
            _builtin(catalog)
        else:
            for path in _source_paths(source):
                _file(catalog, path, held_out=source.startswith("bfcl"))
    if not catalog.tools:
        raise ValueError(f"tool sources {list(sources)} hold no tools")
    return catalog


def catalog_from_tools(tools: list[dict[str, Any]], result_schemas: dict[str, dict[str, Any]] | None = None) -> Catalog:
    """A one-group catalog from tools a seed carries (e.g. from tools.generate); result schemas by tool name.
    Tools identical to a built-in one are executed in Python."""
    catalog = Catalog()
    executors = builtin_executors()
    entries = []
    for j, t in enumerate(tools):
        tool = normalise_tool(t, f"seed tools[{j}]")
        entries.append((tool, (result_schemas or {}).get(tool_name(tool))))
    catalog.add_group(entries)
    for i, tool in enumerate(catalog.tools):
        e = executors.get(tool_name(tool))
        if e is not None and e.tool == tool:
            catalog.executable.add(i)
    by_name = {tool_name(t): i for i, t in enumerate(catalog.tools)}
    catalog.chains = [(by_name[a], by_name[b]) for a, b in CHAINS if a in by_name and b in by_name
                      and {by_name[a], by_name[b]} <= catalog.executable]
    return catalog
