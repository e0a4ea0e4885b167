"""Inter-annotator agreement over a snapshot's answers.

Krippendorff's alpha (the `krippendorff` package) because it handles any number of annotators and
records answered by only some of them: alpha 1 is perfect agreement, 0 is chance level, below 0 is
systematic disagreement. Reported per question: `verdict` (nominal; a discard counts as a reject),
`quality` (ordinal), and for preference data the answer ranked first (nominal). Alpha is None where it is
undefined: fewer than two records with two or more answers, or every answer the same.
"""

from __future__ import annotations

from typing import Any

from review_ui.layout import ACCEPT, QUALITY, RANKING, VERDICT


def vote_label(response: dict[str, Any]) -> str | None:
    """accept | reject for a submitted or discarded response; None for drafts."""
    if response["status"] == "discarded":
        return "reject"
    if response["status"] != "submitted":
        return None
    return response["values"].get(VERDICT)


def top_answer(ranking: list[dict[str, Any]] | None, n_answers: int) -> str | None:
    """The answer ranked first among the answers the sample really has (a tie for first: None)."""
    if not ranking:
        return None
    ranks = {item["value"]: item.get("rank") for item in ranking
             if int(item["value"].rsplit("_", 1)[1]) <= n_answers and item.get("rank") is not None}
    if not ranks:
        return None
    best = min(ranks.values())
    top = [v for v, r in ranks.items() if r == best]
    return top[0] if len(top) == 1 else None


def _alpha(units: list[dict[str, Any]], level: str) -> float | None:
    import numpy as np
    import krippendorff

    users = sorted({u for unit in units for u in unit})
    pairable = [unit for unit in units if len(unit) >= 2]
    if len(pairable) < 2 or len({v for unit in pairable for v in unit.values()}) < 2:
        return None
    domain = sorted({v for unit in pairable for v in unit.values()}, key=str)
    code = {v: i for i, v in enumerate(domain)}
    data = np.full((len(users), len(pairable)), np.nan)
    for j, unit in enumerate(pairable):
        for i, u in enumerate(users):
            if u in unit:
                data[i, j] = code[unit[u]] if level == "nominal" else float(unit[u])
    return round(float(krippendorff.alpha(reliability_data=data, level_of_measurement=level)), 4)


def agreement(records: list[dict[str, Any]], kind: str, n_answers: dict[str, int] | None = None) -> dict:
    """records: snapshot rows (external_id, responses[user, status, values]). n_answers: for preference,
    how many answers each record really has (slots beyond are empty and ignored)."""
    verdicts, qualities, tops = [], [], []
    multi = agree = 0
    for rec in records:
        v: dict[str, str] = {}
        q: dict[str, int] = {}
        t: dict[str, str] = {}
        for r in rec["responses"]:
            label = vote_label(r)
            if label is None:
                continue
            v[r["user"]] = label
            if r["status"] == "submitted" and r["values"].get(QUALITY) is not None:
                q[r["user"]] = int(r["values"][QUALITY])
            if kind == "preference" and r["status"] == "submitted":
                top = top_answer(r["values"].get(RANKING), (n_answers or {}).get(rec["external_id"], 99))
                if top is not None:
                    t[r["user"]] = top
        verdicts.append(v)
        qualities.append(q)
        tops.append(t)
        if len(v) >= 2:
            multi += 1
            agree += len(set(v.values())) == 1
    out = {
        "records_with_2plus_answers": multi,
        "verdict_percent_agreement": round(agree / multi, 4) if multi else None,
        "verdict_alpha": _alpha(verdicts, "nominal"),
        "quality_alpha": _alpha(qualities, "ordinal"),
        "accept_rate": _rate(verdicts),
    }
    if kind == "preference":
        out["top_answer_alpha"] = _alpha(tops, "nominal")
    return out


def _rate(units: list[dict[str, str]]) -> float | None:
    labels = [x for unit in units for x in unit.values()]
    return round(sum(x == ACCEPT for x in labels) / len(labels), 4) if labels else None
