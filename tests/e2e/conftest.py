import pytest

from tests.e2e.platform import Platform

# Per-user allowances lifted for tests that drive load as one demo user.
UNLIMITED = {"GATEWAY_RATE_LIMIT_PREDICTIONS": "0", "GATEWAY_RATE_LIMIT_UPLOADS": "0"}


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
