import zlib

import numpy as np
import pytest

from kit import imagepack
from kit.errors import AppError, PeerUnavailable
from ml_svc import jobs, nearest
from ml_svc.jobs import collect_body, run_scenario, train_body


def test_collect_stores_the_source_as_one_dataset(storage, collector):
    run = storage.create_run(kind="collect", params={"source": "mnist-5k", "batch_size": 1500}, created_by="eve")
    result = run_scenario(run["id"], collect_body)
    assert result["num_samples"] == 5000
    finished = storage.get_run(run["id"])
    assert finished["status"] == "succeeded" and finished["result"]["dataset_id"] == result["dataset_id"]


def test_collect_records_a_stratified_validation_split_and_training_uses_it(storage, collector):
    run = storage.create_run(kind="collect", params={"source": "mnist-5k", "batch_size": 5000, "validation_fraction": 0.2,
                                                    "split_seed": 3}, created_by="eve")
    dataset_id = run_scenario(run["id"], collect_body)["dataset_id"]
    meta = storage.get_dataset(dataset_id)["meta"]
    assert meta["validation"] == {"fraction": 0.2, "seed": 3, "train": 4000, "validation": 1000}
    assert meta["lineage"] == {"source": "mnist-5k", "split": "train", "source_sha256": "f" * 64, "first": 5000, "of": 5000}
    train = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                    "hyperparameters": {"epochs": 1, "width": 8}}, created_by="eve")
    version = storage.versions[run_scenario(train["id"], train_body)["model_version_id"]]
    assert version["metrics"]["split"] == {"dataset_id": dataset_id, "train": 4000, "validation": 1000, "fraction": 0.2, "seed": 3}
    assert version["metrics"]["evaluated_on"] == 1000


def test_collect_honours_max_samples(storage, collector):
    run = storage.create_run(kind="collect", params={"source": "mnist-5k", "batch_size": 300, "max_samples": 1000}, created_by="eve")
    assert run_scenario(run["id"], collect_body)["num_samples"] == 1000


def collected(storage, collector, max_samples: int | None = None) -> int:
    params = {"source": "mnist-5k", "batch_size": 5000, **({"max_samples": max_samples} if max_samples else {})}
    run = storage.create_run(kind="collect", params=params, created_by="eve")
    return run_scenario(run["id"], collect_body)["dataset_id"]


def test_training_registers_an_evaluated_version_and_reports_epochs(storage, collector):
    dataset_id = collected(storage, collector)
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 2, "width": 8}}, created_by="eve")
    result = run_scenario(run["id"], train_body)
    version = storage.versions[result["model_version_id"]]
    assert version["metrics"]["accuracy"] == result["accuracy"] > 0.5
    assert version["metrics"]["split"] == {"dataset_id": dataset_id, "train": 4500, "validation": 500, "fraction": 0.1, "seed": 0}
    assert len(version["metrics"]["confusion_matrix"]) == 10
    assert "comparison" not in version["metrics"], "nothing serves yet, so there is nothing to compare with"
    finished = storage.get_run(run["id"])
    assert finished["status"] == "succeeded" and [e["epoch"] for e in finished["epochs"]] == [1, 2]


def test_a_failed_registration_fails_the_run_and_leaves_no_orphan_weights(storage, collector, monkeypatch):
    dataset_id = collected(storage, collector)
    blobs_before = set(storage.blobs)

    def refuse(payload):
        raise AppError("not_found", "dataset vanished", status=404)

    monkeypatch.setattr(storage, "create_model_version", refuse)
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 1, "width": 8}}, created_by="eve")
    assert run_scenario(run["id"], train_body) is None
    assert storage.get_run(run["id"])["status"] == "failed"
    assert "dataset vanished" in storage.get_run(run["id"])["error"]
    assert set(storage.blobs) == blobs_before


def test_a_cancelled_run_stops_without_registering_a_version(storage, collector, monkeypatch):
    dataset_id = collected(storage, collector)
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 30, "width": 8}}, created_by="eve")
    original = jobs.RunReporter.progress

    def cancel_after_first(self, fraction, message, epoch=None):
        if epoch is not None:
            storage.runs[self.run_id]["status"] = "cancelled"
        original(self, fraction, message, epoch)

    monkeypatch.setattr(jobs.RunReporter, "progress", cancel_after_first)
    assert run_scenario(run["id"], train_body) is None
    assert storage.get_run(run["id"])["status"] == "cancelled"
    assert storage.versions == {}


