"""LFM2's Python-style tool-call lists: render `[get_weather(city='Paris', days=3)]` and parse it back.

Rendering follows the chat templates TRL ships, value by value, because the rendered text must equal what
those templates produce token for token:

- `lfm2` (`lfm2_v2.jinja`): strings single-quoted with `\\`, `'`, newline and carriage return escaped;
  lists and mappings as JSON; everything else through Jinja's `string` filter (`True`, `None`, `3.5`).
- `lfm2.5` (`lfm2_2_5_v2.jinja`): strings single-quoted *without* escaping, mappings as JSON, everything
  else (lists included) through `string`, i.e. Python's repr. A string holding a quote therefore renders
  to text that no parser can read back; we refuse to render it rather than train on broken calls.

Parsing uses Python's `ast` on the call list (never `eval`): every argument value must be a literal. JSON's
`true`/`false`/`null` are accepted too, since the templates write mappings and lists with `tojson`. Argument
names that are Python keywords (`from=`, `class=`) are valid in the format but not in Python syntax; they are
renamed around the `ast` parse and restored.
"""

from __future__ import annotations

import ast
import io
import json
import keyword
import math
import tokenize
import unicodedata
from typing import Any

from pipelines.core.sample import ToolCall

TOOL_CALL_START = "<|tool_call_start|>"
TOOL_CALL_END = "<|tool_call_end|>"
# Named for the stock templates they equal (pipelines.formats.lfm2); the llama.cpp ones are render-only.
DIALECTS = ("lfm2", "lfm2.5", "lfm2.5-canonical", "lfm2-llamacpp", "lfm2.5-llamacpp")

_JSON_NAMES = {"true": True, "false": False, "null": None}
_KW_PREFIX = "__refinery_kw_"


class ToolCallFormatError(ValueError):
    """Text that is not a well-formed LFM2 call list, or a call the format cannot express."""


# ---- rendering ------------------------------------------------------------------------------------

def _jinja_string(value: Any) -> str:
    # Jinja's `string` filter is str() for the JSON scalars we carry.
    return str(value)


def format_arg_value(value: Any, dialect: str = "lfm2") -> str:
    if dialect == "lfm2":
        if isinstance(value, str):
            escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
            return f"'{escaped}'"
        if isinstance(value, (dict, list, tuple)):
            return json.dumps(value, ensure_ascii=False)
        return _jinja_string(value)
    if dialect in ("lfm2.5", "lfm2.5-llamacpp"):
        if isinstance(value, str):
            if "'" in value or "\\" in value or "\n" in value or "\r" in value:
                raise ToolCallFormatError(
                    f"LFM2.5's template writes strings without escaping, so {value!r} would render to an "
                    "unreadable call; use the lfm2 format for this sample")
            return f"'{value}'"
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False)
        return _jinja_string(value)
    if dialect == "lfm2.5-canonical":  # strings as JSON, so quotes, backslashes and newlines are representable
        if isinstance(value, (str, dict)):
            return json.dumps(value, ensure_ascii=False)
        return _jinja_string(value)
    raise ValueError(f"unknown LFM2 dialect {dialect!r}; known: {', '.join(DIALECTS)}")


def _check_value(value: Any, where: str) -> None:
    """Only JSON values round-trip; NaN/inf render as `nan`, which is no literal, and a NUL character cannot
    be parsed back (Python's parser refuses source holding one)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolCallFormatError(f"{where}: {value} cannot be written as a literal")
    if isinstance(value, str) and "\0" in value:
        raise ToolCallFormatError(f"{where}: a string holding a NUL character cannot be parsed back")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ToolCallFormatError(f"{where}: mapping keys must be strings, got {k!r}")
            _check_value(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_value(v, f"{where}[{i}]")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise ToolCallFormatError(f"{where}: {type(value).__name__} is not a JSON value")


def _identifier(name: Any) -> bool:
    # Python's parser NFKC-normalises identifiers (`ﬁle` reads back as `file`), so a name NFKC changes would
    # come back renamed: refuse it here, where the sample can still be dropped with a reason.
    return isinstance(name, str) and name.isidentifier() and unicodedata.normalize("NFKC", name) == name


def check_tool_name(name: str) -> None:
    parts = name.split(".") if isinstance(name, str) else [None]
    if not all(_identifier(p) and not keyword.iskeyword(p) for p in parts):
        raise ToolCallFormatError(
            f"tool name {name!r} cannot be written as a Python-style call (use letters, digits, '_' and '.'; "
            "no characters Unicode normalisation would change)")


def render_call(call: ToolCall, dialect: str = "lfm2") -> str:
    check_tool_name(call.name)
    args = []
    for key, value in call.arguments.items():
        if not _identifier(key):
            raise ToolCallFormatError(f"{call.name}: argument name {key!r} is not an identifier (or Unicode "
                                      "normalisation would rename it)")
        _check_value(value, f"{call.name}({key}=...)")
        args.append(f"{key}={format_arg_value(value, dialect)}")
    return f"{call.name}({', '.join(args)})"


def _json_call(call: ToolCall) -> str:
    # llama.cpp's own LFM2 template: `{"name": "f", "arguments": {...}}`, the name pasted in unescaped.
    check_tool_name(call.name)
    _check_value(call.arguments, call.name)
    ident = f', "id": "{call.id}"' if call.id else ""
    return f'{{"name": "{call.name}", "arguments": {json.dumps(call.arguments, ensure_ascii=False)}{ident}}}'


def render_tool_calls(calls: list[ToolCall], dialect: str = "lfm2") -> str:
    """`<|tool_call_start|>[f(a=1), g()]<|tool_call_end|>`: one block for all calls of a turn (JSON objects
    instead of Python calls in the lfm2-llamacpp dialect)."""
    if dialect == "lfm2-llamacpp":
        return f"{TOOL_CALL_START}[{', '.join(_json_call(c) for c in calls)}]{TOOL_CALL_END}"
    return f"{TOOL_CALL_START}[{', '.join(render_call(c, dialect) for c in calls)}]{TOOL_CALL_END}"


# ---- parsing --------------------------------------------------------------------------------------

def _rename_keyword_arguments(text: str) -> tuple[str, set[str]]:
    """`f(from='a')` is not Python: rename keyword-named arguments (a keyword right before a lone `=`)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return text, set()
    renamed: set[str] = set()
    lines = text.split("\n")
    edits = []
    for tok, nxt in zip(tokens, tokens[1:]):
        if tok.type == tokenize.NAME and keyword.iskeyword(tok.string) and nxt.type == tokenize.OP \
                and nxt.string == "=":
            edits.append(tok)
            renamed.add(tok.string)
    for tok in reversed(edits):  # right to left so earlier columns stay valid
        row, col = tok.start[0] - 1, tok.start[1]
        line = lines[row]
        lines[row] = line[:col] + _KW_PREFIX + tok.string + line[col + len(tok.string):]
    return "\n".join(lines), renamed


