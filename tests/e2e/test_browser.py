"""A viewer in a real browser (Debian's chromium): log in, draw with the mouse, get an answer, see history."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

playwright_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser():
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it with apt-get")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, platform):
    """A page that records console errors and every request that would leave the machine."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.console_errors = []
    page.outside_requests = []
    page.on("console", lambda message: page.console_errors.append(message.text) if message.type == "error" else None)

    def guard(route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith("data:") or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            page.outside_requests.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    yield page
    context.close()


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")


def draw(page, strokes) -> None:
    box = page.locator("#pad").bounding_box()
    for points in strokes:
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=10)
        page.mouse.up()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_viewer_draws_a_digit_and_sees_the_answer_and_the_history(page, platform):
    platform.ensure_production_model()
    base = platform.url("gateway")
    log_in(page, base, "viewer", platform.demo_password)
    shot(page, "recognize-empty")
    draw(page, [[(70, 60), (210, 60), (130, 235)]])  # a seven, with the mouse
    page.get_by_role("button", name="Predict").click()
    digit = page.locator("#predicted-digit")
    digit.wait_for()
    assert digit.inner_text() in "0123456789"
    assert page.get_by_alt_text("The 28×28 image the model saw").is_visible()
    assert page.locator(".bars li").count() == 3
    shot(page, "recognize-answer")

    page.get_by_role("link", name="History").click()
    page.wait_for_url(f"{base}/history")
    assert page.get_by_role("heading", name="My predictions").is_visible()
    assert page.locator("tbody tr").count() >= 1
    assert page.locator("tbody tr").first.locator(".digit-cell").inner_text() == digit_text(page, base, platform)
    shot(page, "history")
    page.get_by_role("link", name="Runs").click()
    shot(page, "runs")
    assert page.console_errors == [] and page.outside_requests == []


def digit_text(page, base, platform) -> str:
    token = requests.post(f"{base}/api/auth/token", json={"username": "viewer", "password": platform.demo_password}, timeout=10).json()["token"]
    latest = requests.get(f"{base}/api/predictions", headers={"Authorization": f"Token {token}"}, timeout=10).json()["results"][0]
    return str(latest["digit"])


def test_an_empty_canvas_gets_a_friendly_message_not_a_guess(page, platform):
    base = platform.url("gateway")
    log_in(page, base, "viewer", platform.demo_password)
    page.get_by_role("button", name="Predict").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Draw a digit" in alert.inner_text()
    assert page.locator("#predicted-digit").count() == 0
    shot(page, "recognize-blank")
    assert page.console_errors == [] and page.outside_requests == []


def test_a_phone_sized_screen_shows_the_whole_pad(browser, platform):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    page = context.new_page()
    base = platform.url("gateway")
    log_in(page, base, "viewer", platform.demo_password)
    box = page.locator("#pad").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    shot(page, "recognize-phone")
    context.close()


def test_an_engineer_collects_from_the_datasets_page_and_sees_the_distribution(page, platform):
    base = platform.url("gateway")
    log_in(page, base, "engineer", platform.demo_password)
    page.get_by_role("link", name="Datasets").click()
    page.wait_for_url(f"{base}/datasets")
    page.get_by_label("Source").select_option("mnist-5k")
    page.get_by_label("At most (optional)").fill("2000")
    page.get_by_role("button", name="Collect and store").click()
    page.locator("#collect-result .status-succeeded").wait_for(timeout=60000)
    page.reload()
    chart = page.locator(".dataset .chart .main-svg").first
    chart.wait_for()
    assert page.locator(".dataset h3").first.inner_text().endswith("mnist-5k-train-first2000")
    assert len(page.locator(".checksum code").first.inner_text()) == 64
    shot(page, "datasets")
    page.get_by_role("link", name="Review").click()
    page.wait_for_url(f"{base}/review")
    shot(page, "review")
    assert page.console_errors == [] and page.outside_requests == []