def test_the_train_endpoint_validates_before_queueing(api, storage, collector):
    dataset_id = collected(storage, collector)
    bad = api.post("/jobs/train", {"dataset_id": dataset_id, "architecture": "cnn", "hyperparameters": {"epochs": 0},
                                   "created_by": "eve"}, content_type="application/json")
    assert bad.status_code == 400 and "epochs" in bad.json()["error"]["details"]
    missing = api.post("/jobs/train", {"dataset_id": 999, "architecture": "cnn", "created_by": "eve"}, content_type="application/json")
    assert missing.status_code == 404
    unknown = api.post("/jobs/collect", {"source": "nope", "created_by": "eve"}, content_type="application/json")
    assert unknown.status_code == 404
    assert [r["kind"] for r in storage.runs.values()] == ["collect"]


@pytest.mark.django_db
def test_the_train_endpoint_queues_a_job_and_answers_202(api, storage, collector):
    dataset_id = collected(storage, collector)
    response = api.post("/jobs/train", {"dataset_id": dataset_id, "architecture": "cnn", "created_by": "eve",
                                        "hyperparameters": {"epochs": 3.0}}, content_type="application/json")
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "queued"
    assert run["params"]["hyperparameters"] == {"epochs": 3}, "what was asked for, checked; the worker fills in the rest"
    from django_tasks_db.models import DBTaskResult

    queued = DBTaskResult.objects.get()
    assert queued.task_path == "ml_svc.jobs.train_model" and queued.args_kwargs["args"] == [run["id"]]


def trained_production(storage, collector) -> int:
    dataset_id = collected(storage, collector)
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 2, "width": 8}}, created_by="eve")
    version_id = run_scenario(run["id"], train_body)["model_version_id"]
    storage.set_alias("production", model_version_id=version_id, actor="admin", reason="first")
    return version_id


def test_fine_tuning_learns_user_samples_compares_with_production_and_becomes_candidate(storage, collector, digits, settings):
    settings.ALIAS_REFRESH_S = 0.0
    base_id = trained_production(storage, collector)
    images, labels = digits
    # Users keep correcting inverted-looking sevens: a style the base data never showed.
    user_images = np.ascontiguousarray(images[3500:3540, ::-1, :])
    held_out = jobs.dataset_split(storage, storage.versions[base_id]["metrics"]["split"]["dataset_id"]).val_images[:3]
    # ... and three of the base's held-out digits, sent to review from the error browser
    storage.accepted = (np.concatenate([user_images, held_out]), np.full(43, 7, np.uint8))
    run = storage.create_run(kind="fine-tune", params={"base_model_id": base_id, "hyperparameters": {"epochs": 3}}, created_by="eve")
    result = run_scenario(run["id"], jobs.fine_tune_body)
    assert result is not None, storage.get_run(run["id"])["error"]
    version = storage.versions[result["model_version_id"]]
    assert version["base_version"] == base_id
    comparison = version["metrics"]["comparison"]
    assert comparison["against"]["id"] == base_id and comparison["evaluated_on"] == 500
    assert set(comparison["per_class"]) == {str(d) for d in range(10)}
    assert len(comparison["fixed"]) == min(comparison["fixed_count"], 24) and comparison["fixed_count"] > 0
    assert all("image" in s for s in comparison["fixed"] + comparison["broken"])
    user = version["metrics"]["user_samples"]
    assert user["count"] == 40 and user["accuracy_after"] > user["accuracy_before"]
    assert user["held_out_left_out"] == 3, "digits that judge the fine-tune never train it"
    index = nearest.load_arrays(zlib.decompress(storage.blobs[version["nearest_index_sha256"]]))["images"]
    drawn = {image.tobytes() for image in user_images}
    assert len(index) == 2000 and not any(row.tobytes() in drawn for row in index), "no user's drawing is shown to others"
    assert storage.aliases["candidate"] == version["id"] and storage.aliases["production"] == base_id
    assert ("candidate", version["id"], "eve") == storage.ledger[-1][:3]


def test_fine_tuning_without_accepted_samples_fails_clearly(storage, collector, settings):
    settings.ALIAS_REFRESH_S = 0.0
    base_id = trained_production(storage, collector)
    run = storage.create_run(kind="fine-tune", params={"base_model_id": base_id}, created_by="eve")
    assert run_scenario(run["id"], jobs.fine_tune_body) is None
    assert "no accepted user samples" in storage.get_run(run["id"])["error"]


