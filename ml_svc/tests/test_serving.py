import base64
import hashlib
import io

import numpy as np
import pytest
import torch
from PIL import Image

from kit.wsgitest import call
from ml_svc import serving
from ml_svc.architectures import validate_hyperparameters
from ml_svc.evaluation import stratified_split
from ml_svc.training import train
from ml_svc.weights import weights_to_bytes
from ml_svc.wsgi import application
from tests.support import CNN, HP, register


@pytest.fixture(autouse=True)
def instant_alias_refresh(settings):
    settings.ALIAS_REFRESH_S = 0.0




def test_it_predicts_with_the_production_model_and_returns_what_it_saw(served, storage, digits, trained_weights):
    images, labels = digits
    version = register(storage, trained_weights)
    storage.set_alias("production", model_version_id=version, actor="t", reason="")
    correct = 0
    for i in range(4000, 5000, 50):
        body = served("/predict", {"pixels": images[i].tolist()}).json()
        correct += body["digit"] == labels[i]
    assert correct >= 17
    assert body["model"] == {"id": version, "version": f"v{version}"}
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-3
    assert len(base64.b64decode(body["image"])) == 784


def test_it_accepts_a_png_data_url_from_a_canvas(served, storage, digits, trained_weights):
    storage.set_alias("production", model_version_id=register(storage, trained_weights), actor="t", reason="")
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = np.asarray(Image.fromarray(digits[0][4200]).resize((280, 280)))
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    body = served("/predict", {"image_base64": url}).json()
    assert body["digit"] == digits[1][4200]


def test_a_blank_canvas_gets_a_clear_422(served, storage, trained_weights):
    storage.set_alias("production", model_version_id=register(storage, trained_weights), actor="t", reason="")
    response = served("/predict", {"pixels": [[0] * 28] * 28})
    assert response.status == 422
    assert response.json()["error"]["code"] == "blank_image"


@pytest.mark.parametrize("payload", [{}, {"pixels": [[0] * 28] * 28, "image_base64": "x"}, {"image_base64": "%%%"}, {"image_base64": 5}])
def test_malformed_requests_are_400(served, storage, trained_weights, payload):
    storage.set_alias("production", model_version_id=register(storage, trained_weights), actor="t", reason="")
    assert served("/predict", payload).status == 400


def test_without_a_production_model_it_answers_503(served, storage, digits):
    response = served("/predict", {"pixels": digits[0][0].tolist()})
    assert response.status == 503
    assert response.json()["error"]["code"] == "no_model"


def test_with_storage_down_and_no_model_loaded_it_names_storage(served, storage, digits):
    storage.down = True
    response = served("/predict", {"pixels": digits[0][0].tolist()})
    assert response.status == 503
    assert "storage_svc" in response.json()["error"]["message"]


def test_it_follows_a_promotion_and_keeps_serving_when_storage_goes_down(served, storage, digits, trained_weights):
    images = digits[0]
    first = register(storage, trained_weights)
    storage.set_alias("production", model_version_id=first, actor="t", reason="")
    assert served("/predict", {"pixels": images[0].tolist()}).json()["model"]["id"] == first
    second = register(storage, trained_weights + b"")  # same weights, a new version
    storage.set_alias("production", model_version_id=second, actor="t", reason="")
    assert served("/predict", {"pixels": images[0].tolist()}).json()["model"]["id"] == second
    storage.down = True
    assert served("/predict", {"pixels": images[0].tolist()}).json()["model"]["id"] == second


def test_a_version_with_tampered_weights_is_refused_and_the_previous_keeps_serving(served, storage, digits, trained_weights):
    good = register(storage, trained_weights)
    storage.set_alias("production", model_version_id=good, actor="t", reason="")
    assert served("/predict", {"pixels": digits[0][0].tolist()}).status == 200
    bad = register(storage, trained_weights)
    sha = storage.versions[bad]["weights_sha256"] = hashlib.sha256(b"registered").hexdigest()
    storage.blobs[sha] = trained_weights  # the bytes no longer match the registered hash
    storage.set_alias("production", model_version_id=bad, actor="t", reason="")
    assert served("/predict", {"pixels": digits[0][0].tolist()}).json()["model"]["id"] == good


def test_a_request_may_name_a_version(served, storage, digits, trained_weights):
    pinned = register(storage, trained_weights)
    storage.set_alias("production", model_version_id=register(storage, trained_weights), actor="t", reason="")
    assert served("/predict", {"pixels": digits[0][0].tolist(), "model_id": pinned}).json()["model"]["id"] == pinned
    assert served("/predict", {"pixels": digits[0][0].tolist(), "model_id": 999}).status == 404


def test_a_batch_is_answered_item_by_item(served, storage, digits, trained_weights):
    storage.set_alias("production", model_version_id=register(storage, trained_weights), actor="t", reason="")
    images = digits[0]
    items = [{"pixels": images[i].tolist()} for i in (4100, 4600)] + [{"pixels": [[0] * 28] * 28}]
    body = served("/predict/batch", {"images": items}).json()
    singles = [served("/predict", item).json() for item in items[:2]]
    for batched, single in zip(body["results"][:2], singles, strict=True):
        assert batched["probabilities"] == pytest.approx(single["probabilities"], abs=1e-5)
    assert [r["digit"] for r in body["results"][:2]] == [s["digit"] for s in singles]
    assert body["results"][2]["error"]["code"] == "blank_image"
    too_many = served("/predict/batch", {"images": [{"pixels": [[0] * 28] * 28}] * 257})
    assert too_many.status == 400


