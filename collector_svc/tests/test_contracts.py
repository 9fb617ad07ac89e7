"""The contract test: the real CollectorClient against the collector's real views, in-process.

Every answer is checked against the client's declared return type (kit.contracts.collector); ml_svc's fake
collector answers those same types.
"""

import numpy as np
import pytest

from collector_svc.sources import user
from collector_svc.wsgi import application
from kit.clients import CollectorClient
from kit.digitfiles import image_folders_zip
from kit.wsgitest import ContractClient


class AcceptedSamples:
    def accepted_samples(self):
        return np.full((3, 28, 28), 7, np.uint8), np.array([1, 2, 3], np.uint8)


@pytest.fixture
def collector(settings, monkeypatch):
    monkeypatch.setattr(user, "storage", AcceptedSamples)
    return ContractClient(CollectorClient, application, settings.SERVICE_TOKEN)


def test_every_collector_client_call_meets_the_real_views(collector, settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path
    listed = {s["source"]: s for s in collector.sources()["sources"]}
    assert listed["mnist-5k"]["splits"] == ["train"] and "user" in listed
    described = collector.source("mnist-5k")
    assert described["splits"]["train"]["count"] == 5000
    assert sum(described["splits"]["train"]["class_counts"].values()) == 5000
    images, labels, next_offset = collector.batch(source="mnist-5k", split="train", size=10, offset=4990)
    assert (images.shape, len(labels), next_offset) == ((10, 28, 28), 10, None)
    _, _, next_offset = collector.batch(source="mnist-5k", split="train", size=10, offset=0)
    assert next_offset == 10
    user_images, user_labels = collector.user_samples()
    assert user_labels.tolist() == [1, 2, 3] and int(user_images.max()) == 7
    assert isinstance(collector.request_log(5)["entries"], list)
    upload = collector.upload([("d.zip", image_folders_zip(images[:3], labels[:3]))], purpose="dataset",
                              uploaded_by="eve")
    assert collector.get_upload(upload["id"]) == upload
    batch = collector.upload_batch(upload["id"], offset=0, size=2)
    assert [item["label"] for item in batch["items"]] == labels[:2].tolist() and batch["next_offset"] == 2
    collector.forget_upload(upload["id"])
    collector.ready()
    assert collector.not_called() == set(), "every call the client offers is checked here"
