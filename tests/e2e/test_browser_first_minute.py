"""The first minute in a real browser: on a fresh platform, before the first model serves, every page of every
role answers 200 without a console error, and Recognize shows the first model's progress, then predicts
without a page reload once it serves."""

from __future__ import annotations

import pytest

from tests.e2e.browsing import draw, log_in, playwright_api, shot
from tests.e2e.platform import Platform

PAGES = {
    "viewer": ["/", "/dashboard", "/history", "/runs", "/models"],
    "engineer": ["/datasets", "/review", "/train", "/train?mode=fine-tune", "/models/compare"],
    "admin": ["/console"],
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    running = Platform(workdir=tmp_path_factory.mktemp("first-minute"), settings={"ML_FIRST_MODEL_TIME_BUDGET_S": "30"})
    try:
        running.start()
        yield running
    finally:
        running.stop()


def test_before_the_first_model_every_page_works_and_recognize_turns_on_by_itself(page, platform, browser):  # noqa: F811
    base = platform.url("gateway")
    assert "queued" in platform.manage("ml_svc", "bootstrap_first_model")
    log_in(page, base, "viewer", platform.demo_password)
    status = page.locator("#model-status")
    status.get_by_text("The first model is on its way").wait_for()
    assert page.get_by_role("button", name="Predict").is_disabled()
    page.evaluate("window.notReloaded = true")
    shot(page, "first-minute-recognize-training")

    for username, paths in PAGES.items():
        other = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
        errors = []
        other.on("console", lambda message, errors=errors: errors.append(message.text) if message.type == "error" else None)
        log_in(other, base, username, platform.demo_password)
        for path in paths:
            response = other.goto(f"{base}{path}")
            other.wait_for_load_state("load")
            assert response.status == 200, (username, path)
        shot(other, f"first-minute-{username}")
        assert errors == [], (username, errors)
        other.context.close()

    page.get_by_role("button", name="Predict").wait_for(state="visible")
    # a locator wait, not wait_for_function: the page's Content-Security-Policy forbids evaluating strings
    playwright_api.expect(page.locator("#predict")).to_be_enabled(timeout=180000)
    assert status.locator("strong", has_text="v1").count() == 1, "the panel now names the serving model"
    draw(page, [[(70, 60), (210, 60), (130, 235)]])
    page.get_by_role("button", name="Predict").click()
    page.locator("#predicted-digit").wait_for()
    assert page.evaluate("window.notReloaded") is True, "Predict came on without a page reload"
    shot(page, "first-minute-recognize-answer")
    assert page.console_errors == [] and page.outside_requests == []