@pytest.mark.django_db
def test_ml_svc_refuses_calls_without_the_service_token(client, storage):
    assert call(application, "POST", "/predict", {"pixels": [[0] * 28] * 28}).status == 401
    assert client.post("/jobs/train", {}, content_type="application/json", HTTP_X_SERVICE_TOKEN="guess").status_code == 401
    assert client.get("/health").status_code == 200 and client.get("/metrics").status_code == 200


def test_a_process_with_no_model_picks_up_the_first_promotion_at_once(served, storage, trained_weights, settings, monkeypatch):
    settings.ALIAS_REFRESH_S = 60.0  # a serving model is re-checked only every minute ...
    clock = [1000.0]
    monkeypatch.setattr(serving.time, "monotonic", lambda: clock[0])
    digit = [[255 if 6 <= row < 22 and col in (13, 14) else 0 for col in range(28)] for row in range(28)]
    assert served("/predict", {"pixels": digit}).json()["error"]["code"] == "no_model"
    storage.set_alias("production", model_version_id=register(storage, trained_weights), actor="t", reason="")
    clock[0] += serving.NO_MODEL_RECHECK_S  # ... but while none serves, a quarter of a second later already
    assert served("/predict", {"pixels": digit}).status == 200


def test_a_batch_whose_images_hold_too_many_pixels_in_all_is_refused_before_decoding(served, storage, trained_weights, settings):
    storage.set_alias("production", model_version_id=register(storage, trained_weights), actor="t", reason="")
    big = io.BytesIO()
    Image.new("1", (2048, 2048)).save(big, format="PNG")  # 2 KB that decode to 4 million pixels
    item = {"image_base64": base64.b64encode(big.getvalue()).decode()}
    response = served("/predict/batch", {"images": [item] * 256})
    assert response.status == 413 and response.json()["error"]["code"] == "too_much_work"
    settings.MAX_PIXELS_PER_REQUEST = 2 * 280 * 280
    canvas = io.BytesIO()
    Image.new("L", (280, 280), 255).save(canvas, format="PNG")
    two = {"image_base64": base64.b64encode(canvas.getvalue()).decode()}
    assert served("/predict/batch", {"images": [two] * 2}).status == 200
    assert served("/predict/batch", {"images": [two] * 3}).status == 413


@pytest.fixture(scope="session")
def well_trained_weights(digits):
    """A version trained as a real one is (on its dataset's training split, enough epochs to reach ~97 %): int8's
    check is about such models; a barely trained one is near its decision boundaries everywhere."""
    images, labels = digits
    train_idx, _ = stratified_split(labels, 0.1, seed=0)  # the split register_with_data records
    hp = validate_hyperparameters(CNN, {"epochs": 8, "width": 16})
    torch.manual_seed(0)
    model = CNN.build(hp)
    train(model, images[train_idx], labels[train_idx], hp, on_progress=lambda f, e: None)
    return weights_to_bytes(model)


def official_test_set():
    """The official 10,000 MNIST test digits (../shared/datasets/mnist-t10k), as (images, labels)."""
    import gzip
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "mnist-t10k"
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz") as images, gzip.open(folder / "t10k-labels-idx1-ubyte.gz") as labels:
        return (np.frombuffer(images.read(), np.uint8, offset=16).reshape(-1, 28, 28),
                np.frombuffer(labels.read(), np.uint8, offset=8))


def register_with_data(storage, weights: bytes, digits) -> int:
    """A version as training registers it: its weights and the dataset whose held-out split judges it."""
    from kit import imagepack

    dataset = storage.create_dataset(imagepack.pack(*digits), name="mnist-5k", meta={"validation": {"fraction": 0.1, "seed": 0}})
    blob = storage.put_blob(weights)
    version = storage.create_model_version({"architecture": "cnn", "hyperparameters": HP, "weights_sha256": blob["sha256"],
                                            "dataset_ids": [dataset["id"]]})
    return version["id"]


def production_loaded(version_id: int) -> serving.LoadedModel:
    """The production version once its int8 preparation (a background thread) has ended."""
    loaded = serving.model_cache().production()
    assert loaded.version_id == version_id
    preparing = loaded.prepare_int8()
    if preparing is not None:
        preparing.join(60)
    return loaded


def test_requests_are_answered_in_float32_while_the_int8_network_is_prepared(served, storage, digits, well_trained_weights,
                                                                               monkeypatch):
    import threading

    version = register_with_data(storage, well_trained_weights, digits)
    storage.set_alias("production", model_version_id=version, actor="t", reason="")
    release, real, check = threading.Event(), serving.quantised, serving.checked_int8
    monkeypatch.setattr(serving, "checked_int8", lambda *a, **k: (release.wait(30), check(*a, **k))[1])
    answer = served("/predict", {"pixels": digits[0][0].tolist()})
    assert answer.status == 200, "a request does not wait for quantisation"
    loaded = serving.model_cache().production()
    assert loaded.serving.precision == "float32"
    release.set()
    loaded.prepare_int8().join(60)
    assert loaded.serving.precision == "int8" and real is serving.quantised


