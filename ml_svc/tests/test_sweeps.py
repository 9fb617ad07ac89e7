"""Sweeps in ml_svc: the search space checked against the declared bounds, and a whole sweep driven by hand as
workers would drive it (each trial a training of its own), with pruning, the parallel limit and the candidate."""

import pytest

from kit.errors import AppError
from ml_svc import services, sweeps
from ml_svc.jobs import collect_body, run_scenario, train_body
from tests.support import forget_studies

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_studies():
    forget_studies()


@pytest.fixture
def dataset_id(storage, collector):
    run = storage.create_run(kind="collect", params={"source": "mnist-5k", "batch_size": 1500, "max_samples": 1500},
                             created_by="eve")
    return run_scenario(run["id"], collect_body)["dataset_id"]


@pytest.mark.parametrize("space, field, words", [
    ({}, "search_space", "at least one"),
    ({"colour": {"low": 1, "high": 2}}, "search_space.colour", "no hyperparameter 'colour'"),
    ({"time_budget_s": {"low": 1, "high": 2}}, "search_space.time_budget_s", "no hyperparameter"),
    ({"width": {"low": 4, "high": 16}}, "search_space.width.low", "at least 8"),
    ({"width": {"low": 16, "high": 8}}, "search_space.width", "low must be below high"),
    ({"learning_rate": {"low": 0.01, "high": 2.0}}, "search_space.learning_rate.high", "at most 1.0"),
    ({"weight_decay": {"low": 0.0, "high": 0.01, "log": True}}, "search_space.weight_decay.low", "above 0"),
    ({"augment": {"low": 0, "high": 1}}, "search_space.augment", "choices"),
    ({"width": {"choices": [8, 1000]}}, "search_space.width.choices", "at most 128"),
    ({"width": {"choices": []}}, "search_space.width", "1 to 20"),
    ({"width": [8, 16]}, "search_space.width", "low"),
    ({"width": {"low": 8, "high": 16, "step": 2}}, "search_space.width", "low"),
])
def test_a_search_space_outside_the_declared_bounds_is_refused_naming_the_field(space, field, words):
    with pytest.raises(AppError) as refused:
        sweeps.distributions("cnn", space)
    assert refused.value.status == 400 and field in refused.value.details
    assert words in refused.value.message


def test_a_searched_value_cannot_be_fixed_too(storage, collector, dataset_id):
    with pytest.raises(AppError) as refused:
        services.start_sweep(dataset_id=dataset_id, architecture="cnn", search_space={"width": {"low": 8, "high": 16}},
                             trials=2, max_parallel=1, time_budget_s=0, hyperparameters={"width": 8}, seed=0,
                             created_by="eve")
    assert refused.value.details == {"hyperparameters.width": "also in search_space"}


def work_through(storage, sweep_id: int, *, parallel_seen: list[int]) -> None:
    """What workers do: advance the sweep, train every trial it has queued, until it ends."""
    while sweeps.advance(sweep_id):
        queued = [r for r in storage.runs.values() if r.get("parent_run") == sweep_id and r["status"] == "queued"]
        parallel_seen.append(len(queued))
        for trial in queued:
            run_scenario(trial["id"], train_body)


def test_a_sweep_runs_its_trials_prunes_the_weak_and_makes_the_best_candidate(storage, collector, dataset_id):
    run = services.start_sweep(dataset_id=dataset_id, architecture="cnn", trials=6, max_parallel=2, time_budget_s=0,
                               search_space={"learning_rate": {"choices": [0.00001, 0.02]},
                                             "width": {"low": 8, "high": 12}},
                               hyperparameters={"epochs": 2, "batch_size": 32, "augment": False}, seed=1, created_by="eve")
    assert run["kind"] == "sweep" and run["params"]["max_parallel"] == 2
    parallel_seen: list[int] = []
    work_through(storage, run["id"], parallel_seen=parallel_seen)
    assert max(parallel_seen) == 2, "never more than max_parallel trials in flight"
    sweep = storage.get_run(run["id"])
    assert sweep["status"] == "succeeded", sweep
    counts = sweep["result"]["trials"]
    assert counts["total"] == 6 and counts["complete"] + counts["pruned"] + counts["failed"] == 6
    trials = [r for r in storage.runs.values() if r.get("parent_run") == run["id"]]
    pruned = [t for t in trials if t["result"].get("pruned")]
    assert counts["pruned"] == len(pruned) >= 1
    assert any(t["params"]["hyperparameters"]["learning_rate"] == 0.00001 for t in pruned), "the bad range is pruned"
    best = sweep["result"]
    assert best["best_params"]["learning_rate"] == 0.02 and best["best_value"] > 0.8, "1,350 digits, 2 epochs"
    assert storage.aliases["candidate"] == best["model_version_id"]
    version = storage.versions[best["model_version_id"]]
    assert version["metrics"]["sweep"] == {"run": run["id"], "trial": best["best_trial"]}
    versions_of_trials = {t["result"].get("model_version_id") for t in trials} - {None}
    assert len(versions_of_trials) == counts["complete"], "every completed trial registered its version, no other"
    view = sweeps.sweep_view(run["id"])
    assert [t["number"] for t in view["trials"]] == list(range(6))
    assert {t["run"] for t in view["trials"]} == {t["id"] for t in trials}
    assert view["charts"]["history"]["data"] and view["charts"]["importances"]["data"]


def test_a_failed_trial_is_told_as_failed_and_the_sweep_goes_on(storage, collector, dataset_id):
    run = services.start_sweep(dataset_id=dataset_id, architecture="cnn", trials=2, max_parallel=1, time_budget_s=0,
                               search_space={"width": {"low": 8, "high": 12}}, hyperparameters={"epochs": 1},
                               seed=0, created_by="eve")
    sweeps.advance(run["id"])
    first = next(r for r in storage.runs.values() if r.get("parent_run") == run["id"])
    storage.update_run(first["id"], status="failed", error="no word from the ML worker for 20 s")
    work_through(storage, run["id"], parallel_seen=[])
    counts = storage.get_run(run["id"])["result"]["trials"]
    assert (counts["failed"], counts["complete"], counts["total"]) == (1, 1, 2)


def test_a_cancelled_sweep_starts_nothing_more(storage, collector, dataset_id):
    run = services.start_sweep(dataset_id=dataset_id, architecture="cnn", trials=4, max_parallel=2, time_budget_s=0,
                               search_space={"width": {"low": 8, "high": 12}}, hyperparameters={"epochs": 1},
                               seed=0, created_by="eve")
    assert sweeps.advance(run["id"]) is True
    storage.update_run(run["id"], status="cancelled")
    assert sweeps.advance(run["id"]) is False
    trials = [r for r in storage.runs.values() if r.get("parent_run") == run["id"]]
    assert len(trials) == 2 and {t["status"] for t in trials} == {"cancelled"}
    assert {t["state"] for t in sweeps.sweep_view(run["id"])["trials"]} == {"fail"}, "no trial left running"
