from datetime import timedelta

import pytest
from django.utils import timezone

from storage_svc.registry import services
from storage_svc.registry.models import Run

pytestmark = pytest.mark.django_db


def create_run(api, kind="train"):
    response = api.post("/runs", {"kind": kind, "params": {"epochs": 2}, "created_by": "eve"}, content_type="application/json")
    assert response.status_code == 201
    return response.json()


def patch(api, run_id, **fields):
    return api.patch(f"/runs/{run_id}", fields, content_type="application/json")


def test_a_run_goes_from_queued_to_running_to_succeeded(api):
    run = create_run(api)
    assert run["status"] == "queued"
    running = patch(api, run["id"], status="running", progress=0.5, epochs=[{"epoch": 1, "loss": 0.3}]).json()
    assert running["status"] == "running" and running["started_at"] and running["heartbeat_at"]
    done = patch(api, run["id"], status="succeeded", result={"model_version_id": 3}).json()
    assert done["progress"] == 1.0 and done["finished_at"] and done["result"] == {"model_version_id": 3}


def test_a_finished_run_never_changes_again(api):
    run = create_run(api)
    patch(api, run["id"], status="cancelled")
    response = patch(api, run["id"], status="running", progress=0.4)
    assert response.status_code == 409
    assert api.get(f"/runs/{run['id']}").json()["status"] == "cancelled"


def test_progress_outside_zero_to_one_is_refused(api):
    run = create_run(api)
    assert patch(api, run["id"], progress=1.5).status_code == 400
    assert patch(api, run["id"], bogus=1).status_code == 400


def test_a_run_whose_worker_stopped_sending_heartbeats_is_marked_failed(api, settings, monkeypatch):
    monkeypatch.setattr(services, "STARTED_AT", timezone.now() - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT_S + 1))
    run = create_run(api)
    patch(api, run["id"], status="running")
    Run.objects.filter(pk=run["id"]).update(heartbeat_at=timezone.now() - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT_S + 5))
    fetched = api.get(f"/runs/{run['id']}").json()
    assert fetched["status"] == "failed"
    assert "no word from the ML worker" in fetched["error"] and "start the run again" in fetched["error"].lower()


def test_a_freshly_restarted_storage_gives_running_workers_one_timeout_to_report(api, settings, monkeypatch):
    monkeypatch.setattr(services, "STARTED_AT", timezone.now())
    run = create_run(api)
    patch(api, run["id"], status="running")
    Run.objects.filter(pk=run["id"]).update(heartbeat_at=timezone.now() - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT_S + 5))
    assert api.get(f"/runs/{run['id']}").json()["status"] == "running", "its worker may be reporting again any moment"
    assert patch(api, run["id"], progress=0.5).json()["status"] == "running"


def test_a_queued_run_no_worker_started_in_time_ends_failed_saying_what_to_check(api, settings):
    stuck, fresh = create_run(api, "collect"), create_run(api, "collect")
    Run.objects.filter(pk=stuck["id"]).update(created_at=timezone.now() - timedelta(seconds=settings.RUN_QUEUE_TIMEOUT_S + 5))
    fetched = api.get(f"/runs/{stuck['id']}").json()
    assert fetched["status"] == "failed" and fetched["finished_at"]
    assert "no ML worker started this run" in fetched["error"] and "start the run again" in fetched["error"]
    assert api.get(f"/runs/{fresh['id']}").json()["status"] == "queued", "a run queued a moment ago still waits"


def test_runs_are_filtered_by_kind_and_author(api):
    create_run(api, "train")
    create_run(api, "collect")
    assert api.get("/runs?kind=collect").json()["count"] == 1
    assert api.get("/runs?created_by=nobody").json()["count"] == 0


def test_reading_runs_checks_for_stale_ones_at_most_once_a_second(monkeypatch):
    from storage_svc.registry import services

    checks = []
    monkeypatch.setattr(services, "EXPIRY_EVERY_S", 1.0)
    monkeypatch.setattr(services, "_expiry_checked_at", [float("-inf")])
    monkeypatch.setattr(services, "runs_expire_stale", lambda: checks.append(1) or 0)
    clock = [100.0]
    monkeypatch.setattr(services.time, "monotonic", lambda: clock[0])
    for _ in range(5):
        services.runs_expire_stale_now_and_then()
    clock[0] += 1.0
    services.runs_expire_stale_now_and_then()
    assert len(checks) == 2, "five readers within a second share one check; the next second checks again"


