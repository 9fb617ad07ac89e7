"""A viewer in a real browser (Debian's chromium): log in, draw with the mouse, get an answer, see history."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.browsing import draw, log_in, shot


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
    wrong = (int(digit.inner_text()) + 1) % 10
    page.get_by_role("button", name=f"The right digit is {wrong}").click()
    page.get_by_text(f"recorded as {wrong}").wait_for()
    shot(page, "recognize-corrected")

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


def test_an_engineer_trains_and_watches_progress_reach_100_percent_then_an_admin_promotes(page, platform, browser):
    base = platform.url("gateway")
    platform.ensure_production_model()
    log_in(page, base, "engineer", platform.demo_password)
    page.get_by_role("link", name="Train").click()
    page.wait_for_url(f"{base}/train")
    page.get_by_label("epochs").fill("0")
    page.get_by_role("button", name="Start training").click()
    assert page.get_by_label("epochs").evaluate("field => field.validity.rangeUnderflow"), "the browser holds the form back"
    assert page.url == f"{base}/train"
    shot(page, "train-invalid")
    page.get_by_label("epochs").fill("3")
    page.get_by_label("width").fill("8")
    followed = []
    page.on("request", lambda request: followed.append(request.url) if "/events" in request.url or "live=1" in request.url
            else None)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(f"{base}/runs/*")
    shot(page, "run-progress")
    page.locator("#run-progress", has_text="100%").wait_for(timeout=120000)
    page.locator(".run-panel .main-svg").first.wait_for()
    assert page.locator(".run-panel tbody tr").count() == 3, "one row per epoch"
    version = int(page.locator(".run-panel .ok a").inner_text().lstrip("v"))
    run_id = page.url.rstrip("/").rsplit("/", 1)[1]
    assert f"{base}/api/runs/{run_id}/events" in followed, "the page follows the run's server-sent events"
    assert any(url.endswith(f"/runs/{run_id}?live=1") for url in followed), "and re-renders the panel on them"
    shot(page, "run-done")
    assert page.console_errors == [] and page.outside_requests == []

    admin = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    log_in(admin, base, "admin", platform.demo_password)
    admin.get_by_role("link", name="Console").click()
    admin.get_by_label("Version", exact=True).select_option(str(version))
    admin.get_by_label("Reason", exact=True).fill("trained in the browser test")
    admin.get_by_label("Override the promotion gate").check()  # no live traffic has judged it yet
    admin.get_by_role("button", name="Move alias").click()
    admin.get_by_text(f"v{version} is now production").wait_for()
    assert admin.locator("#ledger tbody tr").first.inner_text().count("trained in the browser test") == 1
    assert "ledger-override" in admin.locator("#ledger tbody tr").first.get_attribute("class")
    shot(admin, "console")
    admin.goto(f"{base}/models/compare?baseline={version}&candidate={version - 1}")
    admin.get_by_text("Per-class deltas").wait_for()
    assert admin.locator("h2", has_text="Fixed").count() == 1 and admin.locator("h2", has_text="Broken").count() == 1
    shot(admin, "compare")


def test_the_api_docs_page_lists_the_operations_with_nothing_fetched_from_outside(page, platform):
    base = platform.url("gateway")
    log_in(page, base, "viewer", platform.demo_password)
    page.get_by_role("link", name="API docs").click()
    page.wait_for_url(f"{base}/api/docs/")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() >= 30, "every operation is listed"
    shot(page, "api-docs")
    assert page.console_errors == [] and page.outside_requests == []


def test_engineers_find_download_links_that_download(page, platform):
    platform.ensure_production_model()
    base = platform.url("gateway")
    log_in(page, base, "engineer", platform.demo_password)
    page.goto(f"{base}/models")
    with page.expect_download() as download:
        page.get_by_role("link", name="ONNX").first.click()
    assert download.value.suggested_filename.endswith(".onnx")
    page.goto(f"{base}/datasets")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").first.click()
    assert download.value.suggested_filename.endswith(".csv")
    assert page.console_errors == [] and page.outside_requests == []


WATCH_UPLOAD = """() => {
  window.uploadSeen = [];
  const panel = document.querySelector("form[data-upload] .upload-progress");
  new MutationObserver(() => window.uploadSeen.push(panel.hidden ? "hidden" : panel.textContent.trim()))
    .observe(panel, {attributes: true, subtree: true, childList: true, characterData: true});
}"""


def test_an_engineer_uploads_a_dataset_watching_its_progress_and_follows_its_run(page, platform, tmp_path):
    from kit.digitfiles import image_folders_zip, png, zip_of
    from tests.e2e.support import mixed_digits

    images, labels = mixed_digits()
    good, bad = tmp_path / "my-digits.zip", tmp_path / "mixed.zip"
    good.write_bytes(image_folders_zip(images[:300], labels[:300], size=96))
    bad.write_bytes(zip_of({"3/a.png": png(images[0]), "3/readme.txt": b"not a digit"}))
    base = platform.url("gateway")
    log_in(page, base, "engineer", platform.demo_password)
    page.goto(f"{base}/datasets")
    page.evaluate(WATCH_UPLOAD)
    page.set_input_files("#upload-file", str(good))
    page.get_by_role("button", name="Upload", exact=True).click()
    accepted = page.locator(".upload-result .ok")
    accepted.wait_for(timeout=60_000)
    assert accepted.inner_text().startswith("Accepted my-digits.zip: 300 images (300 labelled; 0: ")
    seen = page.evaluate("window.uploadSeen")
    assert any(s.startswith("sending") or s == "checking the file…" for s in seen) and seen[-1] == "hidden", seen
    shot(page, "dataset-upload")
    assert page.console_errors == []
    page.set_input_files("#upload-file", str(bad))
    page.get_by_role("button", name="Upload", exact=True).click()
    refused = page.get_by_role("alert")
    refused.wait_for()
    assert refused.inner_text() == "3/readme.txt is not a PNG or JPEG image."
    assert [e for e in page.console_errors if "status of 400" not in e] == [], "the refusal is the only error"
    page.console_errors.clear()
    page.goto(f"{base}/datasets")
    page.set_input_files("#upload-file", str(good))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.locator(".upload-result a").click()
    page.get_by_text("Dataset #").wait_for(timeout=60_000)
    assert "300 images" in page.locator(".run-panel").inner_text()
    assert page.console_errors == [] and page.outside_requests == []


def test_a_viewer_scores_a_file_from_the_history_page_and_reads_its_accuracy(page, platform, tmp_path):
    from kit.digitfiles import image_folders_zip
    from tests.e2e.support import mixed_digits

    platform.ensure_production_model()
    images, labels = mixed_digits()
    to_score = tmp_path / "twenty.zip"
    to_score.write_bytes(image_folders_zip(images[-20:], labels[-20:], size=120))
    base = platform.url("gateway")
    log_in(page, base, "viewer", platform.demo_password)
    page.goto(f"{base}/history")
    page.set_input_files("#score-file", str(to_score))
    page.get_by_role("button", name="Upload and score").click()
    accepted = page.locator(".upload-result .ok")
    accepted.wait_for(timeout=60_000)
    assert accepted.inner_text().startswith("Accepted twenty.zip: 20 images (20 labelled;")
    page.locator(".upload-result a").click()
    page.get_by_text("Scored 20 of 20 images of twenty.zip").wait_for(timeout=60_000)
    panel = page.locator(".run-panel").inner_text()
    assert "Accuracy" in panel and page.locator("table.confusion td.hit").count() == 10
    with page.expect_download() as download:
        page.get_by_role("link", name="results.csv").click()
    assert download.value.suggested_filename.endswith("-results.csv")
    page.get_by_role("link", name="in the history").click()
    page.wait_for_url(f"{base}/history?run=*")
    assert page.locator("#history-table tbody tr").count() == 20
    shot(page, "scored-file")
    assert page.console_errors == [] and page.outside_requests == []


def test_a_viewer_cannot_reach_engineer_or_admin_pages(page, platform):
    base = platform.url("gateway")
    log_in(page, base, "viewer", platform.demo_password)
    for link in ("Datasets", "Review", "Train", "Console"):
        assert page.get_by_role("link", name=link).count() == 0, f"{link} is not offered to a viewer"
    for path in ("/datasets", "/review", "/train", "/console"):
        response = page.goto(f"{base}{path}")
        assert response.status == 403 and page.get_by_role("heading", name="Not allowed").is_visible()
    shot(page, "forbidden")


@pytest.mark.parametrize("username, paths", [
    ("viewer", ["/", "/dashboard", "/history", "/runs", "/models"]),
    ("engineer", ["/", "/dashboard", "/history", "/runs", "/models", "/datasets", "/review", "/train", "/train?mode=fine-tune",
                  "/models/compare"]),
    ("admin", ["/console"]),
])
def test_every_page_renders_without_console_errors_or_outside_requests(page, platform, username, paths):
    platform.ensure_production_model()
    base = platform.url("gateway")
    log_in(page, base, username, platform.demo_password)
    for path in paths:
        response = page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
        assert response.status == 200, path
        assert page.locator("h1").count() == 1, path
        shot(page, f"{username}{path.replace('/', '-').replace('?', '-').replace('=', '-') or '-home'}")
    assert page.console_errors == [] and page.outside_requests == []
