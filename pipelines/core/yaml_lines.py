"""YAML loading that remembers where every key came from.

`yaml.safe_load` returns plain data and forgets positions, so a validation error could only say *what*
is wrong, not *where*. We compose the node graph instead (PyYAML's compose API keeps a start mark on every
node) and build the data ourselves, recording the 1-based line of each key path on the way. Building the
data ourselves also lets us reject duplicate keys, which PyYAML silently resolves to the last one: a
recipe with two `turns:` lines is almost always an editing mistake whose "winner" the user did not choose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipelines.core.errors import Problem, RecipeError, format_path

Path = tuple  # a key path: ('steps', 'chat', 'after', 0)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_FAILED = object()  # a scalar that could not be constructed (already reported)


@dataclass
class YamlDoc:
    data: Any
    lines: dict[Path, int]  # key path -> line of the key (for sequence items: line of the item)
    problems: list[Problem] = field(default_factory=list)
    # Paths whose value could not be built (bad tag): already reported, so later checks should not
    # pile "expected int, got null" on top.
    failed: set[Path] = field(default_factory=set)

    def line_of(self, path: Path) -> int:
        """Line of `path`, or of its nearest recorded parent (new keys from overrides have no line)."""
        return line_of(self.lines, path)


def line_of(lines: dict[Path, int], path: Path) -> int:
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get((), 1)


def _mark_line(exc: yaml.YAMLError) -> int:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else 1


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """The error without PyYAML's multi-line position dump (we report the line ourselves)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [p for p in (exc.context, exc.problem) if p]
        if parts:
            return ", ".join(parts)
    return str(exc)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, filename: str) -> None:
        self.loader = loader
        self.filename = filename
        self.lines: dict[Path, int] = {(): 1}
        self.problems: list[Problem] = []
        self.failed: set[Path] = set()
        self._active: set[int] = set()  # node ids on the current path, to stop recursive aliases

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.filename, line, message))

    def build(self, node: Node, path: Path) -> Any:
        if id(node) in self._active:
            self.problem(node.start_mark.line + 1, f"{format_path(path)}: recursive YAML alias")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                out = []
                for index, item in enumerate(node.value):
                    self.lines[(*path, index)] = item.start_mark.line + 1
                    out.append(self.build(item, (*path, index)))
                return out
            value = self._scalar(node, path)
            return None if value is _FAILED else value
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: Node, path: Path) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # e.g. an unknown `!tag`, or `!!int abc`
            self.problem(_mark_line(exc), f"{format_path(path)}: {describe_yaml_error(exc)}")
            self.failed.add(path)
            return _FAILED

    def _mapping(self, node: MappingNode, path: Path) -> dict:
        # `<<: *anchor` merge keys: let PyYAML expand them (it prepends the merged pairs), and only treat
        # the mapping's own pairs as candidates for duplicate-key errors, since overriding a merged key is
        # the point of a merge.
        explicit = sum(1 for key, _ in node.value if key.tag != _MERGE_TAG)
        try:
            self.loader.flatten_mapping(node)
        except yaml.YAMLError as exc:
            self.problem(_mark_line(exc), f"{format_path(path)}: {describe_yaml_error(exc)}")
            return {}
        n_merged = len(node.value) - explicit
        out: dict = {}
        seen: dict = {}  # explicit key -> line of its first occurrence
        for index, (key_node, value_node) in enumerate(node.value):
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self.problem(line, f"{format_path(path)}: mapping keys must be plain scalars")
                continue
            key = self._scalar(key_node, path)
            if key is _FAILED:
                continue
            if index >= n_merged:
                if key in seen:
                    self.problem(line, f"{format_path((*path, key))}: duplicate key "
                                       f"(first defined at line {seen[key]})")
                else:
                    seen[key] = line
            self.lines[(*path, key)] = line
            # Like PyYAML, the last occurrence wins, so later checks see what safe_load would have given.
            out[key] = self.build(value_node, (*path, key))
        return out


def compose_with_lines(text: str, filename: str) -> YamlDoc:
    """Parse `text`; never raises for YAML problems, which land in `YamlDoc.problems` instead.

    A syntax error leaves `data` as None (nothing after it can be trusted); duplicate keys and bad
    tags are reported but the rest of the document is still built, so callers can keep validating.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()  # also rejects a second `---` document
        except yaml.YAMLError as exc:
            problem = Problem(filename, _mark_line(exc), f"YAML syntax error: {describe_yaml_error(exc)}")
            return YamlDoc(None, {(): 1}, [problem])
        builder = _Builder(loader, filename)
        data = builder.build(node, ()) if node is not None else None
        return YamlDoc(data, builder.lines, builder.problems, builder.failed)
    finally:
        loader.dispose()


def load_with_lines(text: str, filename: str) -> tuple[Any, dict[Path, int]]:
    """(data, lines) for `text`; raises RecipeError on a syntax error, duplicate key or bad tag."""
    doc = compose_with_lines(text, filename)
    if doc.problems:
        raise RecipeError(doc.problems)
    return doc.data, doc.lines
