"""`seeds.documents`: local documents (text, markdown, JSONL) cut into passages for grounded generation.

Each passage becomes a `seed` sample with meta {"passage", "document", "title", "chunk"}. Cutting follows
the text's own structure: markdown headings start a new section (the heading becomes the passage title),
paragraphs (blank-line separated) are packed into passages of at most `max_chars`, and a paragraph longer
than that is split at sentence ends. Passages shorter than `min_chars` (a lone heading, a stub) are skipped:
nothing useful can be asked about them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params, Step
from pipelines.generators import seeds
from pipelines.generators.seeds import jsonl_rows, resolve_path

SUFFIXES = (".md", ".markdown", ".txt", ".jsonl")
_HEADING = re.compile(r"^#{1,6}\s+(.*\S)\s*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class DocumentsParams(Params):
    paths: list[str] = Field(
        default_factory=lambda: ["pipelines/generators/data/docs"],
        description="files or folders (.md, .txt, .jsonl); folders are read recursively, in name order")
    text_field: str = Field("text", description="JSONL: the field holding a document's text")
    title_field: str = Field("title", description="JSONL: an optional field holding its title")
    max_chars: int = Field(900, ge=100, description="longest passage, in characters")
    min_chars: int = Field(150, ge=1, description="shorter passages are skipped")
    limit: int | None = Field(None, ge=1, description="at most this many passages")


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        p = resolve_path(raw)
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
        elif p.is_file():
            if p.suffix.lower() not in SUFFIXES:
                raise ValueError(f"document {p}: unsupported file type {p.suffix!r}; use one of {SUFFIXES}")
            found.append(p)
        else:
            raise FileNotFoundError(f"document path {raw!r} does not exist (looked at {p})")
    if not found:
        raise ValueError(f"no documents ({', '.join(SUFFIXES)}) under {paths}")
    return found


def sections(text: str, title: str) -> Iterator[tuple[str, list[str]]]:
    """(section title, paragraphs) in order; a markdown heading opens a new section."""
    current, paragraphs, buf = title, [], []
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading or not line.strip():
            if buf:
                paragraphs.append(" ".join(buf))
                buf = []
            if heading:
                if paragraphs:
                    yield current, paragraphs
                current, paragraphs = heading.group(1), []
            continue
        buf.append(line.strip())
    if buf:
        paragraphs.append(" ".join(buf))
    if paragraphs:
        yield current, paragraphs


def pack(paragraphs: list[str], max_chars: int) -> list[str]:
    """Greedy packing of paragraphs (split at sentence ends when one is too long) into passages."""
    pieces: list[str] = []
    for para in paragraphs:
        if len(para) <= max_chars:
            pieces.append(para)
            continue
        sentence_buf = ""
        for sentence in _SENTENCE.split(para):
            if sentence_buf and len(sentence_buf) + 1 + len(sentence) > max_chars:
                pieces.append(sentence_buf)
                sentence_buf = sentence
            else:
                sentence_buf = f"{sentence_buf} {sentence}".strip()
        if sentence_buf:
            pieces.append(sentence_buf)
    passages, cur = [], ""
    for piece in pieces:
        if cur and len(cur) + 2 + len(piece) > max_chars:
            passages.append(cur)
            cur = piece
        else:
            cur = f"{cur}\n\n{piece}" if cur else piece
    if cur:
        passages.append(cur)
    return passages


def _documents(path: Path, params: DocumentsParams) -> Iterator[tuple[str, str, str]]:
    """(document name, title, text) for each document in one file."""
    if path.suffix.lower() != ".jsonl":
        yield path.name, path.stem.replace("_", " ").replace("-", " "), path.read_text(encoding="utf-8")
        return
    for lineno, row in jsonl_rows(path):
        text = row.get(params.text_field) if isinstance(row, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{path}:{lineno}: field {params.text_field!r} is missing or empty")
        title = row.get(params.title_field) or f"{path.stem} {lineno}"
        yield f"{path.name}:{lineno}", str(title), text


@register("seeds.documents")
class DocumentSeeds(Step):
    kind = "source"
    Params = DocumentsParams

    @classmethod
    def input_paths(cls, params: dict) -> dict[tuple, Path]:
        return {("paths", i): resolve_path(p) for i, p in enumerate(params["paths"])}

    @classmethod
    def fingerprint_files(cls) -> list[Path]:
        # The JSONL reader it shares lives in seeds.py: a change there changes what this step reads.
        return [Path(seeds.__file__)]

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        p, made = self.params, 0
        for path in _files(p.paths):
            for name, doc_title, text in _documents(path, p):
                chunk = 0
                for title, paragraphs in sections(text, doc_title):
                    for passage in pack(paragraphs, p.max_chars):
                        if len(passage) < p.min_chars:
                            continue
                        meta = {"passage": passage, "document": name, "title": title, "chunk": chunk}
                        chunk += 1
                        yield Sample(kind="seed", meta=meta,
                                     provenance={"step": self.ctx.step_name, "generator": "seeds.documents"})
                        made += 1
                        if p.limit is not None and made >= p.limit:
                            return
