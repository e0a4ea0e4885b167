"""A person in the real UI: Debian's Chromium, driven by Playwright, signs in as an annotator, opens the
dataset, corrects the answer, accepts and submits one record; the pull sees exactly that answer.
Screenshots of the run are kept in tests/review_ui/artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

from review_ui.datasets import ensure_user, find_dataset
from review_ui.merge import merge_record
from review_ui.pull import pull, read_snapshot
from review_ui.push import PushOptions, push
from review_ui.system import ensure_debian_package
from tests.review_ui.conftest import WORKSPACE
from tests.review_ui.make_samples import make_samples

ARTIFACTS = Path(__file__).parent / "artifacts"
# Headless and quiet: no GPU, no sandbox (root in a container), no calls home.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
CORRECTION = "Corrected in the browser: the answer, made right."


def test_annotator_submits_one_record_in_the_real_ui(conn, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    chromium = ensure_debian_package("chromium", "chromium")
    samples = make_samples("chat", 3, seed=7)
    # No judge: nothing is pre-selected, so the click on Accept is the annotator's own answer.
    push(samples, conn, PushOptions(dataset="browser", workspace=WORKSPACE, judge=None), tmp_path / "journal")
    ensure_user(conn, "uiann", WORKSPACE, password="uiann-password")
    dataset = find_dataset(conn, "browser-chat", WORKSPACE)
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{conn.url}/sign-in")
        page.fill("input[name=Username]", "uiann")
        page.fill("input[name=Password]", "uiann-password")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "sign-in" not in url, timeout=60_000)
        page.goto(f"{conn.url}/dataset/{dataset.id}/annotation-mode")
        shown = page.get_by_text(re.compile(r"\[chat #\d\]")).first
        expect(shown).to_be_visible(timeout=60_000)
        index = int(re.search(r"#(\d)", shown.inner_text()).group(1))

        page.get_by_role("button", name="Accept").click()
        page.locator('[aria-label="Question: corrected_answer"] [role=textbox]').click()
        page.keyboard.press("Control+A")
        page.keyboard.type(CORRECTION)
        page.screenshot(path=str(ARTIFACTS / "annotate-before-submit.png"))
        with page.expect_response(lambda r: "/responses" in r.url and r.request.method in ("POST", "PUT")) as resp:
            page.get_by_role("button", name="Submit").click()
        assert resp.value.ok, resp.value.text()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "annotate-after-submit.png"))
        browser.close()

    folder, _ = pull(conn, "browser-chat", tmp_path / "reviews")
    manifest, rows = read_snapshot(folder)
    answered = [r for r in rows if r["responses"]]
    assert len(answered) == 1 and manifest["annotators"] == {"uiann": {"submitted": 1}}
    response = answered[0]["responses"][0]
    assert response["values"]["verdict"] == "accept"
    assert response["values"]["corrected_answer"].strip() == CORRECTION
    assert answered[0]["external_id"] == samples[index].id
    merged = merge_record(answered[0])
    assert merged.verdicts[-1].reason == "accepted" and merged.messages[-1].content == CORRECTION
