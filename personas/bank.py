"""Load persona banks: the shipped one, or an external set from a local .jsonl or .parquet file.

External rows need a `description` (or `persona`, the column name PersonaHub-style sets use) or all of
the attribute fields; attributes they lack become "unknown". Unknown columns are errors rather than
silently dropped, so a misspelt column name cannot quietly turn into "unknown" everywhere.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from personas.schema import ATTRIBUTE_FIELDS, Persona, dedupe_personas

log = logging.getLogger(__name__)

DEFAULT_BANK = Path(__file__).resolve().parent / "data" / "bank.jsonl"
KNOWN_COLUMNS = frozenset({"id", "description", "persona", *ATTRIBUTE_FIELDS})


class BankError(ValueError):
    """A bank file that cannot be read; the message names the file and the line or row."""


def load_bank(path: str | Path | None = None) -> list[Persona]:
    """Personas from `path` (None: the shipped bank), duplicates removed, in file order."""
    path = DEFAULT_BANK if path is None else Path(path).expanduser()
    if not path.is_file():
        raise BankError(f"persona bank {path} does not exist (or is not a file)")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = _jsonl_rows(path)
    elif suffix == ".parquet":
        rows = _parquet_rows(path)
    else:
        raise BankError(f"persona bank {path}: unsupported file type {suffix!r}; use .jsonl or .parquet")
    personas = [persona_from_row(row, where) for where, row in rows]
    if not personas:
        raise BankError(f"persona bank {path} has no personas")
    unique = dedupe_personas(personas)
    if len(unique) < len(personas):
        log.info("persona bank %s: dropped %d duplicate personas", path, len(personas) - len(unique))
    return unique


def persona_from_row(row: Any, where: str) -> Persona:
    """One persona from one external row; `where` ("file:line 3") prefixes every error."""
    if not isinstance(row, dict):
        raise BankError(f"{where}: expected an object, got {type(row).__name__}")
    unknown = sorted(set(row) - KNOWN_COLUMNS)
    if unknown:
        raise BankError(f"{where}: unknown column(s) {unknown}; known: {sorted(KNOWN_COLUMNS)}")
    row = dict(row)
    alias = row.pop("persona", None)
    if alias is not None:
        if _present(row.get("description")):
            raise BankError(f"{where}: has both 'persona' and 'description'; keep one")
        row["description"] = alias
    if not _present(row.get("description")):
        missing = [name for name in ATTRIBUTE_FIELDS if not _present(row.get(name))]
        if missing:
            raise BankError(
                f"{where}: no description, and attribute(s) {missing} are missing too; "
                f"give a description or all of {list(ATTRIBUTE_FIELDS)}"
            )
        row["description"] = _describe(row, where)
    try:
        return Persona.model_validate(row)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors())
        raise BankError(f"{where}: invalid persona: {problems}") from exc


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _describe(row: dict[str, Any], where: str) -> str:
    # Imported here: building descriptions reads attributes.yaml, which plain loading never needs.
    from personas.build_bank import describe_attributes

    attrs: dict[str, str] = {}
    for name in ATTRIBUTE_FIELDS:
        value = row[name]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # same coercion the Persona model applies (an age of 34)
        if not isinstance(value, str):
            raise BankError(f"{where}: attribute {name!r} must be a string, got {type(value).__name__}")
        attrs[name] = " ".join(value.split())
    attrs["expertise"] = attrs["expertise"].lower()
    return describe_attributes(attrs)


def _jsonl_rows(path: Path) -> list[tuple[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue  # a trailing blank line is common and harmless
            try:
                rows.append((f"{path}:line {lineno}", json.loads(line)))
            except json.JSONDecodeError as exc:
                problem = f"{exc.msg} at column {exc.colno}"
                raise BankError(f"{path}:line {lineno}: not valid JSON ({problem})") from exc
    return rows


def _parquet_rows(path: Path) -> list[tuple[str, Any]]:
    # pyarrow is imported lazily: recipes using the shipped bank should not pay for it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise BankError(f"{path}: cannot read as parquet ({exc})") from exc
    # Rows are numbered from 1 like JSONL lines, so both error styles read the same way.
    return [(f"{path}:row {index}", row) for index, row in enumerate(table.to_pylist(), start=1)]
