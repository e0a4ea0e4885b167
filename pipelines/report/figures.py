"""The report's figures, drawn with Plotly (graph_objects).

Plotly, because its Python package carries plotly.js inside the wheel (`plotly.offline.get_plotlyjs()`),
so one page embeds it and opens from file:// with no network; its figures are JSON, so Python builds them
and the page only calls `Plotly.newPlot`; and it has what the page needs built in: click events (a drop
reason's bar filters the sample browser), hover text, WebGL scatter for tens of thousands of points, and
buttons that switch a figure's colouring. Vega-Lite (Altair) would need vega, vega-lite and vega-embed
fetched and embedded by hand, and static images (matplotlib) would not click.

Every function takes plain data (collect.py's frames and step rows) and returns a Figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PALETTE = qualitative.Plotly + qualitative.D3
KEPT, DROPPED = "#2ca02c", "#d62728"


def _layout(fig: go.Figure, title: str, height: int = 380, **kw: Any) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.01}, height=height, margin={"l": 60, "r": 20, "t": 60, "b": 60},
                      template="plotly_white", legend={"orientation": "h", "y": -0.2})
    fig.update_layout(**kw)
    return fig


def funnel(steps: list[dict[str, Any]]) -> go.Figure:
    names = [s["name"] for s in steps]
    fig = go.Figure([
        go.Bar(name="in", x=names, y=[s["in"] for s in steps], marker_color="#9ecae1"),
        go.Bar(name="out", x=names, y=[s["out"] for s in steps], marker_color="#3182bd",
               text=[s["out"] for s in steps], textposition="outside"),
    ])
    return _layout(fig, "Samples into and out of every step, in run order", barmode="group")


def drops(steps: list[dict[str, Any]]) -> go.Figure:
    """One horizontal bar per step that dropped anything, split by reason; each bar's customdata is
    [step, reason], which the page turns into a filter of the sample browser on click."""
    dropping = [s for s in steps if s["dropped"]]
    reasons = sorted({r for s in dropping for r in s["dropped"]})
    fig = go.Figure()
    for i, reason in enumerate(reasons):
        rows = [s for s in dropping if reason in s["dropped"]]
        fig.add_bar(name=reason, orientation="h", y=[s["name"] for s in rows],
                    x=[s["dropped"][reason] for s in rows], marker_color=PALETTE[i % len(PALETTE)],
                    customdata=[[s["name"], reason] for s in rows],
                    hovertemplate="%{customdata[0]}: %{customdata[1]} — %{x} samples<br>click to see them<extra></extra>")
    if not reasons:
        fig.add_annotation(text="no step dropped a sample", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    height = max(260, 60 + 36 * len(dropping))
    return _layout(fig, "Drops per step and reason (click a bar for those samples)", height, barmode="stack",
                   yaxis={"autorange": "reversed"}, xaxis={"title": "samples dropped"})


def _yield(samples: pl.DataFrame, by: str, title: str) -> go.Figure:
    """Kept and dropped (by the step that dropped them) per value of `by`, with the yield share."""
    counts = samples.group_by([by, "status", "step"]).len().sort(by)
    groups = sorted(samples[by].unique().to_list())
    total = dict(samples.group_by(by).len().iter_rows())
    kept = dict(samples.filter(pl.col("status") == "kept").group_by(by).len().iter_rows())
    fig = go.Figure()
    fig.add_bar(name="kept", x=groups, y=[kept.get(g, 0) for g in groups], marker_color=KEPT,
                customdata=[[g, "kept"] for g in groups],
                text=[f"{kept.get(g, 0) / total[g]:.0%} kept" for g in groups], textposition="inside")
    dropped = counts.filter(pl.col("status") == "dropped")
    for i, step in enumerate(sorted(dropped["step"].unique().to_list())):
        per = dict(dropped.filter(pl.col("step") == step).select(by, "len").iter_rows())
        fig.add_bar(name=f"dropped at {step}", x=groups, y=[per.get(g, 0) for g in groups],
                    marker_color=PALETTE[(i + 3) % len(PALETTE)], customdata=[[g, step] for g in groups])
    return _layout(fig, title, barmode="stack", yaxis={"title": "samples"})


def yield_by_process(samples: pl.DataFrame) -> go.Figure:
    return _yield(samples.with_columns(pl.col("generator").replace("", "(none)")), "generator",
                  "Yield per generation process: kept, and dropped by which step")


def yield_by_case(samples: pl.DataFrame) -> go.Figure:
    calls = samples.filter(pl.col("case") != "")
    return _yield(calls, "case", "Function calling: yield per case")


def persona_coverage(kept: pl.DataFrame, bank: pl.DataFrame, attributes: Sequence[str], top: int = 15) -> go.Figure:
    """Per attribute, each value's share of the bank beside its share of the kept samples. Attributes with
    many values (regions) show the `top` most common in the bank; the subplot title says how many values
    the kept samples cover of all the bank has."""
    titles = []
    bars: list[tuple[list[str], list[float], list[float]]] = []
    with_persona = kept.filter(pl.col("persona_id") != "")
    for a in attributes:
        in_bank = bank.group_by(a).len().sort(["len", a], descending=[True, False])
        values = in_bank[a].to_list()
        bank_share = (in_bank["len"] / max(1, len(bank))).to_list()
        counts = dict(with_persona.group_by(f"persona_{a}").len().iter_rows())
        covered = sum(1 for v in values if counts.get(v))
        titles.append(f"{a}: {covered} of {len(values)} values covered")
        n = max(1, len(with_persona))
        bars.append((values[:top], bank_share[:top], [counts.get(v, 0) / n for v in values[:top]]))
    # One row per attribute: region names are long, and side-by-side subplots squeeze their labels.
    fig = make_subplots(rows=len(attributes), cols=1, subplot_titles=titles, vertical_spacing=0.3 / len(attributes))
    for i, (values, bank_share, kept_share) in enumerate(bars):
        labels = [v if len(v) <= 30 else v[:29] + "…" for v in values]
        fig.add_bar(name="bank", x=labels, y=bank_share, marker_color="#bdbdbd", row=i + 1, col=1,
                    showlegend=i == 0, legendgroup="bank", hovertext=values)
        fig.add_bar(name="kept samples", x=labels, y=kept_share, marker_color=KEPT, row=i + 1, col=1,
                    showlegend=i == 0, legendgroup="kept", hovertext=values)
    fig.update_yaxes(tickformat=".0%")
    fig.update_xaxes(tickangle=-30, tickfont={"size": 10})
    return _layout(fig, f"Persona coverage: {len(with_persona)} kept samples with a persona, against the bank",
                   300 * len(attributes), barmode="group", legend={"orientation": "h", "y": 1.06, "x": 0.5})


def diversity_map(points: np.ndarray, frame: pl.DataFrame, note: str) -> go.Figure:
    """A 2-D projection of the kept samples' embeddings, one WebGL trace per process; a button recolours
    the same points by persona domain (a second set of traces, shown instead)."""
    fig = go.Figure()
    hover = [t[:160].replace("\n", " / ") for t in frame["text"].to_list()]
    colourings = [("process", "generator"), ("persona domain", "persona_domain")]
    visible_sets = []
    for j, (label, col) in enumerate(colourings):
        values = frame[col].fill_null("").replace("", "(none)").to_list()
        groups = sorted(set(values))
        first = len(fig.data)
        for i, g in enumerate(groups):
            idx = [k for k, v in enumerate(values) if v == g]
            fig.add_scattergl(name=g, x=points[idx, 0], y=points[idx, 1], mode="markers", visible=j == 0,
                              marker={"size": 6, "opacity": 0.75, "color": PALETTE[i % len(PALETTE)]},
                              text=[hover[k] for k in idx], hovertemplate="%{text}<extra>" + g + "</extra>")
        visible_sets.append(range(first, len(fig.data)))
    buttons = [{"label": f"colour by {label}", "method": "update",
                "args": [{"visible": [k in visible_sets[j] for k in range(len(fig.data))]}]}
               for j, (label, _) in enumerate(colourings)]
    fig.update_layout(updatemenus=[{"type": "buttons", "direction": "right", "x": 0, "y": 1.12, "xanchor": "left",
                                    "buttons": buttons, "showactive": True}])
    fig.update_xaxes(showticklabels=False, title=None)
    fig.update_yaxes(showticklabels=False, title=None)
    return _layout(fig, f"Diversity map: {note}", 560)


def cost(steps: list[dict[str, Any]]) -> go.Figure:
    """Tokens in and out per model-calling step, and its wall time beside the time spent waiting on the
    model (busy_s)."""
    calling = [s for s in steps if s["llm"].get("requests")]
    names = [s["name"] for s in calling]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("tokens per step", "seconds per step"))
    fig.add_bar(name="tokens in", x=names, y=[s["llm"].get("tokens_in", 0) for s in calling], row=1, col=1,
                marker_color="#6baed6")
    fig.add_bar(name="tokens out", x=names, y=[s["llm"].get("tokens_out", 0) for s in calling], row=1, col=1,
                marker_color="#08519c")
    fig.add_bar(name="step wall time (summed over tasks)", x=names, y=[s["seconds"] for s in calling], row=1, col=2,
                marker_color="#fdae6b")
    fig.add_bar(name="waiting on the model", x=names, y=[round(s["llm"].get("busy_s", 0), 1) for s in calling],
                row=1, col=2, marker_color="#e6550d")
    return _layout(fig, "Model work per step", barmode="group")
