import base64

import pytest

pytestmark = pytest.mark.django_db


def promote(api, name, version_id, actor="root", reason=""):
    return api.post(f"/aliases/{name}", {"model_version_id": version_id, "actor": actor, "reason": reason}, content_type="application/json")


def second_version(api, model_version):
    blob = api.put("/blobs", data=b"other-weights", content_type="application/octet-stream").json()
    return api.post("/models", {"architecture": "cnn", "weights_sha256": blob["sha256"], "created_by": "bob",
                                "base_version_id": model_version["id"]}, content_type="application/json").json()


def test_an_alias_moves_and_every_move_is_in_the_ledger(api, model_version):
    newer = second_version(api, model_version)
    assert promote(api, "production", model_version["id"], reason="first").status_code == 200
    moved = promote(api, "production", newer["id"], actor="admin", reason="better").json()
    assert moved["model_version"]["id"] == newer["id"]
    rollback = promote(api, "production", model_version["id"], actor="admin", reason="rollback").json()
    assert rollback["model_version"]["id"] == model_version["id"]
    ledger = api.get("/aliases/ledger").json()["results"]
    assert [(e["from_version"], e["to_version"], e["reason"]) for e in ledger] == [
        (newer["id"], model_version["id"], "rollback"),
        (model_version["id"], newer["id"], "better"),
        (None, model_version["id"], "first"),
    ]
    assert api.get(f"/models/{model_version['id']}").json()["aliases"] == ["production"]


def test_promoting_a_missing_version_is_a_404_and_changes_nothing(api, model_version):
    promote(api, "production", model_version["id"])
    assert promote(api, "production", 999999).status_code == 404
    assert api.get("/aliases/production").json()["model_version"]["id"] == model_version["id"]
    assert promote(api, "staging", model_version["id"]).status_code == 400


def test_an_alias_that_points_nowhere_is_a_404(api):
    assert api.get("/aliases/production").status_code == 404


def test_a_model_version_needs_stored_weights(api, dataset):
    response = api.post("/models", {"architecture": "cnn", "weights_sha256": "a" * 64, "created_by": "x"}, content_type="application/json")
    assert response.status_code == 404


def test_a_worker_repeating_a_registration_gets_the_version_it_already_made(api, dataset):
    run = api.post("/runs", {"kind": "train", "params": {}, "created_by": "eve"}, content_type="application/json").json()
    blob = api.put("/blobs", data=b"trained-weights", content_type="application/octet-stream").json()
    payload = {"architecture": "cnn", "dataset_ids": [dataset["id"]], "weights_sha256": blob["sha256"],
               "metrics": {"accuracy": 0.9}, "created_by": "eve", "run_id": run["id"]}
    first = api.post("/models", payload, content_type="application/json").json()
    again = api.post("/models", payload, content_type="application/json").json()
    assert again["id"] == first["id"]
    assert api.get("/models").json()["count"] == 1


def test_predictions_are_recorded_and_listed_per_user(api, record_prediction, model_version):
    image = base64.b64encode(bytes(range(256)) * 3 + bytes(16)).decode()
    for user in ("ann", "ann", "ben"):
        record_prediction(image_b64=image, digit=3, probabilities=[0.1] * 10, model_version_id=model_version["id"],
                          latency_ms=1.5, user=user)
    assert api.get("/predictions?user=ann").json()["count"] == 2
    listed = api.get("/predictions?user=ben").json()["results"][0]
    assert listed["image"] == image and listed["model"] == {"id": model_version["id"], "version": f"v{model_version['id']}"}