def test_a_version_serves_in_int8_and_keeps_its_accuracy_on_the_official_test_set(served, storage, digits, well_trained_weights):
    version = register_with_data(storage, well_trained_weights, digits)
    storage.set_alias("production", model_version_id=version, actor="t", reason="")
    loaded = production_loaded(version)
    assert loaded.serving.precision == "int8"
    check = loaded.serving.check
    assert check["held_out"] == 500 and check["int8_accuracy"] >= check["float32_accuracy"] - 0.002
    images, labels = official_test_set()
    int8 = (loaded.serving.probabilities(images).argmax(1) == labels).mean()
    float32 = (loaded.float32.probabilities(images).argmax(1) == labels).mean()
    assert float32 > 0.9 and int8 >= float32 - 0.003  # within 0.3 points on 10,000 digits it never saw
    assert (loaded.serving.probabilities(images).argmax(1) == loaded.float32.probabilities(images).argmax(1)).mean() > 0.98
    body = served("/predict", {"pixels": images[0].tolist()}).json()
    seen = np.frombuffer(base64.b64decode(body["image"]), np.uint8).reshape(1, 28, 28)
    assert body["probabilities"] == pytest.approx(loaded.serving.probabilities(seen)[0].round(6).tolist(), abs=1e-6)
    assert body["probabilities"] != pytest.approx(loaded.float32.probabilities(seen)[0].round(6).tolist(), abs=1e-6)
    from kit.metrics import PREDICTIONS  # counted by the arithmetic that served

    assert PREDICTIONS.labels(f"v{version}", str(body["digit"]), "int8")._value.get() == 1


def test_a_version_whose_int8_network_loses_accuracy_serves_in_float32(storage, digits, well_trained_weights, monkeypatch):
    from ml_svc import serving

    version = register_with_data(storage, well_trained_weights, digits)
    storage.set_alias("production", model_version_id=version, actor="t", reason="")
    real = serving.quantised
    monkeypatch.setattr(serving, "CALIBRATION_IMAGES", 1)  # calibrated on a single digit, its ranges are wrong
    monkeypatch.setattr(serving, "quantised", lambda model, calibration: real(model, np.zeros_like(calibration)))
    loaded = production_loaded(version)
    assert loaded.serving.precision == "float32"
    assert loaded.serving.check["int8_accuracy"] < loaded.serving.check["float32_accuracy"] - 0.002
    assert "lost more held-out accuracy" in loaded.serving.check["reason"]


def test_float32_serves_when_asked_for_or_when_the_held_out_digits_are_unknown(storage, digits, trained_weights, settings):
    unknown_data = register(storage, trained_weights)  # registered without the dataset that judges it
    storage.set_alias("production", model_version_id=unknown_data, actor="t", reason="")
    assert production_loaded(unknown_data).serving.precision == "float32"
    settings.SERVING_PRECISION = "float32"
    asked = register_with_data(storage, trained_weights, digits)
    storage.set_alias("production", model_version_id=asked, actor="t", reason="")
    loaded = production_loaded(asked)
    assert loaded.serving.precision == "float32" and loaded.prepare_int8() is None, "nothing is quantised"


def test_a_serving_process_readies_the_production_model_as_it_starts(storage, digits, trained_weights):
    from ml_svc import wsgi

    wsgi._warm()  # nothing serves yet: no error, nothing loaded
    assert serving.model_cache()._production is None
    version = register_with_data(storage, trained_weights, digits)
    storage.set_alias("production", model_version_id=version, actor="t", reason="")
    wsgi._warm()
    loaded = serving.model_cache()._production
    preparing = loaded.prepare_int8()
    assert loaded.version_id == version and preparing is not None, "loaded, and its int8 check begun"
    preparing.join(60)  # not left running into the interpreter's exit


def test_many_images_are_run_through_the_network_a_chunk_at_a_time_in_their_order():
    """A whole held-out set (versions compared, an int8 network checked) is not one ONNX Runtime call: that held
    2.9 GB of activations for 6,000 images; the answers are the same and in order."""

    class Session:
        def __init__(self):
            self.calls = []

        def run(self, outputs, feeds):
            images = feeds["images"]
            self.calls.append(len(images))
            logits = images[:, 0, :10, :].mean(2)  # each image's own: the mean of its first ten rows
            return [logits]

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2 * serving.SESSION_CHUNK + 5, 28, 28), dtype=np.uint8)
    chunked = Session()
    probabilities = serving.session_probabilities(chunked, images)
    assert chunked.calls == [serving.SESSION_CHUNK, serving.SESSION_CHUNK, 5]
    one_by_one = np.concatenate([serving.session_probabilities(Session(), images[i:i + 1]) for i in range(len(images))])
    assert np.allclose(probabilities, one_by_one), "each image's answer, in its place"