def test_the_fine_tune_endpoint_refuses_when_nothing_was_accepted(api, storage, collector, settings):
    settings.ALIAS_REFRESH_S = 0.0
    base_id = trained_production(storage, collector)
    response = api.post("/jobs/fine-tune", {"base_model_id": base_id, "created_by": "eve"}, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_user_samples"
    bad = api.post("/jobs/fine-tune", {"base_model_id": base_id, "hyperparameters": {"epochs": 0}, "created_by": "eve"},
                   content_type="application/json")
    assert bad.status_code == 400 and "epochs" in bad.json()["error"]["details"]


def test_two_versions_are_compared_on_the_same_held_out_digits(api, storage, collector, settings):
    settings.ALIAS_REFRESH_S = 0.0
    first = trained_production(storage, collector)
    second = trained_production(storage, collector)
    body = api.get(f"/compare?baseline={first}&candidate={second}").json()
    assert body["baseline"]["id"] == first and body["candidate"]["id"] == second and body["evaluated_on"] == 500
    assert len(body["confusion_matrix_delta"]) == 10
    assert api.get("/compare?baseline=x").status_code == 400


def trained_on(storage, dataset_id: int) -> dict:
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 1, "width": 8}}, created_by="eve")
    return storage.versions[run_scenario(run["id"], train_body)["model_version_id"]]


def test_a_version_trained_on_productions_data_stores_the_comparison_compare_would_answer(api, storage, collector, settings):
    settings.ALIAS_REFRESH_S = 0.0
    production_id = trained_production(storage, collector)
    production = storage.versions[production_id]
    version = trained_on(storage, production["metrics"]["split"]["dataset_id"])
    stored = version["metrics"]["comparison"]
    assert stored["against"] == {"id": production_id, "version": f"v{production_id}"}
    assert stored["accuracy"]["baseline"] == production["metrics"]["accuracy"]
    assert stored["accuracy"]["candidate"] == version["metrics"]["accuracy"]
    answered = api.get(f"/compare?baseline={production_id}&candidate={version['id']}").json()
    for key in ("evaluated_on", "accuracy", "per_class", "confusion_matrix_delta", "fixed_count", "broken_count"):
        assert answered[key] == stored[key], key


def test_a_version_judged_on_other_data_than_production_stores_no_comparison(storage, collector, settings):
    settings.ALIAS_REFRESH_S = 0.0
    trained_production(storage, collector)
    other_dataset = collected(storage, collector)
    assert "comparison" not in trained_on(storage, other_dataset)["metrics"]


def test_a_comparison_is_computed_once_per_pair(api, storage, collector, settings, monkeypatch):
    settings.ALIAS_REFRESH_S = 0.0
    first = trained_production(storage, collector)
    second = trained_production(storage, collector)
    answered = api.get(f"/compare?baseline={first}&candidate={second}").json()
    monkeypatch.setattr(storage, "dataset_arrays", lambda dataset_id: pytest.fail("the held-out digits were read again"))
    assert api.get(f"/compare?baseline={first}&candidate={second}").json() == answered


@pytest.mark.django_db
def test_a_training_that_names_no_architecture_trains_the_configured_default(api, storage, collector, settings):
    dataset_id = collected(storage, collector)
    assert api.get("/architectures").json()["default"] == settings.DEFAULT_ARCHITECTURE == "cnn-dense"
    response = api.post("/jobs/train", {"dataset_id": dataset_id, "created_by": "eve"}, content_type="application/json")
    assert response.status_code == 202, response.json()
    params = response.json()["params"]
    assert params["architecture"] == "cnn-dense" and params["hyperparameters"] == {}


def a_collect_of_1000(storage, batch_size: int) -> dict:
    return storage.create_run(kind="collect", params={"source": "mnist-5k", "batch_size": batch_size, "max_samples": 1000},
                              created_by="eve")


class Flaky:
    """Makes a FakeStorage call fail as if storage were down, for the first `times` calls."""

    def __init__(self, storage, name: str, times: int):
        self.original, self.times, self.calls = getattr(storage, name), times, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.times:
            raise PeerUnavailable("storage_svc", "connection refused or reset")
        return self.original(*args, **kwargs)


