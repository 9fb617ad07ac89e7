"""The served prediction path: ONNX Runtime gives torch's answers, and POST /predict outside Django
keeps the platform's token check, error shape and request ids."""

import base64

import numpy as np
import pytest
import torch

from kit.wsgitest import call
from ml_svc import serving
from ml_svc.architectures import ARCHITECTURES, validate_hyperparameters
from ml_svc.evaluation import predict_proba
from ml_svc.wsgi import application
from tests.support import register

TOKEN = {"X-Service-Token": "the-service-token-of-these-tests"}


@pytest.fixture(autouse=True)
def known_token(settings):
    settings.SERVICE_TOKEN = TOKEN["X-Service-Token"]


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_onnx_runtime_answers_what_torch_answers_for_every_architecture(name, digits):
    architecture = ARCHITECTURES[name]
    torch.manual_seed(0)
    module = architecture.build(validate_hyperparameters(architecture, {}))
    loaded = serving.LoadedModel(version={"id": 1}, module=module)
    images = digits[0][:37]
    with torch.inference_mode():
        expected = predict_proba(module, images)
    np.testing.assert_allclose(loaded.serving.probabilities(images), expected, atol=1e-5)


def test_the_hot_predict_keeps_the_request_id_and_answers_what_the_model_computes(storage, digits, trained_weights):  # noqa: F811
    version = register(storage, trained_weights)
    storage.set_alias("production", model_version_id=version, actor="t", reason="")
    body = {"pixels": digits[0][4321].tolist()}
    hot = call(application, "POST", "/predict", body, headers={**TOKEN, "X-Request-ID": "abc123"})
    assert hot.status == 200 and hot.headers["X-Request-ID"] == "abc123"
    answer = hot.json()
    seen = np.frombuffer(base64.b64decode(answer["image"]), np.uint8).reshape(1, 28, 28)
    expected = serving.model_cache().production().serving.probabilities(seen)[0]
    assert answer["model"] == {"id": version, "version": f"v{version}"} and answer["digit"] == int(expected.argmax())
    np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-5)


def test_predictions_have_no_route_but_the_hot_one(api):
    """One prediction path: Django has no /predict view that tests could exercise instead of the served one."""
    assert set(application.routes) == {("POST", "/predict"), ("POST", "/predict/batch")}, "the hot routes, pinned"
    assert api.post("/predict", {}, content_type="application/json").status_code == 404
    assert api.post("/predict/batch", {}, content_type="application/json").status_code == 404


@pytest.mark.parametrize(("body", "headers", "content_type", "status", "code"), [
    ({"pixels": [[0] * 28] * 28}, {}, "application/json", 401, "unauthorized"),
    ({"pixels": [[0] * 28] * 28}, {"X-Service-Token": "wrong"}, "application/json", 401, "unauthorized"),
    (b"{not json", TOKEN, "application/json", 400, "parse_error"),
    (b"pixels=1", TOKEN, "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ({"pixels": [[0] * 28] * 28}, TOKEN, "application/json", 422, "blank_image"),
    ({"pixels": [[0] * 27] * 28}, TOKEN, "application/json", 400, "invalid_pixels"),
    ({"pixels": [[0] * 28] * 28, "image_base64": "AAAA"}, TOKEN, "application/json", 400, "invalid"),
    ([1, 2, 3], TOKEN, "application/json", 400, "invalid"),
])
def test_the_hot_predict_refuses_bad_requests_with_the_platforms_json_errors(body, headers, content_type, status, code):
    answer = call(application, "POST", "/predict", body, headers=headers, content_type=content_type)
    assert answer.status == status and answer.json()["error"]["code"] == code
    assert answer.headers["Content-Type"] == "application/json" and answer.headers["X-Request-ID"]


def test_a_body_over_the_cap_is_refused_before_it_is_read(settings):
    answer = call(application, "POST", "/predict", b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1), headers=TOKEN)
    assert answer.status == 413 and answer.json()["error"]["code"] == "too_large"


def test_a_batch_reports_each_bad_image_in_place_with_its_status(api, storage, digits, trained_weights):  # noqa: F811
    storage.set_alias("production", model_version_id=register(storage, trained_weights), actor="t", reason="")
    images = [{"pixels": digits[0][1].tolist()}, {"pixels": [[0] * 28] * 28}, {"pixels": "nope"}]
    answer = call(application, "POST", "/predict/batch", {"images": images}, headers=TOKEN)
    results = answer.json()["results"]
    assert answer.status == 200 and "digit" in results[0]
    assert results[1]["error"]["status"] == 422 and results[2]["error"]["status"] == 400


def test_other_paths_still_go_through_django(db):
    assert call(application, "GET", "/health").status == 200
    assert call(application, "GET", "/architectures").status == 401


@pytest.mark.django_db  # the Django route runs the request signals, which look at the database connection
@pytest.mark.parametrize("incoming, kept", [("abc-123_4.5:6", True), ("a b", False), ("<script>", False),
                                            ("é" * 3, False), ("x" * 65, False), ("", False)])
@pytest.mark.parametrize("method, path", [("POST", "/predict"), ("GET", "/health")])
def test_a_request_id_is_echoed_only_when_it_is_a_plain_token(method, path, incoming, kept):
    answer = call(application, method, path, {"pixels": "blank"} if method == "POST" else None,
                  headers={**TOKEN, "X-Request-ID": incoming})
    echoed = answer.headers["X-Request-ID"]
    assert (echoed == incoming) if kept else (len(echoed) == 32 and echoed != incoming)
