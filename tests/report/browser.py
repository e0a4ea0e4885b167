"""Opening a report in a real browser, offline: shared by the report's browser tests, the quickstart's
test and bench/report.py."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from review_ui.system import ensure_debian_package
from tests.review_ui.test_review_browser import CHROMIUM_FLAGS


# Per figure div: the figure's name, whether Plotly drew it (its SVG root), how many data points its
# visible traces carry as Plotly read them (_fullData: numpy arrays arrive base64-encoded in the JSON),
# and how many marks it drew (bars, scatter traces, WebGL canvases).
FIGURE_STATE = """() => Array.from(document.querySelectorAll('[data-fig]')).map(d => ({
  name: d.dataset.fig,
  drawn: d.querySelectorAll('.main-svg').length > 0,
  points: (d._fullData || []).filter(t => t.visible === true).reduce((n, t) => n + (t._length || 0), 0),
  marks: d.querySelectorAll('.point, .scatterlayer .trace, .gl-container canvas').length,
}))"""


@contextmanager
def chromium():
    """Debian's Chromium under Playwright (installed with apt on first use; never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    path = ensure_debian_package("chromium", "chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def open_offline(browser, path: Path):
    """A page with the network cut off: any request that is not the file itself is aborted and recorded."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems, fetched = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    def route(r):
        if r.request.url.startswith("file://"):
            return r.continue_()
        fetched.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, problems, fetched
