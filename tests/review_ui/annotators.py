"""Annotators answering through the same HTTP API the Argilla UI uses: a password login for a bearer
token (POST /api/v1/token), then response upserts (POST /api/v1/me/responses/bulk, the call the UI makes
when an annotator submits)."""

from __future__ import annotations

from typing import Any

import httpx

from review_ui.layout import ACCEPT, CORRECTION, QUALITY, RANKING, RATIONALE, REJECT, VERDICT

BULK = 100  # the server's limit for one responses bulk


class Annotator:
    def __init__(self, url: str, username: str, password: str):
        self.username = username
        r = httpx.post(f"{url}/api/v1/token", data={"username": username, "password": password}, timeout=30)
        r.raise_for_status()
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {r.json()['access_token']}"},
                                 timeout=120)

    def me(self) -> dict:
        return self.http.get("/api/v1/me").raise_for_status().json()

    def submit(self, answers: list[dict[str, Any]]) -> None:
        """answers: [{"record_id", "status", "values"}] with plain values ({"verdict": "accept", ...})."""
        for i in range(0, len(answers), BULK):
            items = [{"record_id": a["record_id"], "status": a["status"],
                      **({"values": {q: {"value": v} for q, v in a["values"].items()}}
                         if a["status"] != "discarded" else {"values": {}})}
                     for a in answers[i:i + BULK]]
            r = self.http.post("/api/v1/me/responses/bulk", json={"items": items})
            r.raise_for_status()
            errors = [it["error"] for it in r.json()["items"] if it.get("error")]
            assert not errors, errors[:3]

    def close(self) -> None:
        self.http.close()


def accept(record_id: str, quality: int | None = None, correction: str | None = None,
           rationale: str | None = None) -> dict:
    values: dict[str, Any] = {VERDICT: ACCEPT}
    if quality is not None:
        values[QUALITY] = quality
    if correction is not None:
        values[CORRECTION] = correction
    if rationale is not None:
        values[RATIONALE] = rationale
    return {"record_id": record_id, "status": "submitted", "values": values}


def reject(record_id: str, rationale: str | None = None) -> dict:
    values: dict[str, Any] = {VERDICT: REJECT}
    if rationale:
        values[RATIONALE] = rationale
    return {"record_id": record_id, "status": "submitted", "values": values}


def discard(record_id: str) -> dict:
    return {"record_id": record_id, "status": "discarded", "values": {}}


def rank(record_id: str, order: list[str], verdict: str = ACCEPT) -> dict:
    """order: answer names best first; argilla 2.8 needs explicit ranks for every slot."""
    return {"record_id": record_id, "status": "submitted",
            "values": {VERDICT: verdict, RANKING: [{"value": v, "rank": i + 1} for i, v in enumerate(order)]}}
