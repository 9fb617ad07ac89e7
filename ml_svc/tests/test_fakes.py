"""ml_svc's fake peers (fakes.py) match the typed clients ml_svc really calls."""

import pytest

from kit.clients import CollectorClient, StorageClient
from kit.fakecheck import drift
from tests.fakes import FakeCollector, FakeStorage


@pytest.mark.parametrize(("fake", "client"), [(FakeStorage, StorageClient), (FakeCollector, CollectorClient)])
def test_a_fake_peer_offers_only_its_clients_methods_called_the_same_way(fake, client):
    assert drift(fake, client) == []
