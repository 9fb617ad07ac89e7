from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.e2e.platform import Platform

# Per-user allowances lifted for tests that drive load as one demo user.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
UNLIMITED = {"GATEWAY_RATE_LIMIT_PREDICTIONS": "0", "GATEWAY_RATE_LIMIT_UPLOADS": "0",
             # the webhook tests' receiver listens on loopback: the platform allows private destinations here
             "STORAGE_WEBHOOK_ALLOW_PRIVATE": "true"}


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    # The tests drive load as a few demo users: their prediction allowance is lifted here;
    # test_hostile_load.py restarts the gateway with the default limits.
    running = Platform(workdir=tmp_path_factory.mktemp("platform"), settings=dict(UNLIMITED))
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
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