def test_a_prediction_with_a_wrong_sized_image_is_refused(api, model_version):
    row = {"image_b64": base64.b64encode(b"short").decode(), "digit": 3, "probabilities": [0.1] * 10,
           "model_version_id": model_version["id"], "latency_ms": 1, "user": "ann"}
    response = api.post("/predictions/bulk", {"predictions": [row]}, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["details"] == {"image": "wrong size"}
    assert api.get("/predictions").json()["count"] == 0


def history_row(model_version, n: int, **extra) -> dict:
    return {"image_b64": base64.b64encode(bytes([n]) * 784).decode(), "digit": n % 10,
            "probabilities": [0.0] * (n % 10) + [1.0] + [0.0] * (9 - n % 10), "model_version_id": model_version["id"],
            "latency_ms": 2.0, "user": "ann", **extra}


def bulk(api, rows):
    return api.post("/predictions/bulk", {"predictions": rows}, content_type="application/json")


def test_a_bulk_records_every_row_in_order_with_what_it_answered(api, model_version):
    rows = [history_row(model_version, n) for n in range(5)]
    answer = bulk(api, rows)
    assert answer.status_code == 201
    ids = answer.json()["ids"]
    assert len(set(ids)) == 5 and len(answer.json()["created_at"]) == 5
    for n, prediction_id in enumerate(ids):
        stored = api.get(f"/predictions/{prediction_id}").json()
        assert (stored["digit"], stored["confidence"], stored["image"]) == (n, 1.0, rows[n]["image_b64"])
        assert stored["probabilities"] == rows[n]["probabilities"] and stored["user"] == "ann"


def test_a_retried_bulk_is_recorded_once_and_answers_the_same_ids(api, model_version):
    rows = [history_row(model_version, n, request_key=f"key-{n}") for n in range(3)]
    first = bulk(api, rows[:2]).json()
    again = bulk(api, rows).json()  # the first two were recorded by a try whose answer was lost
    assert again["ids"][:2] == first["ids"] and again["created_at"][:2] == first["created_at"]
    assert again["ids"][2] not in first["ids"]
    assert api.get("/predictions").json()["count"] == 3


@pytest.mark.parametrize("keys", [["a", None], ["a", "a"]], ids=["some rows without a key", "a key twice"])
def test_request_keys_must_be_given_for_every_row_once(api, model_version, keys):
    rows = [history_row(model_version, n, **({"request_key": key} if key else {})) for n, key in enumerate(keys)]
    answer = bulk(api, rows)
    assert answer.status_code == 400 and "request_key" in answer.json()["error"]["message"]
    assert api.get("/predictions").json()["count"] == 0


def test_a_bulk_naming_a_missing_model_version_is_a_404_and_records_nothing(api, model_version):
    rows = [history_row(model_version, 1), {**history_row(model_version, 2), "model_version_id": 987654}]
    answer = bulk(api, rows)
    assert answer.status_code == 404 and "987654" in answer.json()["error"]["message"]
    assert api.get("/predictions").json()["count"] == 0


def test_calls_without_the_service_token_are_refused(client):
    assert client.get("/runs").status_code == 401
    assert client.get("/runs", HTTP_X_SERVICE_TOKEN="wrong").status_code == 401
    assert client.get("/health").status_code == 200


def test_ready_reports_the_database(client):
    body = client.get("/ready").json()
    assert body["status"] == "ok" and body["checks"]["database"] == "ok"


@pytest.mark.parametrize("day", ["2026-02-30", "٢٠٢٦-١١-٢٣", "yesterday", "2026-1-1", "2026-W47-1", "20261123"])
def test_a_history_date_that_is_no_day_is_a_400(api, day):
    answer = api.get("/predictions", {"since": day})
    assert answer.status_code == 400 and answer.json()["error"]["details"] == {"since": "not a date"}


def test_an_evaluation_is_recorded_for_an_existing_version_and_dataset_only(api, model_version, dataset):
    path = f"/models/{model_version['id']}/evaluations"
    body = {"dataset_id": dataset["id"], "metrics": {"accuracy": 0.97, "evaluated_on": 20}, "created_by": "ann"}
    missing = api.post(path, {**body, "dataset_id": 999}, content_type="application/json")
    assert missing.status_code == 404 and api.get(path).json()["count"] == 0, "a refusal records nothing"
    assert api.post("/models/999/evaluations", body, content_type="application/json").status_code == 404
    first = api.post(path, body, content_type="application/json").json()
    second = api.post(path, {**body, "metrics": {"accuracy": 0.98}}, content_type="application/json").json()
    assert [e["id"] for e in api.get(path).json()["results"]] == [second["id"], first["id"]], "newest first"
    assert api.post(path, {**body, "metrics": "high"}, content_type="application/json").status_code == 400


def test_a_repeated_evaluation_write_of_one_run_is_recorded_once(api, model_version, dataset):
    run = api.post("/runs", {"kind": "evaluate", "created_by": "ann"}, content_type="application/json").json()
    path = f"/models/{model_version['id']}/evaluations"
    body = {"dataset_id": dataset["id"], "run_id": run["id"], "metrics": {"accuracy": 0.97}, "created_by": "ann"}
    first = api.post(path, body, content_type="application/json").json()
    again = api.post(path, body, content_type="application/json").json()
    assert again["id"] == first["id"] and api.get(path).json()["count"] == 1
