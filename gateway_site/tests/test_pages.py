import re

import pytest

from tests.support import PASSWORD, canvas_data_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, users, fake_peers):
    assert client.login(username="viewer", password=PASSWORD)
    return client


def test_the_login_page_logs_a_user_in(client, users):
    page = client.get("/login")
    assert b'name="username"' in page.content and b"csrfmiddlewaretoken" in page.content
    response = client.post("/login", {"username": "viewer", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_the_recognize_page_has_a_canvas_and_the_user(browser):
    page = browser.get("/").content.decode()
    assert '<canvas id="pad"' in page and "viewer" in page and "Log out" in page
    assert re.search(r'<script [^>]*src="/static/django_htmx/htmx[\w.-]*\.js"', page), "htmx is served locally"
    # The pen bench/canvas_styles.py --page-pens reads best: 16 px on the 280 px canvas; past 24 px small digits
    # close up (a 4 becomes a 9) and accuracy falls.
    assert '<canvas id="pad" width="280" height="280"' in page
    assert re.search(r'<input id="pen" type="range" min="8" max="24" value="16">', page)


def test_a_drawn_digit_gets_an_answer_fragment_with_what_the_model_saw(browser, fake_peers):
    response = browser.post("/recognize", {"image_data": canvas_data_url()}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="predicted-digit">7<' in html and "data:image/png;base64," in html and "91.0%" in html
    assert "<html" not in html, "an htmx request gets only the fragment"
    assert fake_peers["storage"].predictions[0]["user"] == "viewer"


def test_an_empty_canvas_gets_a_friendly_message(browser, fake_peers):
    response = browser.post("/recognize", {"image_data": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Draw a digit" in response.content.decode() and "predicted-digit" not in response.content.decode()
    assert browser.post("/recognize", {"image_data": ""}).status_code == 422
    assert fake_peers["storage"].predictions == []


def test_history_shows_the_users_predictions(browser):
    browser.post("/recognize", {"image_data": canvas_data_url()}, HTTP_HX_REQUEST="true")
    html = browser.get("/history").content.decode()
    assert "My predictions" in html and "91.0%" in html and "1 in all" in html


def test_a_page_says_which_service_is_down(browser, fake_peers):
    fake_peers["storage"].down = True
    response = browser.get("/history")
    assert response.status_code == 503
    assert "storage_svc" in response.content.decode()
    fake_peers["storage"].down = False
    fake_peers["ml"].down = True
    response = browser.post("/recognize", {"image_data": canvas_data_url()}, HTTP_HX_REQUEST="true")
    assert response.status_code == 503 and "ml_svc" in response.content.decode()


def test_the_runs_page_polls_unfinished_runs(client, users, fake_peers):
    client.login(username="engineer", password=PASSWORD)
    html = client.get("/runs").content.decode()
    assert 'hx-get="/runs/5/row"' in html and "epoch 1/2" in html and "50%" in html
    fake_peers["storage"].runs[5].update(status="succeeded", progress=1.0, started_at="2026-01-01T00:00:00Z",
                                         finished_at="2026-01-01T00:01:05Z")
    row = client.get("/runs/5/row").content.decode()
    assert "hx-trigger" not in row and "100%" in row and "1 min 05 s" in row


@pytest.mark.parametrize("path", ["/", "/login", "/history", "/no-such-page"])
def test_every_page_forbids_inline_and_outside_scripts(browser, path):
    policy = browser.get(path)["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"


def test_the_csv_export_is_an_error_page_not_a_cut_file_when_storage_is_down_or_a_date_is_wrong(browser, fake_peers):
    fake_peers["storage"].down = True
    down = browser.get("/history?format=csv")
    assert down.status_code == 503 and not down["Content-Type"].startswith("text/csv")
    fake_peers["storage"].down = False
    assert browser.get("/history?format=csv&since=2026-02-30").status_code == 400
    assert browser.get("/history?format=csv&since=2026-02-28")["Content-Type"].startswith("text/csv")
