import base64

import numpy as np
import pytest

from kit import imagepack
from storage_svc.registry.models import Prediction, Sample
from tests.support import make_pack

pytestmark = pytest.mark.django_db


def image_b64(value: int) -> str:
    return base64.b64encode(bytes([value]) * 784).decode()


@pytest.fixture
def prediction(record_prediction, model_version):
    return record_prediction(image_b64=image_b64(7), digit=1, probabilities=[0.1] * 10,
                             model_version_id=model_version["id"], latency_ms=1, user="ann")


def feedback(api, prediction_id, label, user="ann"):
    return api.post(f"/predictions/{prediction_id}/feedback", {"label": label, "user": user}, content_type="application/json")


def test_a_correction_labels_the_prediction_and_queues_its_image(api, prediction):
    response = feedback(api, prediction["id"], 7)
    assert response.status_code == 201
    sample = response.json()
    assert (sample["label"], sample["status"], sample["prediction"], sample["user"]) == (7, "pending", prediction["id"], "ann")
    assert sample["image"] == image_b64(7)
    assert api.get(f"/predictions/{prediction['id']}").json()["corrected_label"] == 7
    assert api.get("/predictions?corrected=true").json()["count"] == 1


def test_correcting_twice_before_review_updates_the_one_pending_sample(api, prediction):
    feedback(api, prediction["id"], 7)
    feedback(api, prediction["id"], 9)
    assert Sample.objects.count() == 1 and Sample.objects.get().label == 9


def test_a_correction_of_a_missing_prediction_is_a_404_and_writes_nothing(api):
    assert feedback(api, 424242, 3).status_code == 404
    assert feedback(api, 424242, 11).status_code == 400
    assert Sample.objects.count() == 0


def test_review_moves_samples_and_only_accepted_ones_are_exported(api):
    ids = [api.post("/samples", {"image_b64": image_b64(v), "label": v % 10, "user": "bo"},
                    content_type="application/json").json()["id"] for v in (11, 22, 33)]
    api.post(f"/samples/{ids[0]}/review", {"status": "accepted", "reviewer": "eng"}, content_type="application/json")
    reviewed = api.post(f"/samples/{ids[2]}/review", {"status": "accepted", "reviewer": "eng"}, content_type="application/json").json()
    assert reviewed["reviewed_by"] == "eng" and reviewed["reviewed_at"]
    api.post(f"/samples/{ids[1]}/review", {"status": "rejected", "reviewer": "eng"}, content_type="application/json")
    assert api.get("/samples?status=pending").json()["count"] == 0
    images, labels = imagepack.unpack(api.get("/samples/export?status=accepted").content)
    assert labels.tolist() == [1, 3] and images[0].max() == 11 and images[1].max() == 33


def test_an_empty_export_is_a_valid_empty_pack(api):
    images, labels = imagepack.unpack(api.get("/samples/export").content)
    assert images.shape == (0, 28, 28) and labels.shape == (0,)


@pytest.mark.parametrize("body", [
    {"image_b64": image_b64(1), "label": 10, "user": "x"},
    {"image_b64": base64.b64encode(b"abc").decode(), "label": 1, "user": "x"},
    {"image_b64": image_b64(1), "label": 1},
])
def test_bad_samples_are_refused(api, body):
    assert api.post("/samples", body, content_type="application/json").status_code == 400
    assert Sample.objects.count() == 0


def test_a_review_must_accept_or_reject(api):
    sample = api.post("/samples", {"image_b64": image_b64(5), "label": 5, "user": "x"}, content_type="application/json").json()
    assert api.post(f"/samples/{sample['id']}/review", {"status": "maybe", "reviewer": "e"}, content_type="application/json").status_code == 400
    assert api.post("/samples/999999/review", {"status": "accepted", "reviewer": "e"}, content_type="application/json").status_code == 404


def test_a_dataset_records_its_split_metadata(api):
    meta = '{"validation": {"fraction": 0.1, "seed": 0, "train": 18, "validation": 2}}'
    response = api.post(f"/datasets?name=d&source=s&split=train&meta={meta}", data=make_pack(20),
                        content_type=imagepack.CONTENT_TYPE)
    assert response.json()["meta"]["validation"]["validation"] == 2
    bad = api.post("/datasets?name=d&source=s&split=train&meta={oops", data=make_pack(20), content_type=imagepack.CONTENT_TYPE)
    assert bad.status_code == 400


def test_prediction_images_keep_their_bytes(api, prediction):
    stored = Prediction.objects.get(pk=prediction["id"])
    assert np.frombuffer(bytes(stored.image), np.uint8).max() == 7


