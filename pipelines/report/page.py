"""Build the report page: collect the run, draw the figures, pick the samples the browser shows, and
render one HTML file with plotly.js, the figures, the samples and the browser's script embedded.

Big runs stay fast and the page stays light by sampling, deterministically (seed 0), and saying so on the
page: the diversity map embeds and plots at most `max_map` kept samples; the browser holds at most
`max_browser` samples, half kept and half dropped, the dropped share split evenly over the (step, reason)
pairs so every reason has samples to show. Counts, funnels and yields are always over every sample.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipelines.core.shards import write_text_atomic
from pipelines.report import figures
from pipelines.report.collect import PERSONA_ATTRIBUTES, RunData, collect, full_samples

TEMPLATES = Path(__file__).parent / "templates"
EMBEDDERS = ("static", "minilm")


def build_report(run_dir: Path, out: Path | None = None, embedder: str = "static", max_browser: int = 2000,
                 max_map: int = 5000, during_run: bool = False) -> Path:
    """Write the report of `run_dir` to `out` (default RUN_DIR/report.html), atomically; return its path.
    `during_run`: written by the run's own report step, so the run's status is still "running"."""
    if embedder not in EMBEDDERS:
        raise ValueError(f"embedder must be one of {', '.join(EMBEDDERS)}, got {embedder!r}")
    data = collect(run_dir)
    out = Path(out) if out else Path(run_dir) / "report.html"
    html = render(data, embedder, max_browser, max_map, during_run)
    write_text_atomic(out, html)
    return out


def render(data: RunData, embedder: str, max_browser: int, max_map: int, during_run: bool = False) -> str:
    import jinja2
    import plotly.offline

    samples, kept = data.samples, data.kept
    figs: dict[str, Any] = {"funnel": figures.funnel(data.steps), "drops": figures.drops(data.steps)}
    if len(samples):
        figs["yield_process"] = figures.yield_by_process(samples)
    if len(samples.filter(pl.col("case") != "")):
        figs["yield_case"] = figures.yield_by_case(samples)
    notices: dict[str, str] = {}
    bank, bank_problem = _bank(data)
    if not len(kept):
        notices["personas"] = "No sample was kept."
    elif not len(kept.filter(pl.col("persona_id") != "")):
        notices["personas"] = "No kept sample carries a persona."
    elif bank is None:
        notices["personas"] = f"The persona bank could not be read: {bank_problem}"
    else:
        figs["personas"] = figures.persona_coverage(kept, bank, PERSONA_ATTRIBUTES)
    diversity, projected = _diversity(kept, embedder, max_map)
    if projected is not None:
        figs["map"] = figures.diversity_map(*projected)
    else:
        notices["map"] = diversity.pop("notice")
    if any(s["llm"].get("requests") for s in data.steps):
        figs["cost"] = figures.cost(data.steps)
    else:
        notices["cost"] = "No step called a model."

    browser_rows = _browser_rows(samples, max_browser)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["script_json"] = _script_json
    return env.get_template("report.html.jinja").render(
        plotly_js=plotly.offline.get_plotlyjs(),
        browser_js=(TEMPLATES / "browser.js").read_text(encoding="utf-8"),
        css=(TEMPLATES / "report.css").read_text(encoding="utf-8"),
        figures={k: json.loads(f.to_json()) for k, f in figs.items()},
        notices=notices,
        summary=_summary(data),
        during_run=during_run,
        written=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        steps=data.steps,
        diversity=diversity,
        backends=_backends(data.steps),
        budget=data.budget,
        evals=data.evals,
        samples=full_samples(data.run_dir, data, browser_rows),
        counts=_reason_counts(samples),
        browser_note=_browser_note(len(browser_rows), len(samples)),
    )


def _script_json(value: Any) -> str:
    """JSON safe inside <script>: no '</' can close the element early (the page's own escaping)."""
    from markupsafe import Markup

    return Markup(json.dumps(value, ensure_ascii=False, default=str).replace("</", "<\\/"))


def _summary(data: RunData) -> dict[str, Any]:
    samples = data.samples
    kept = len(data.kept)
    top = (samples.filter(pl.col("status") == "dropped").group_by(["step", "reason"]).len()
           .sort("len", descending=True).head(5).rows(named=True))
    m = data.manifest
    return {"recipe": m["recipe"], "status": m["status"], "started": m.get("started", ""),
            "updated": m.get("updated", ""), "executor": m.get("executor", "local"), "run_dir": str(data.run_dir),
            "generated": len(samples), "kept": kept, "dropped": len(samples) - kept,
            "yield_share": kept / len(samples) if len(samples) else 0.0, "top_drops": top}


def _bank(data: RunData) -> tuple[pl.DataFrame | None, str]:
    """The persona bank the run sampled from (the first persona step's `bank`, else the shipped one)."""
    from personas.bank import load_bank

    banks = [(s.get("bank") if isinstance(s, dict) else None)
             for s in (data.manifest.get("resolved") or {}).get("steps", {}).values()
             if isinstance(s, dict) and str(s.get("use", "")).startswith("personas.")]
    try:
        bank = load_bank(next((b for b in banks if b), None))
    except (OSError, ValueError) as e:
        return None, str(e)
    return pl.DataFrame([{a: getattr(p, a) or "" for a in PERSONA_ATTRIBUTES} for p in bank]), ""


def _diversity(kept: pl.DataFrame, embedder: str, max_map: int) -> tuple[dict[str, Any], tuple | None]:
    """Vendi score and distinct-n per process over (at most max_map of) the kept samples, and their 2-D
    PCA projection for the map. PCA, not t-SNE or UMAP: deterministic, linear (distances on the map mean
    what they look like), and a second on 5,000 points."""
    from filters.diversity_metrics import diversity_report

    if len(kept) < 3:
        return {"notice": f"The map needs at least 3 kept samples; this run kept {len(kept)}."}, None
    shown = kept.sample(n=min(max_map, len(kept)), seed=0).sort("row") if len(kept) > max_map else kept
    try:
        from filters.embeddings import PACKAGED, embed_texts, model_for

        emb = np.asarray(embed_texts(model_for(embedder, PACKAGED), [t[:2000] for t in shown["text"]]))
    except (ImportError, RuntimeError) as e:
        return {"notice": f"No diversity map: the embedder is not available ({e})."}, None
    from sklearn.decomposition import PCA

    points = PCA(n_components=2, random_state=0).fit_transform(emb)
    texts, processes = shown["text"].to_list(), [g or "(none)" for g in shown["generator"].to_list()]
    # The same metrics as `refinery diversity` (filters/diversity_metrics.py), per process and overall.
    metrics = diversity_report(texts, emb, {"process": processes}, clusters=max(1, int(math.sqrt(len(texts)))))
    per = [{"process": g, **m} for g, m in metrics["groups"]["process"].items()]
    everything = {"process": "all kept", **metrics["overall"]}
    note = (f"{len(shown):,} of {len(kept):,} kept samples" + (" (a seeded random sample)" if len(shown) < len(kept) else "")
            + f", {embedder} embeddings, PCA to 2-D")
    return {"rows": per + [everything], "note": note}, (points, shown, note)


def _browser_rows(samples: pl.DataFrame, max_browser: int) -> pl.DataFrame:
    kept = samples.filter(pl.col("status") == "kept")
    dropped = samples.filter(pl.col("status") == "dropped")
    pairs = dropped.select("step", "reason").unique().height
    per_pair = max(5, (max_browser - min(len(kept), max_browser // 2)) // max(1, pairs))
    picked = [kept.sample(n=min(len(kept), max_browser // 2), seed=0)] if len(kept) else []
    for _, group in dropped.group_by(["step", "reason"], maintain_order=True):
        picked.append(group.sample(n=min(len(group), per_pair), seed=0))
    return pl.concat(picked).sort("row") if picked else samples.head(0)


def _reason_counts(samples: pl.DataFrame) -> dict[str, int]:
    counts = samples.group_by(["status", "step", "reason"]).len()
    return {f"{r['status']}|{r['step']}|{r['reason']}": r["len"] for r in counts.iter_rows(named=True)}


def _browser_note(shown: int, total: int) -> str:
    if shown == total:
        return f"all {total:,} samples"
    return f"{shown:,} of {total:,} samples: every kept and dropped sample when few, else a seeded sample per drop reason"


def _backends(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from pipelines.llm.accounting import format_llm_counters, totals_by_backend

    per = {s["name"]: (s["llm_spec"], {f"llm_{k}": v for k, v in s["llm"].items()}) for s in steps}
    return [{"backend": b, "summary": format_llm_counters(c)} for b, c in totals_by_backend(per).items()]
