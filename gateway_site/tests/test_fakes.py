"""The gateway's fake peers (fakes.py) match the typed clients the gateway really calls."""

import pytest

from kit.clients import CollectorClient, MLClient, StorageClient
from kit.fakecheck import drift
from tests.fakes import FakeCollector, FakeML, FakeStorage


@pytest.mark.parametrize(("fake", "client"), [(FakeML, MLClient), (FakeStorage, StorageClient),
                                              (FakeCollector, CollectorClient)])
def test_a_fake_peer_offers_only_its_clients_methods_called_the_same_way(fake, client):
    assert drift(fake, client) == []