def test_daily_statistics_per_version_count_mix_confidence_and_corrections(api, record_prediction, prediction, model_version):
    record_prediction(image_b64=image_b64(3), digit=4, probabilities=[0.0] * 4 + [0.6] + [0.04] * 5,
                      model_version_id=model_version["id"], latency_ms=1, user="ann")
    feedback(api, prediction["id"], 7)
    series = api.get("/predictions/stats?days=7").json()["series"]
    assert len(series) == 1
    today = series[0]
    assert today["model_version_id"] == model_version["id"] and today["count"] == 2
    assert today["digits"][1] == 1 and today["digits"][4] == 1
    assert today["mean_confidence"] == pytest.approx((0.1 + 0.6) / 2, abs=1e-3)
    assert today["correction_rate"] == 0.5
    assert api.get("/predictions/stats?days=0").status_code == 400
    assert api.get("/predictions?since=2000-01-01&until=2999-01-01").json()["count"] == 2
    assert api.get("/predictions?since=yesterday").status_code == 400


def test_the_review_queue_can_put_the_predictions_the_model_was_least_sure_of_first(api, model_version):
    from tests.test_rollout import IMAGE

    def corrected(confidence: float) -> int:
        probabilities = [(1 - confidence) / 9] * 10
        probabilities[3] = confidence
        row = {"image_b64": IMAGE, "digit": 3, "probabilities": probabilities, "model_version_id": model_version["id"],
               "latency_ms": 1.0, "user": "ann"}
        prediction = api.post("/predictions/bulk", {"predictions": [row]}, content_type="application/json").json()["ids"][0]
        return api.post(f"/predictions/{prediction}/feedback", {"label": 5, "user": "ann"},
                        content_type="application/json").json()["id"]

    sure, unsure, middling = corrected(0.99), corrected(0.31), corrected(0.6)
    drawn = api.post("/samples", {"image_b64": IMAGE, "label": 1, "user": "bo"}, content_type="application/json").json()
    assert drawn["confidence"] is None
    queue = api.get("/samples", {"status": "pending", "order": "uncertainty"}).json()["results"]
    assert [s["id"] for s in queue] == [unsure, middling, sure, drawn["id"]], "least sure first, drawn ones last"
    assert queue[0]["confidence"] == pytest.approx(0.31)
    newest = api.get("/samples", {"status": "pending"}).json()["results"]
    assert [s["id"] for s in newest] == [drawn["id"], middling, unsure, sure]
    assert api.get("/samples", {"order": "random"}).status_code == 400


def test_a_batch_sent_to_review_is_stored_all_or_none(api):
    good = base64.b64encode(bytes(784)).decode()
    sent = api.post("/samples/bulk", {"samples": [{"image_b64": good, "label": 4, "user": "eve"}] * 2},
                    content_type="application/json")
    assert sent.status_code == 201 and sent.json()["created"] == 2
    for bad in ([{"image_b64": good, "label": 4, "user": "eve"}, {"image_b64": "AAAA", "label": 4, "user": "eve"}],
                [{"image_b64": good, "label": 10, "user": "eve"}], [], [{"image_b64": good, "label": 4, "user": "eve"}] * 101):
        refused = api.post("/samples/bulk", {"samples": bad}, content_type="application/json")
        assert refused.status_code == 400, refused.content
    assert Sample.objects.count() == 2, "a refused batch stores nothing"


def test_live_predictions_nobody_labelled_least_sure_first_and_the_error_cells(api, record_prediction, model_version):
    def answered(confidence: float, digit: int = 1) -> dict:
        probabilities = [(1 - confidence) / 9] * 10
        probabilities[digit] = confidence
        return record_prediction(image_b64=image_b64(int(confidence * 100)), digit=digit, probabilities=probabilities,
                                 model_version_id=model_version["id"], latency_ms=1, user="ann")

    sure, unsure, middling = answered(0.99), answered(0.41), answered(0.7)
    scored = answered(0.2)
    Prediction.objects.filter(pk=scored["id"]).update(run=api.post(
        "/runs", {"kind": "infer", "params": {}, "created_by": "ann"}, content_type="application/json").json()["id"])
    listing = api.get("/predictions", {"corrected": "false", "live": "true", "order": "uncertainty"}).json()
    assert [p["id"] for p in listing["results"]] == [unsure["id"], middling["id"], sure["id"]]
    assert feedback(api, middling["id"], 4).status_code == feedback(api, scored["id"], 4).status_code == 201
    errors = api.get(f"/models/{model_version['id']}/errors", {"true": 4, "predicted": 1}).json()
    assert errors["count"] == 1 and [i["prediction"] for i in errors["cell"]["items"]] == [middling["id"]], "live only"
    for params in ({"order": "random"}, {"order": "uncertainty\x00"}):
        assert api.get("/predictions", params).status_code == 400
    for params in ({"true": 10, "predicted": 1}, {"true": "٤", "predicted": 1}, {"limit": 49}, {"limit": 0}):
        assert api.get(f"/models/{model_version['id']}/errors", params).status_code == 400, params
    assert api.get("/models/999999/errors").status_code == 404
