"""Explanations: integrated gradients hold to their axiom, point at the pixels the answer rests on (a deletion test on
official test digits), and are served on demand with an overlay, remembered per version and image."""

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from ml_svc import explain, jobs, serving
from ml_svc.preprocessing import to_model_input
from tests.test_serving import official_test_set, register_with_data, well_trained_weights  # noqa: F401 -- a fixture

FAITHFULNESS_DIGITS, DELETED = 200, 78  # 10 % of 784 pixels


@pytest.fixture
def version(storage, digits, well_trained_weights):  # noqa: F811
    return register_with_data(storage, well_trained_weights, digits)


def probabilities(module, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(module(to_model_input(images)), dim=1).numpy()


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


def test_a_registered_version_finds_a_training_digit_itself_among_its_nearest_examples(storage, collector, monkeypatch):
    from ml_svc import nearest
    from ml_svc.evaluation import dataset_split
    from tests.test_jobs import collected

    built, real = [], nearest.index_bytes
    monkeypatch.setattr(nearest, "index_bytes", lambda *a, **k: built.append(1) or real(*a, **k))
    dataset_id = collected(storage, collector)
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 2, "width": 8}}, created_by="eve")
    version_id = jobs.run_scenario(run["id"], jobs.train_body)["model_version_id"]
    version = storage.versions[version_id]
    assert built == [1] and version["nearest_index_sha256"] in storage.blobs, "built once, at registration, stored"
    train = dataset_split(storage, dataset_id)
    reads = []
    get_blob = storage.get_blob
    monkeypatch.setattr(storage, "get_blob", lambda sha: reads.append(sha) or get_blob(sha))
    hits = 0
    for n in (0, 17, 2000):
        image, label = train.train_images[n], int(train.train_labels[n])
        answer = explain.explain(image_b64=base64.b64encode(image.tobytes()).decode(), model_id=version_id)
        examples = answer["nearest"]
        assert len(examples) == 5 and [e["similarity"] for e in examples] == sorted(
            (e["similarity"] for e in examples), reverse=True)
        assert examples[0]["image"] == base64.b64encode(image.tobytes()).decode(), "the digit itself comes first"
        assert examples[0]["similarity"] == pytest.approx(1.0, abs=0.01) and examples[0]["label"] == label
        hits += sum(e["label"] == label for e in examples[1:])
    assert hits >= 8, "most of the other nearest examples are of its class too"
    assert reads.count(version["nearest_index_sha256"]) == 1, "the index is read once, not rebuilt per explanation"


def test_a_version_registered_before_indexes_answers_without_nearest_examples(version):
    image = base64.b64encode(official_test_set()[0][3].tobytes()).decode()
    assert explain.explain(image_b64=image, model_id=version)["nearest"] is None


def test_the_error_browser_opens_a_confusion_cell_of_the_held_out_digits_with_overlays(api, storage, collector):
    from ml_svc import errors
    from tests.test_jobs import collected

    dataset_id = collected(storage, collector)
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 1, "width": 8}}, created_by="eve")
    version_id = jobs.run_scenario(run["id"], jobs.train_body)["model_version_id"]
    whole = api.post(f"/models/{version_id}/errors", {}, content_type="application/json").json()
    matrix = np.array(whole["matrix"])
    assert whole["part"] == "held-out" and whole["count"] == matrix.sum() == 500 and whole["cell"] is None
    assert np.trace(matrix) / 500 == pytest.approx(storage.versions[version_id]["metrics"]["accuracy"], abs=1e-6)
    off = np.where(np.eye(10, dtype=bool), -1, matrix)
    true, predicted = map(int, np.unravel_index(off.argmax(), off.shape))
    cell = api.post(f"/models/{version_id}/errors", {"true": true, "predicted": predicted},
                    content_type="application/json").json()["cell"]
    assert cell["count"] == matrix[true, predicted] == len(cell["items"]) > 0
    assert [i["confidence"] for i in cell["items"]] == sorted((i["confidence"] for i in cell["items"]), reverse=True)
    split = jobs.dataset_split(storage, dataset_id)
    first = cell["items"][0]
    assert split.val_labels[first["index"]] == true
    assert first["image"] == base64.b64encode(split.val_images[first["index"]].tobytes()).decode()
    everything = errors.confusion_cell(version_id=version_id, dataset_id=dataset_id, part="all", true=None, predicted=None)
    assert everything["count"] == 5000
    answers = api.post("/overlays", {"model_id": version_id, "images": [i["image"] for i in cell["items"][:2]],
                                     "target": predicted}, content_type="application/json").json()["overlays"]
    assert [a["digit"] for a in answers] == [predicted] * len(answers)
    assert all(Image.open(io.BytesIO(base64.b64decode(a["overlay_png"]))).size == (224, 224) for a in answers)
    for bad in ({"true": 10}, {"part": "train"}, {"dataset_id": 0}):
        refused = api.post(f"/models/{version_id}/errors", bad, content_type="application/json")
        assert refused.status_code == 400 and list(bad) == list(refused.json()["error"]["details"]), refused.content
    too_many = api.post("/overlays", {"model_id": version_id, "images": ["x"] * 49}, content_type="application/json")
    assert too_many.status_code == 400


def test_an_explanation_stands_when_its_nearest_examples_cannot_be_read(storage, collector, monkeypatch):
    from tests.test_jobs import collected

    dataset_id = collected(storage, collector)
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 1, "width": 8}}, created_by="eve")
    version_id = jobs.run_scenario(run["id"], jobs.train_body)["model_version_id"]
    serving.model_cache().version(version_id)  # loaded while storage answered
    image = base64.b64encode(official_test_set()[0][5].tobytes()).decode()
    storage.down = True
    answer = explain.explain(image_b64=image, model_id=version_id)
    assert answer["nearest"] is None and answer["overlay_png"]
    storage.down = False
    assert len(explain.explain(image_b64=image, model_id=version_id)["nearest"]) == 5, "asked again, not remembered"
