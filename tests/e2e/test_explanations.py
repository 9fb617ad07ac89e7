"""Understanding the errors in a real browser: 'Why 7?' on Recognize shows the overlay and the training digits the
model finds closest; an engineer opens a cell of the error browser and sends two of its digits to review."""

from __future__ import annotations

import requests

from tests.e2e.browsing import draw, log_in, shot


def token(base: str, username: str, password: str) -> dict:
    answer = requests.post(f"{base}/api/auth/token", json={"username": username, "password": password}, timeout=10)
    return {"Authorization": f"Token {answer.json()['token']}"}


def test_recognize_shows_why_with_the_overlay_and_the_nearest_training_digits(page, platform):
    production = platform.ensure_production_model()
    assert production["nearest_index_sha256"], "a trained version keeps its nearest-examples index"
    base = platform.url("gateway")
    log_in(page, base, "viewer", platform.demo_password)
    draw(page, [[(70, 60), (210, 60), (130, 235)]])  # a seven
    page.get_by_role("button", name="Predict").click()
    digit = page.locator("#predicted-digit")
    digit.wait_for()
    page.get_by_role("button", name=f"Why {digit.inner_text()}?").click()
    overlay = page.get_by_alt_text(f"Which pixels made the model answer {digit.inner_text()}", exact=False)
    overlay.wait_for(timeout=30000)
    assert overlay.is_visible() and overlay.evaluate("img => img.naturalWidth") == 224
    examples = page.locator(".nearest-list img")
    assert examples.count() == 5 and all(examples.nth(n).evaluate("img => img.naturalWidth") == 84 for n in range(5))
    shot(page, "recognize-why")
    assert page.console_errors == [] and page.outside_requests == []


def test_the_error_browser_opens_a_cell_and_sends_two_digits_to_review(page, platform):
    production = platform.ensure_production_model()
    base = platform.url("gateway")
    engineer = token(base, "engineer", platform.demo_password)
    before = requests.get(f"{base}/api/samples", params={"status": "pending"}, headers=engineer, timeout=10).json()["count"]
    matrix = requests.get(f"{base}/api/models/{production['id']}/errors", headers=engineer, timeout=60).json()["matrix"]
    true, predicted = max(((t, p) for t in range(10) for p in range(10) if t != p), key=lambda c: matrix[c[0]][c[1]])
    if matrix[true][predicted] < 2:  # a version with no two alike mistakes: a cell of right answers still has digits
        true = predicted = 1
    log_in(page, base, "engineer", platform.demo_password)
    page.get_by_role("link", name="Models").click()
    page.locator(f'a[href="/models/{production["id"]}/errors"]').click()
    page.get_by_role("heading", name=f"Errors of v{production['id']}").wait_for()
    page.locator(f'[data-cell="{true}-{predicted}"]').click()
    page.get_by_role("heading", name=f"True {true}, answered {predicted}").wait_for(timeout=30000)
    gallery = page.locator(".error-gallery li")
    assert gallery.count() >= 2
    assert gallery.first.get_by_alt_text(f"why it answered {predicted}").evaluate("img => img.naturalWidth") == 224
    shot(page, "error-browser-cell")
    gallery.nth(0).get_by_role("checkbox").check()
    gallery.nth(1).get_by_role("checkbox").check()
    page.get_by_label("Send the ticked digits to review as").select_option(str(true))
    page.get_by_role("button", name="Send to review").click()
    page.get_by_text("2 digits sent to the").wait_for()
    shot(page, "error-browser-sent")
    pending = requests.get(f"{base}/api/samples", params={"status": "pending", "page_size": 2}, headers=engineer,
                           timeout=10).json()
    assert pending["count"] == before + 2
    assert [(s["label"], s["user"]) for s in pending["results"]] == [(true, "engineer")] * 2
    assert page.console_errors == [] and page.outside_requests == []
