import pytest

from tests.e2e.platform import Platform


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    running = Platform(workdir=tmp_path_factory.mktemp("platform"))
    try:
        running.start()
        yield running
    finally:
        running.stop()