def _call_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_call_name(node.value)}.{node.attr}"
    raise ToolCallFormatError(f"not a function name: {ast.unparse(node)!r}")


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (str, int, float, bool)) or node.value is None:
            return node.value
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    elif isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    elif isinstance(node, ast.Dict):
        out = {}
        for k, v in zip(node.keys, node.values):
            if k is None:
                raise ToolCallFormatError("`**` unpacking is not a literal")
            key = _literal(k)
            if not isinstance(key, str):
                raise ToolCallFormatError(f"mapping keys must be strings, got {key!r}")
            out[key] = _literal(v)
        return out
    elif isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    raise ToolCallFormatError(f"argument value is not a literal: {ast.unparse(node)!r}")


def strip_markers(text: str) -> str:
    """The call list inside `<|tool_call_start|>...<|tool_call_end|>`, or the text itself (bare form)."""
    s = text.strip()
    if s.startswith(TOOL_CALL_START):
        if not s.endswith(TOOL_CALL_END):
            raise ToolCallFormatError(f"{TOOL_CALL_START} without a closing {TOOL_CALL_END}")
        s = s[len(TOOL_CALL_START):-len(TOOL_CALL_END)].strip()
    return s


def parse_tool_calls(text: str) -> list[ToolCall]:
    """`<|tool_call_start|>[f(a=1), g(b='x')]<|tool_call_end|>` or the bare `[f(a=1)]` -> ToolCalls.

    Raises ToolCallFormatError (a ValueError) naming what is wrong; never evaluates anything.
    """
    s = strip_markers(text)
    if not (s.startswith("[") and s.endswith("]")):
        raise ToolCallFormatError(f"a call list starts with '[' and ends with ']': {s[:80]!r}")
    source, renamed = _rename_keyword_arguments(s)
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ToolCallFormatError(f"not a Python-style call list ({e.__class__.__name__}: {e}): {s[:120]!r}") from None
    if not isinstance(tree.body, ast.List):
        raise ToolCallFormatError(f"expected a list of calls, got {s[:80]!r}")
    calls = []
    for node in tree.body.elts:
        if not isinstance(node, ast.Call):
            raise ToolCallFormatError(f"list item is not a call: {ast.unparse(node)!r}")
        name = _call_name(node.func)
        if node.args:
            raise ToolCallFormatError(f"{name}: positional arguments are not allowed; write name=value")
        arguments: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise ToolCallFormatError(f"{name}: `**` arguments are not allowed")
            key = kw.arg
            if key.startswith(_KW_PREFIX) and key[len(_KW_PREFIX):] in renamed:
                key = key[len(_KW_PREFIX):]
            if key in arguments:
                raise ToolCallFormatError(f"{name}: argument {key!r} given twice")
            try:
                arguments[key] = _literal(kw.value)
            except RecursionError:
                raise ToolCallFormatError(f"{name}({key}=...): value nested too deeply") from None
        calls.append(ToolCall(name=name, arguments=arguments))
    return calls


def looks_like_call_list(text: str) -> bool:
    """True when `text` (stripped) parses as a call list: the bare form some runtimes emit."""
    s = text.strip()
    if not (s.startswith("[") and s.endswith("]") and "(" in s):
        return False
    try:
        parse_tool_calls(s)
    except ToolCallFormatError:
        return False
    return True