def test_a_run_starts_once_storage_is_back(storage, collector, monkeypatch, settings):
    settings.STORAGE_RETRY_WINDOW_S = 5
    run = a_collect_of_1000(storage, batch_size=1000)
    monkeypatch.setattr(storage, "get_run", Flaky(storage, "get_run", times=2))
    assert run_scenario(run["id"], collect_body)["num_samples"] == 1000
    assert storage.get_run(run["id"])["status"] == "succeeded"


def test_progress_storage_refuses_is_skipped_and_the_outcome_is_retried(storage, collector, monkeypatch, settings):
    settings.STORAGE_RETRY_WINDOW_S = 5
    dataset_id = collected(storage, collector, max_samples=1000)
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 3, "width": 8}}, created_by="eve")
    original_update, refused = storage.update_run, []

    def update(run_id, **fields):
        # storage is away for every write that would carry two epochs, and for the first report of success
        if len(fields.get("epochs", [])) == 2 or (fields.get("status") == "succeeded" and not refused.count("outcome")):
            refused.append("outcome" if "status" in fields else "progress")
            raise PeerUnavailable("storage_svc", "connection refused or reset")
        return original_update(run_id, **fields)

    monkeypatch.setattr(storage, "update_run", update)
    monkeypatch.setattr(jobs, "PROGRESS_RETRY_S", 0.0)
    assert run_scenario(run["id"], train_body) is not None
    finished = storage.get_run(run["id"])
    assert finished["status"] == "succeeded" and "outcome" in refused and "progress" in refused
    assert [e["epoch"] for e in finished["epochs"]] == [1, 2, 3], "the next write carried the skipped epoch"


def test_a_registration_storage_never_takes_fails_the_run_naming_storage(storage, collector, monkeypatch, settings):
    settings.STORAGE_RETRY_WINDOW_S = 0.5
    dataset_id = collected(storage, collector, max_samples=1000)
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 1, "width": 8}}, created_by="eve")
    monkeypatch.setattr(storage, "create_model_version", Flaky(storage, "create_model_version", times=10**6))
    assert run_scenario(run["id"], train_body) is None
    finished = storage.get_run(run["id"])
    assert finished["status"] == "failed" and "storage_svc is unavailable" in finished["error"]


def test_a_job_whose_outcome_cannot_be_written_at_all_ends_without_raising(storage, collector, monkeypatch, settings):
    settings.STORAGE_RETRY_WINDOW_S = 0.5
    dataset_id = collected(storage, collector, max_samples=1000)
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 1, "width": 8}}, created_by="eve")
    original_update = storage.update_run

    def update(run_id, **fields):
        if fields.get("status") in ("succeeded", "failed"):
            raise PeerUnavailable("storage_svc", "connection refused or reset")
        return original_update(run_id, **fields)

    monkeypatch.setattr(storage, "update_run", update)
    assert run_scenario(run["id"], train_body) is None
    assert storage.get_run(run["id"])["status"] == "running", "storage's heartbeat expiry ends it, with its reason"


def test_a_training_waits_out_storage_while_it_looks_for_the_production_model(storage, collector, monkeypatch, settings):
    settings.ALIAS_REFRESH_S, settings.STORAGE_RETRY_WINDOW_S = 0.0, 5
    production_id = trained_production(storage, collector)
    flaky = Flaky(storage, "rollout", times=2)  # storage is away just as the training ends
    monkeypatch.setattr(storage, "rollout", flaky)
    version = trained_on(storage, storage.versions[production_id]["metrics"]["split"]["dataset_id"])
    assert flaky.calls == 3 and version["metrics"]["comparison"]["against"]["id"] == production_id


@pytest.mark.parametrize("trouble", ["an answer lost after the success was written", "storage without its database"])
def test_a_collect_gets_through_storage_trouble_it_can_wait_out(storage, collector, monkeypatch, settings, trouble):
    settings.STORAGE_RETRY_WINDOW_S = 5
    run = a_collect_of_1000(storage, batch_size=500)
    original_update, troubled = storage.update_run, []

    def update(run_id, **fields):
        if trouble == "storage without its database" and len(troubled) < 2:
            troubled.append(fields)
            raise AppError("database_unavailable", "The database is unavailable for a moment.", status=503)
        answer = original_update(run_id, **fields)
        if trouble.startswith("an answer lost") and fields.get("status") == "succeeded" and not troubled:
            troubled.append(fields)  # written, but the answer never came: the retry's 409 must find it recorded
            raise PeerUnavailable("storage_svc", "no answer within 5 s")
        return answer

    monkeypatch.setattr(storage, "update_run", update)
    assert run_scenario(run["id"], collect_body)["num_samples"] == 1000
    assert storage.get_run(run["id"])["status"] == "succeeded" and troubled


