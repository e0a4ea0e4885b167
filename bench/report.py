"""The run report on a big run: a 100,000-sample run (generated multi-turn chats with personas from the
bank, four "processes", exact repeats and short answers planted), then `refinery report` on it, then the
page opened in Debian's Chromium with the network cut off.

    .venv/bin/python bench/report.py              # 100,000 samples
    .venv/bin/python bench/report.py --n 20000

Measured: the report's wall time and peak RSS (its own process), the HTML's size, and in the browser the
time from navigation to every figure drawn, and the time one filter change takes to re-render the sample
list. Last line: {"samples": ..., "report_s": ..., "report_peak_rss_mb": ..., "html_mb": ...,
"browser_ready_s": ..., "filter_ms": ...}
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import generated_samples, gsm8k_rows, personas  # noqa: E402
from _measure import PeakRSS  # noqa: E402

from pipelines.core.executor import run_recipe  # noqa: E402
from pipelines.core.recipe import load_recipe  # noqa: E402
from pipelines.core.sample import Message  # noqa: E402

RECIPE = """\
name: bench-report
shard_size: 5000
steps:
  source: {{use: io.read_jsonl, path: '{path}'}}
  length: {{use: filter.length, after: [source], min_chars: 3}}
  exact:  {{use: filter.exact_dedup, after: [length]}}
  final:  {{use: io.write_jsonl, after: [exact]}}
"""
PROCESSES = ("multi_turn", "evolve", "grounded", "function_calling")


def corpus(n: int, path: Path) -> None:
    rng = random.Random(0)
    samples = generated_samples(n, rng, gsm8k_rows(), personas(), PROCESSES, with_persona=True)
    for i in range(0, n, 50):  # 2%: a repeat of an earlier sample
        samples[i] = samples[rng.randrange(max(1, i))] if i else samples[i]
    for i in range(7, n, 100):  # 1%: a one-letter answer
        samples[i] = replace(samples[i], messages=[samples[i].messages[0], Message("assistant", "k")])
    path.write_text("".join(s.to_json() + "\n" for s in samples), encoding="utf-8")


def browser_times(html: Path) -> tuple[float, float]:
    from tests.report.browser import chromium

    with chromium() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
        t0 = time.perf_counter()
        page.goto(html.as_uri())
        page.wait_for_function("() => Array.from(document.querySelectorAll('[data-fig]'))"
                               ".every(d => d.querySelector('.main-svg'))", timeout=120_000)
        ready = time.perf_counter() - t0
        ms = page.evaluate("""() => { const s = document.querySelector('select[name=status]');
            const t0 = performance.now(); s.value = 'dropped'; s.dispatchEvent(new Event('input', {bubbles: true}));
            return performance.now() - t0; }""")
    return ready, ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="refinery-bench-report-") as tmp:
        root = Path(tmp)
        corpus(args.n, root / "corpus.jsonl")
        (root / "recipe.yaml").write_text(RECIPE.format(path=root / "corpus.jsonl"))
        t0 = time.perf_counter()
        run_recipe(load_recipe(root / "recipe.yaml"), root / "run", workers=2)
        print(f"run of {args.n:,} samples: {time.perf_counter() - t0:.1f} s", flush=True)
        # The report as a user runs it, in its own process, so its RSS is its own. The static embedder is
        # made once per machine: do that first, outside the measurement.
        subprocess.run([sys.executable, "-c", "from filters.embeddings import static_model_path; static_model_path()"],
                       check=True)
        with PeakRSS() as rss:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pipelines.cli", "report", str(root / "run")], check=True,
                           stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - t0
        html = root / "run" / "report.html"
        ready, ms = browser_times(html)
        print(json.dumps({"samples": args.n, "report_s": round(seconds, 1), "report_peak_rss_mb": round(rss.peak_mb),
                          "html_mb": round(html.stat().st_size / 2**20, 1), "browser_ready_s": round(ready, 2),
                          "filter_ms": round(ms, 1)}))


if __name__ == "__main__":
    main()
