"""The report in a real browser: Debian's Chromium, driven by Playwright, opens the file with every
network request refused. The page must log no error, draw every figure with data in it, filter the
sample browser when a drop reason's bar is clicked, and still render a run that kept nothing.
Screenshots are kept in tests/report/artifacts/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.report.page import build_report
from tests.report.browser import FIGURE_STATE, chromium, open_offline
from tests.report.test_report import step_stats

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture()
def browser():
    with chromium() as b:
        yield b


def test_the_report_opens_offline_draws_every_figure_and_a_bar_click_filters_the_samples(browser, report_run):
    page, problems, fetched = open_offline(browser, report_run / "report.html")
    state = page.evaluate(FIGURE_STATE)
    assert {s["name"] for s in state} >= {"funnel", "drops", "yield_process", "yield_case", "personas", "map"}
    for s in state:
        assert s["drawn"] and s["points"] > 0 and s["marks"] > 0, s
    assert page.locator("#sample-list article").count() > 0

    # Click the first bar of the drops figure (Plotly handles clicks on its own drag layer, so click the
    # bar's position as a person would): the browser shows exactly that step's samples for that reason.
    bar = page.locator('[data-fig="drops"] .point path').first
    box = bar.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    step = page.locator('select[name="step"]').input_value()
    reason = page.locator('select[name="reason"]').input_value()
    assert step and reason and page.locator('select[name="status"]').input_value() == "dropped"
    expected = step_stats(report_run)[step]["dropped"][reason]
    badges = page.locator("#sample-list article .badge").all_inner_texts()
    assert badges == [f"dropped at {step}: {reason}"] * expected
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-after-click.png"), full_page=False)

    # The steps table's reason links do the same, and "clear" shows everything again.
    page.locator('a.reason[data-step="exact"]').first.click()
    assert set(page.locator("#sample-list article .badge").all_inner_texts()) == {"dropped at exact: exact_duplicate"}
    page.click("#clear-filters")
    assert "of" in page.locator("#match-count").inner_text()
    assert not problems and not fetched, (problems, fetched)


def test_a_run_that_kept_nothing_still_renders_with_the_reason(browser, empty_run, tmp_path):
    page, problems, fetched = open_offline(browser, build_report(empty_run, tmp_path / "empty.html"))
    notice = page.locator("#no-kept")
    assert notice.is_visible() and "turn_too_short" in notice.inner_text()
    for s in page.evaluate(FIGURE_STATE):
        assert s["drawn"], s
    notice.locator("a.reason").first.click()
    assert page.locator("#sample-list article").count() > 0
    assert not problems and not fetched, (problems, fetched)
