"""The control plane, through the official argilla SDK: workspaces, annotator users, datasets created
from a `Layout` (fields, questions, metadata, vectors, guidelines, task distribution).

The data plane (bulk record upserts, listing answers) goes over plain HTTP in push.py and pull.py: the
SDK builds an object per record, which costs more than the server's own work at 10,000 records.
"""

from __future__ import annotations

import secrets
import warnings
from dataclasses import dataclass
from typing import Any

from review_ui.connection import Connection, ReviewError
from review_ui.layout import (ACCEPT, CORRECTION, EMBEDDING, QUALITY, RANKING, RATIONALE,
                              REJECT, TERMS_METADATA, VERDICT, Layout)

EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2


@dataclass
class DatasetHandle:
    """What the data plane needs to know about a dataset on the server."""

    id: str
    name: str
    workspace: str
    kind: str
    question_ids: dict[str, str]
    metadata_names: set[str]
    vectors: set[str]
    min_submitted: int


def _lookup(fn, **kw):
    """An SDK look-up by name; the SDK warns on "not found", which is an expected answer here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(**kw)


def ensure_workspace(client, name: str):
    import argilla as rg

    ws = _lookup(client.workspaces, name=name)
    if ws is None:
        ws = rg.Workspace(name=name, client=client).create()
    return ws


def _questions(layout: Layout, client) -> list:
    import argilla as rg

    built = {
        VERDICT: lambda: rg.LabelQuestion(VERDICT, labels={ACCEPT: "Accept", REJECT: "Reject"},
                                          title="Keep this sample for training?", required=True, client=client),
        QUALITY: lambda: rg.RatingQuestion(QUALITY, values=[1, 2, 3, 4, 5], required=False, client=client,
                                           title="Quality of the final answer (1 poor - 5 excellent)"),
        CORRECTION: lambda: rg.TextQuestion(CORRECTION, use_markdown=True, required=False, client=client,
                                            title="Corrected final answer (edit in place; leave unchanged if fine)"),
        RATIONALE: lambda: rg.TextQuestion(RATIONALE, required=False, client=client,
                                           title="Why? (optional: what is wrong, what you changed)"),
        RANKING: lambda: rg.RankingQuestion(RANKING, values={n: n.replace("_", " ").capitalize()
                                                             for n in layout.answer_names},
                                            title="Rank the answers (1 = best)", required=True, client=client),
    }
    return [built[q]() for q in layout.questions]


def build_settings(layout: Layout, client, min_submitted: int, vectors: bool, guidelines: str | None = None):
    import argilla as rg

    fields = [
        rg.ChatField(f.name, title=f.title, required=f.required, use_markdown=True, _client=client)
        if f.type == "chat"
        else rg.TextField(f.name, title=f.title, required=f.required, use_markdown=True, client=client)
        for f in layout.fields
    ]
    metadata = [rg.TermsMetadataProperty(n, client=client) for n in TERMS_METADATA]
    metadata += [rg.IntegerMetadataProperty(n, client=client) for n in layout.integer_metadata]
    return rg.Settings(
        fields=fields,
        questions=_questions(layout, client),
        metadata=metadata,
        vectors=[rg.VectorField(EMBEDDING, dimensions=EMBEDDING_DIMENSIONS, title="Similar samples",
                                _client=client)] if vectors else [],
        guidelines=layout.guidelines(guidelines),
        # Extra metadata carries the whole sample; annotators cannot see extra keys.
        allow_extra_metadata=True,
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


def find_dataset(conn: Connection, name: str, workspace: str | None = None) -> DatasetHandle | None:
    client = conn.sdk()
    if workspace and _lookup(client.workspaces, name=workspace) is None:
        return None
    ds = _lookup(client.datasets, name=name, workspace=workspace) if workspace else _by_name(client, name)
    return _handle(ds) if ds is not None else None


def _by_name(client, name: str):
    matches = [d for d in client.datasets.list() if d.name == name]
    if len(matches) > 1:
        spaces = ", ".join(d.workspace.name for d in matches)
        raise ReviewError(f"dataset {name!r} exists in several workspaces ({spaces}); name the workspace")
    return matches[0] if matches else None


def ensure_dataset(conn: Connection, name: str, workspace: str, layout: Layout, min_submitted: int = 1,
                   vectors: bool = False, guidelines: str | None = None) -> DatasetHandle:
    """The dataset, created with the layout's settings if missing. An existing dataset must hold the same
    kind of sample; its task distribution is updated when `min_submitted` changed."""
    import argilla as rg

    client = conn.sdk()
    ensure_workspace(client, workspace)
    ds = _lookup(client.datasets, name=name, workspace=workspace)
    if ds is None:
        settings = build_settings(layout, client, min_submitted, vectors, guidelines)
        ds = rg.Dataset(name=name, workspace=workspace, settings=settings, client=client).create()
    handle = _handle(ds)
    if handle.kind != layout.kind:
        raise ReviewError(f"dataset {name!r} holds {handle.kind!r} samples, not {layout.kind!r}")
    missing = [f.name for f in layout.fields if f.name not in {x.name for x in ds.settings.fields}]
    if missing:
        raise ReviewError(f"dataset {name!r} lacks fields {missing}; it was made by another version or by hand")
    if vectors and EMBEDDING not in handle.vectors:
        raise ReviewError(f"dataset {name!r} was created without vectors; push with vectors: none or use a new name")
    if handle.min_submitted != min_submitted:
        ds.distribution = rg.TaskDistribution(min_submitted=min_submitted)
        ds.update()
        handle.min_submitted = min_submitted
    return handle


def _handle(ds) -> DatasetHandle:
    questions = {q.name: str(q.id) for q in ds.settings.questions}
    fields = {f.name for f in ds.settings.fields}
    kind = ("preference" if RANKING in questions else "reasoning" if "reasoning" in fields
            else "tool_use" if "tools" in fields else "chat")
    return DatasetHandle(
        id=str(ds.id), name=ds.name, workspace=ds.workspace.name, kind=kind, question_ids=questions,
        metadata_names={m.name for m in ds.settings.metadata}, vectors={v.name for v in ds.settings.vectors},
        min_submitted=ds.settings.distribution.min_submitted,
    )


def add_float_metadata(conn: Connection, handle: DatasetHandle, names: list[str]) -> None:
    """Declare filter-score properties the first time a sample carries them (filterable in the UI)."""
    http = conn.http()
    try:
        for name in names:
            r = http.post(f"/api/v1/datasets/{handle.id}/metadata-properties",
                          json={"name": name, "title": name, "settings": {"type": "float"},
                                "visible_for_annotators": True})
            if r.status_code not in (201, 409):
                raise ReviewError(f"cannot add metadata property {name!r} to {handle.name!r}: {r.text[:300]}")
            handle.metadata_names.add(name)
    finally:
        http.close()


def ensure_user(conn: Connection, username: str, workspace: str, role: str = "annotator",
                password: str | None = None) -> dict[str, Any]:
    """An annotator (or admin) with access to the workspace. Returns username, role and, for a user made
    now, the password. Existing users keep their password."""
    import argilla as rg

    client = conn.sdk()
    ws = ensure_workspace(client, workspace)
    user = _lookup(client.users, username=username)
    created = None
    if user is None:
        created = password or secrets.token_urlsafe(9)
        user = rg.User(username=username, password=created, role=role, client=client).create()
    if username not in {u.username for u in ws.users}:
        ws.add_user(user)
    return {"username": username, "role": str(user.role.value if hasattr(user.role, "value") else user.role),
            "password": created, "id": str(user.id), "api_key": getattr(user._model, "api_key", None)}


def user_names(conn: Connection) -> dict[str, str]:
    """user id -> username, to name who answered (needs an owner key)."""
    client = conn.sdk()
    return {str(u.id): u.username for u in client.users.list()}