@pytest.mark.django_db
def test_collecting_user_samples_before_any_was_accepted_is_refused_at_once(api, storage, collector):
    response = api.post("/jobs/collect", {"source": "user", "created_by": "eve"}, content_type="application/json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "empty_source"
    assert "review queue" in response.json()["error"]["message"]
    assert storage.runs == {}, "no run was queued to fail later"


def test_a_version_is_evaluated_on_every_image_of_another_dataset_and_the_evaluation_is_recorded(
        api, storage, collector, digits):
    version_id = trained_production(storage, collector)
    images, labels = digits
    other = storage.create_dataset(imagepack.pack(images[:700], labels[:700]), name="mnist-test", source="mnist",
                                   split="test", created_by="eve")
    assert api.post("/jobs/evaluate", {"model_id": version_id, "dataset_id": 999, "created_by": "eve"},
                    content_type="application/json").status_code == 404, "a missing dataset is refused at once"
    run = storage.create_run(kind="evaluate", params={"model_id": version_id, "dataset_id": other["id"]}, created_by="eve")
    result = run_scenario(run["id"], jobs.evaluate_body)
    [evaluation] = storage.evaluations
    assert (evaluation["model_version"], evaluation["dataset"], evaluation["run"]) == (version_id, other["id"], run["id"])
    metrics = evaluation["metrics"]
    assert metrics["evaluated_on"] == 700 and len(metrics["confusion_matrix"]) == 10
    assert sum(map(sum, metrics["confusion_matrix"])) == 700 and metrics["accuracy"] > 0.5
    assert all(m["image"] for m in metrics["confident_mistakes"]), "each mistake shows its image"
    assert result == {"evaluation_id": evaluation["id"], "model_version_id": version_id, "dataset_id": other["id"],
                      "accuracy": metrics["accuracy"], "evaluated_on": 700}
    assert storage.get_run(run["id"])["status"] == "succeeded"


def test_a_run_tells_storage_it_is_alive_while_its_body_works_between_reports(storage, monkeypatch):
    import time

    monkeypatch.setattr(jobs, "HEARTBEAT_EVERY_S", 0.05)
    beats = []
    update = storage.update_run

    def counting(run_id, **fields):
        if fields.get("heartbeat"):
            beats.append(run_id)
        return update(run_id, **fields)

    monkeypatch.setattr(storage, "update_run", counting)
    run = storage.create_run(kind="evaluate", params={}, created_by="eve")

    def slow_body(reporter, run):
        time.sleep(0.5)  # a long comparison, say: no progress report meanwhile
        return {"done": True}

    assert run_scenario(run["id"], slow_body) == {"done": True}
    assert len(beats) >= 4 and set(beats) == {run["id"]}
    seen = len(beats)
    time.sleep(0.2)
    assert len(beats) == seen, "the heartbeat stops with the body"


def test_nearest_examples_never_come_from_users_drawings_nor_from_nothing(storage, collector, digits, settings):
    settings.ALIAS_REFRESH_S = 0.0
    images, labels = digits
    drawn = storage.create_dataset(imagepack.pack(images[:600], labels[:600]), name="user-accepted", source="user",
                                   meta={"validation": {"fraction": 0.1, "seed": 0}})
    run = storage.create_run(kind="train", params={"dataset_id": drawn["id"], "architecture": "cnn",
                                                  "hyperparameters": {"epochs": 1, "width": 8}}, created_by="eve")
    trained = storage.versions[run_scenario(run["id"], train_body)["model_version_id"]]
    assert trained["nearest_index_sha256"] is None, "users' drawings are never shown to other viewers"
    base_id = trained_production(storage, collector)
    storage.accepted = (images[3500:3510].copy(), labels[3500:3510].copy())
    run = storage.create_run(kind="fine-tune", params={"base_model_id": base_id, "hyperparameters": {
        "epochs": 1, "replay_size": 0}}, created_by="eve")
    result = run_scenario(run["id"], jobs.fine_tune_body)
    assert result is not None, storage.get_run(run["id"])["error"]
    assert storage.versions[result["model_version_id"]]["nearest_index_sha256"] is None, "nothing replayed: no index"
