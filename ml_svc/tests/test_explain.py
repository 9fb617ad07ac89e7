"""Explanations: integrated gradients hold to their axiom, point at the pixels the answer rests on (a deletion test on
official test digits), and are served on demand with an overlay, remembered per version and image."""

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from ml_svc import explain, serving
from tests.test_serving import official_test_set, register_with_data, well_trained_weights  # noqa: F401 -- a fixture

FAITHFULNESS_DIGITS, DELETED = 200, 78  # 10 % of 784 pixels


@pytest.fixture
def version(storage, digits, well_trained_weights):  # noqa: F811
    return register_with_data(storage, well_trained_weights, digits)


def probabilities(module, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(module(explain.normalised(images)), dim=1).numpy()


def test_the_attributions_add_up_to_what_they_explain(version):
    module = serving.model_cache().version(version).module
    images, _ = official_test_set()
    for image in images[:10]:
        target = int(probabilities(module, image[None])[0].argmax())
        attribution, explained = explain.integrated_gradients(module, image, target)
        assert attribution.shape == (28, 28)
        assert attribution.sum() == pytest.approx(explained, abs=0.03), "completeness: sum = f(x) - f(blank)"


def test_deleting_the_most_attributed_pixels_hurts_the_answer_far_more_than_deleting_random_ones(version):
    module = serving.model_cache().version(version).module
    images, _ = official_test_set()
    images = images[:FAITHFULNESS_DIGITS]
    before = probabilities(module, images)
    targets = before.argmax(1)
    rng = np.random.default_rng(0)
    top, random = images.copy(), [images.copy() for _ in range(5)]
    for n, (image, target) in enumerate(zip(images, targets, strict=True)):
        attribution, _ = explain.integrated_gradients(module, image, int(target))
        top[n].flat[np.argsort(attribution, axis=None)[-DELETED:]] = 0
        for copy in random:
            copy[n].flat[rng.choice(784, DELETED, replace=False)] = 0
    rows = np.arange(len(images))
    start = before[rows, targets]
    top_drop = float(np.mean(start - probabilities(module, top)[rows, targets]))
    random_drop = float(np.mean([np.mean(start - probabilities(module, copy)[rows, targets]) for copy in random]))
    print(f"\nfaithfulness, {FAITHFULNESS_DIGITS} official test digits, 10 % of pixels deleted: the answer's "
          f"probability falls by {top_drop:.3f} (most attributed) against {random_drop:.3f} (random, 5 draws)")
    assert top_drop > 0.3 and top_drop > 5 * random_drop + 0.05


def test_an_explanation_is_served_with_an_overlay_and_remembered(api, version, digits):
    image = base64.b64encode(official_test_set()[0][7].tobytes()).decode()
    answer = api.post("/explain", {"image": image, "model_id": version}, content_type="application/json")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["model"]["id"] == version and body["method"] == "integrated_gradients" and body["target"] == body["digit"]
    assert len(body["attribution"]) == 28 and all(len(row) == 28 for row in body["attribution"])
    overlay = Image.open(io.BytesIO(base64.b64decode(body["overlay_png"])))
    assert overlay.size == (224, 224) and overlay.mode == "RGB"
    assert explain.explain(image_b64=image, model_id=version) is explain.explain(image_b64=image, model_id=version)
    other = api.post("/explain", {"image": image, "model_id": version, "target": (body["digit"] + 1) % 10},
                     content_type="application/json").json()
    assert other["target"] != other["digit"] and other["completeness"]["explained"] < body["completeness"]["explained"]


@pytest.mark.parametrize("payload, status", [
    ({"image": base64.b64encode(bytes(783)).decode()}, 400),
    ({"image": "%%%"}, 400),
    ({"image": base64.b64encode(bytes(784)).decode(), "target": 10}, 400),
    ({"image": base64.b64encode(bytes(784)).decode(), "model_id": 999}, 404),
])
def test_a_bad_explanation_request_is_refused(api, version, payload, status):
    body = {"model_id": version, **payload}
    assert api.post("/explain", body, content_type="application/json").status_code == status
