"""The contract test: the real MLClient against ml_svc's real views (hot prediction routes included), in-process.

Every answer is checked against the client's declared return type (kit.contracts.ml); the gateway's fake ml_svc
answers those same types. ml_svc's own peers are the fakes of tests/fakes.py, themselves held to the storage and
collector contracts.
"""

import base64

import numpy as np
import onnxruntime
import pytest

from kit.clients import MLClient
from kit.wsgitest import ContractClient, database_kept
from ml_svc.jobs import collect_body, run_scenario, train_body
from ml_svc.wsgi import application
from tests.fakes import staged_upload
from tests.support import forget_studies


@pytest.fixture
def ml(settings, db, storage, collector):
    settings.ALIAS_REFRESH_S = 0.0
    with database_kept():
        yield ContractClient(MLClient, application, settings.SERVICE_TOKEN)


def a_version(storage, dataset_id: int) -> int:
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 1, "width": 8}}, created_by="eve")
    return run_scenario(run["id"], train_body)["model_version_id"]


def test_every_ml_client_call_meets_the_real_views(ml, storage, collector, digits):
    collect = storage.create_run(kind="collect", params={"source": "mnist-5k", "batch_size": 5000}, created_by="eve")
    dataset_id = run_scenario(collect["id"], collect_body)["dataset_id"]
    first, second = a_version(storage, dataset_id), a_version(storage, dataset_id)
    storage.set_alias("production", model_version_id=first, actor="admin", reason="first")

    offered = ml.architectures()
    assert offered["default"] in {a["name"] for a in offered["architectures"]}
    comparison = ml.compare(first, second)
    assert (comparison["baseline"]["id"], comparison["candidate"]["id"], comparison["evaluated_on"]) == (first, second, 500)

    images, labels = digits
    answer = ml.predict_batch({"images": [{"pixels": images[4100].tolist()}, {"pixels": [[0] * 28] * 28}]})
    assert answer["model"]["id"] == first and answer["results"][1]["error"]["code"] == "blank_image"
    canonical = ml.canonicalize({"pixels": images[4100].tolist()})
    assert canonical["image"] == answer["results"][0]["image"], "the same canonical image the model saw"
    why = ml.explain(image=canonical["image"], model_id=first)
    assert (why["digit"], why["target"]) == (answer["results"][0]["digit"],) * 2 and len(why["attribution"]) == 28
    assert len(why["nearest"]) == 5
    errors = ml.errors(first, true=labels[4100].item(), predicted=labels[4100].item())
    assert errors["count"] == 500 and sum(map(sum, errors["matrix"])) == 500 and errors["cell"]["items"]
    assert len(ml.overlays(model_id=first, images=[canonical["image"]] * 2)["overlays"]) == 2

    pinned = ml.predict_batch({"images": [{"pixels": images[4100].tolist()}], "model_id": first})["results"][0]
    session = onnxruntime.InferenceSession(ml.model_onnx(first), providers=["CPUExecutionProvider"])
    seen = np.frombuffer(base64.b64decode(pinned["image"]), np.uint8).reshape(1, 28, 28).astype(np.float32)
    taken_away = session.run(["probabilities"], {"pixels": seen})[0][0]
    assert taken_away == pytest.approx(pinned["probabilities"], abs=1e-5), "the file answers what the API does"

    assert ml.start_collect(source="mnist-5k", split="train", batch_size=1000, max_samples=None,
                            created_by="eve")["status"] == "queued"
    training = ml.start_training(dataset_id=dataset_id, architecture="cnn", hyperparameters={"epochs": 1},
                                 created_by="eve")
    assert (training["kind"], training["params"]["dataset_id"]) == ("train", dataset_id)
    evaluation = ml.start_evaluation(model_id=second, dataset_id=dataset_id, created_by="eve")
    assert (evaluation["kind"], evaluation["params"]) == ("evaluate", {"model_id": second, "dataset_id": dataset_id})
    storage.accepted = (images[:10].copy(), labels[:10].astype(np.uint8))
    fine_tune = ml.start_fine_tune(base_model_id=first, hyperparameters={}, created_by="eve")
    assert (fine_tune["kind"], fine_tune["params"]["base_model_id"]) == ("fine-tune", first)
    upload = staged_upload(collector, images[:4], None, purpose="score")
    scoring = ml.start_infer(upload=upload, model_id=None, created_by="eve")
    assert (scoring["kind"], scoring["params"]["model_id"], scoring["params"]["count"]) == ("infer", first, 4)
    forget_studies()
    sweep = ml.start_sweep(dataset_id=dataset_id, architecture="cnn", search_space={"width": {"low": 8, "high": 12}},
                           trials=2, max_parallel=1, time_budget_s=0, hyperparameters={"epochs": 1}, seed=0,
                           created_by="eve")
    assert (sweep["kind"], sweep["params"]["trials"]) == ("sweep", 2)
    assert ml.sweep(sweep["id"])["trials"] == []
    ml.ready()
    assert ml.not_called() == set(), "every call the client offers is checked here"