def a_sweep_with_trials(api, count: int = 3) -> tuple[dict, list[dict]]:
    sweep = create_run(api, "sweep")
    trials = []
    for _ in range(count):
        response = api.post("/runs", {"kind": "train", "params": {}, "created_by": "eve", "parent_run": sweep["id"]},
                            content_type="application/json")
        assert response.status_code == 201 and response.json()["parent_run"] == sweep["id"]
        trials.append(response.json())
    return sweep, trials


def test_a_sweeps_trials_are_its_children_and_listed_by_parent(api):
    sweep, trials = a_sweep_with_trials(api)
    listed = api.get(f"/runs?parent_run={sweep['id']}").json()
    assert sorted(r["id"] for r in listed["results"]) == [t["id"] for t in trials]
    assert api.get("/runs?parent_run=x").status_code == 400
    missing = api.post("/runs", {"kind": "train", "params": {}, "created_by": "eve", "parent_run": 999999},
                       content_type="application/json")
    assert missing.status_code == 404 and missing.json()["error"]["details"] == {"parent_run": 999999}


def test_cancelling_a_sweep_cancels_its_queued_and_running_trials_not_its_finished_ones(api):
    sweep, (done, running, queued) = a_sweep_with_trials(api)
    patch(api, done["id"], status="running")
    patch(api, done["id"], status="succeeded", result={"accuracy": 0.9})
    patch(api, running["id"], status="running")
    patch(api, sweep["id"], status="running")
    assert patch(api, sweep["id"], status="cancelled").json()["status"] == "cancelled"
    statuses = {r["id"]: r["status"] for r in api.get(f"/runs?parent_run={sweep['id']}").json()["results"]}
    assert statuses == {done["id"]: "succeeded", running["id"]: "cancelled", queued["id"]: "cancelled"}
    assert patch(api, running["id"], progress=0.5).status_code == 409, "its worker stops at its next report"


def test_a_sweep_lives_while_one_of_its_trials_does(api, settings, monkeypatch):
    monkeypatch.setattr(services, "STARTED_AT", timezone.now() - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT_S + 1))
    sweep, (trial,) = a_sweep_with_trials(api, 1)
    patch(api, sweep["id"], status="running")
    patch(api, trial["id"], status="running")
    old = timezone.now() - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT_S + 5)
    Run.objects.filter(pk=sweep["id"]).update(heartbeat_at=old)
    assert api.get(f"/runs/{sweep['id']}").json()["status"] == "running", "its worker is busy training the trial"
    Run.objects.filter(pk=trial["id"]).update(heartbeat_at=old)
    services.runs_expire_stale()
    assert api.get(f"/runs/{trial['id']}").json()["status"] == "failed"
    Run.objects.filter(pk=trial["id"]).update(finished_at=old)  # and nothing told the sweep since
    services.runs_expire_stale()
    assert api.get(f"/runs/{sweep['id']}").json()["status"] == "failed", "nothing works on it any more"


def test_a_finished_sweep_takes_no_new_trial(api):
    sweep, _ = a_sweep_with_trials(api, 1)
    patch(api, sweep["id"], status="cancelled")
    late = api.post("/runs", {"kind": "train", "params": {}, "created_by": "eve", "parent_run": sweep["id"]},
                    content_type="application/json")
    assert late.status_code == 409 and late.json()["error"]["code"] == "run_finished"


def test_a_trial_waiting_its_turn_in_a_running_sweep_is_not_expired_as_unstarted(api, settings):
    sweep, (waiting,) = a_sweep_with_trials(api, 1)
    patch(api, sweep["id"], status="running")
    long_ago = timezone.now() - timedelta(seconds=settings.RUN_QUEUE_TIMEOUT_S + 5)
    Run.objects.filter(pk=waiting["id"]).update(created_at=long_ago)
    services.runs_expire_stale()
    assert api.get(f"/runs/{waiting['id']}").json()["status"] == "queued"


def test_a_sweep_whose_trial_just_ended_is_alive_until_it_is_told(api, settings, monkeypatch):
    monkeypatch.setattr(services, "STARTED_AT", timezone.now() - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT_S + 1))
    sweep, (trial,) = a_sweep_with_trials(api, 1)
    patch(api, sweep["id"], status="running")
    patch(api, trial["id"], status="running")
    patch(api, trial["id"], status="succeeded", result={"accuracy": 0.9})
    old = timezone.now() - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT_S + 5)
    Run.objects.filter(pk=sweep["id"]).update(heartbeat_at=old)  # one worker: it was training, not ticking
    services.runs_expire_stale()
    assert api.get(f"/runs/{sweep['id']}").json()["status"] == "running", "the trial's end moves it on"
    Run.objects.filter(pk=trial["id"]).update(finished_at=old)
    services.runs_expire_stale()
    assert api.get(f"/runs/{sweep['id']}").json()["status"] == "failed"
