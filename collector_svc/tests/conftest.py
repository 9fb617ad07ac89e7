import pytest


@pytest.fixture
def api(client, settings):
    client.defaults["HTTP_X_SERVICE_TOKEN"] = settings.SERVICE_TOKEN
    return client
