"""Storage stays bounded: kept drawings are capped in size and count per user, superseded reports go with their
files, and `prune_history` deletes predictions past the retention period (their corrections stay)."""

from __future__ import annotations

import base64
import functools
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from storage_svc.registry import services
from storage_svc.registry.models import Blob, Prediction, Report, Sample

pytestmark = pytest.mark.django_db
IMAGE = base64.b64encode(bytes(784)).decode()


def record(record_prediction, model_version, user: str, raw: bytes | None) -> int:
    row = {"image_b64": IMAGE, "digit": 3, "probabilities": [0.1] * 10, "model_version_id": model_version["id"],
           "latency_ms": 1.0, "user": user}
    if raw is not None:
        row["raw_image_b64"] = base64.b64encode(raw).decode()
    return record_prediction(**row)["id"]


def test_a_drawing_over_the_kept_size_is_classified_and_recorded_without_its_bytes(api, record_prediction, model_version, settings):
    settings.RAW_IMAGE_MAX_BYTES = 1000
    small = record(record_prediction, model_version, "ann", b"p" * 1000)
    large = record(record_prediction, model_version, "ann", b"p" * 1001)
    assert bytes(Prediction.objects.get(pk=small).raw_image) == b"p" * 1000
    assert Prediction.objects.get(pk=large).raw_image is None
    assert bytes(Prediction.objects.get(pk=large).image) == bytes(784), "what the model saw is always kept"


def test_only_each_users_newest_drawings_keep_their_bytes(api, record_prediction, model_version, settings):
    settings.RAW_IMAGES_PER_USER = 3
    ann = [record(record_prediction, model_version, "ann", f"drawing {i}".encode()) for i in range(5)]
    ben = record(record_prediction, model_version, "ben", b"ben's drawing")
    kept = dict(Prediction.objects.filter(raw_image__isnull=False).values_list("id", "user"))
    assert kept == {ann[2]: "ann", ann[3]: "ann", ann[4]: "ann", ben: "ben"}
    assert Prediction.objects.count() == 6, "older predictions stay; only their drawing's bytes go"


def test_a_newer_report_of_a_version_replaces_the_old_one_and_its_file(api, model_version, stored_blobs):
    url = f"/models/{model_version['id']}/report?kind=pdf&input_sha256="
    assert api.put(url + "a" * 64, data=b"%PDF old", content_type="application/octet-stream").status_code == 200
    old_blob = Report.objects.get().blob_id
    assert stored_blobs.exists(old_blob)
    assert api.put(url + "b" * 64, data=b"%PDF new", content_type="application/octet-stream").status_code == 200
    assert list(Report.objects.values_list("input_sha256", flat=True)) == ["b" * 64]
    assert not Blob.objects.filter(pk=old_blob).exists() and not stored_blobs.exists(old_blob)
    assert api.get(url + "b" * 64).content == b"%PDF new"
    html = api.put(f"/models/{model_version['id']}/report?kind=html&input_sha256={'c' * 64}", data=b"<html>",
                   content_type="application/octet-stream")
    assert html.status_code == 200 and Report.objects.count() == 2, "another kind is not superseded"


def test_a_report_file_shared_with_a_newer_report_is_kept(api, model_version):
    url = f"/models/{model_version['id']}/report?kind=pdf&input_sha256="
    api.put(url + "a" * 64, data=b"%PDF same", content_type="application/octet-stream")
    api.put(url + "b" * 64, data=b"%PDF same", content_type="application/octet-stream")
    assert Report.objects.count() == 1 and api.get(url + "b" * 64).content == b"%PDF same"


def test_prune_history_deletes_old_predictions_and_keeps_their_corrections(api, record_prediction, model_version, settings, capsys,
                                                                            monkeypatch):
    old = record(record_prediction, model_version, "ann", None)
    corrected = record(record_prediction, model_version, "ann", None)
    recent = record(record_prediction, model_version, "ann", None)
    assert api.post(f"/predictions/{corrected}/feedback", {"label": 5, "user": "ann"},
                    content_type="application/json").status_code == 201
    Prediction.objects.filter(pk__in=[old, corrected]).update(created_at=timezone.now() - timedelta(days=40))
    settings.PREDICTION_RETENTION_DAYS = 30
    monkeypatch.setattr(services, "predictions_prune", functools.partial(services.predictions_prune, chunk=1))
    call_command("prune_history")
    assert "deleted 2 predictions older than 30 days" in capsys.readouterr().out
    assert list(Prediction.objects.values_list("id", flat=True)) == [recent]
    sample = Sample.objects.get()
    assert sample.label == 5 and bytes(sample.image) == bytes(784) and sample.prediction is None


def test_prune_history_with_no_retention_keeps_everything(api, record_prediction, model_version, settings, capsys):
    record(record_prediction, model_version, "ann", None)
    Prediction.objects.update(created_at=timezone.now() - timedelta(days=4000))
    settings.PREDICTION_RETENTION_DAYS = 0
    call_command("prune_history")
    assert "every prediction is kept" in capsys.readouterr().out and Prediction.objects.count() == 1
    call_command("prune_history", "--days", "1")
    assert Prediction.objects.count() == 0
