"""Sweeps through the gateway: the API starts one (its search space checked by ml_svc, refusals passed on), the
run page shows its trials and charts, the Train page starts one from a form."""

import pytest

from kit.contracts import example, storage
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db

SPACE = {"learning_rate": {"low": 0.001, "high": 0.02, "log": True}, "width": {"low": 8, "high": 32}}


def test_an_engineer_starts_a_sweep_and_its_defaults_are_filled(api_as, fake_peers):
    answer = api_as("engineer").post("/api/scenarios/sweep", {"dataset_id": 3, "search_space": SPACE, "trials": 16},
                                     format="json")
    assert answer.status_code == 202, answer.json()
    params = answer.json()["params"]
    assert params == {"dataset_id": 3, "architecture": None, "search_space": SPACE, "trials": 16, "max_parallel": 2,
                      "time_budget_s": 0, "hyperparameters": {}, "seed": 0, "created_by": "engineer"}


@pytest.mark.parametrize("body, field", [
    ({"dataset_id": 3, "search_space": SPACE, "trials": 0}, "trials"),
    ({"dataset_id": 3, "search_space": SPACE, "trials": 2, "max_parallel": 33}, "max_parallel"),
    ({"dataset_id": 3, "search_space": {"width": 8}, "trials": 2}, "search_space"),
    ({"dataset_id": 3, "trials": 2}, "search_space"),
])
def test_a_malformed_sweep_is_refused_naming_the_field(api_as, fake_peers, body, field):
    answer = api_as("engineer").post("/api/scenarios/sweep", body, format="json")
    assert answer.status_code == 400 and field in answer.json()["error"]["details"]


def test_ml_svcs_refusal_of_a_search_space_is_passed_on(api_as, fake_peers):
    answer = api_as("engineer").post("/api/scenarios/sweep", {"dataset_id": 3, "trials": 2,
                                                              "search_space": {"colour": {"low": 1, "high": 2}}},
                                     format="json")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_search_space"
    assert "search_space.colour" in answer.json()["error"]["details"]


def a_sweep_run(fake_peers) -> int:
    fake_peers["storage"].runs[16] = example(
        storage.Run, id=16, kind="sweep", status="running", created_by="engineer", progress=0.5,
        params={"dataset_id": 3, "search_space": {"width": {"low": 8, "high": 16}}, "trials": 4, "max_parallel": 2},
        result={"trials": {"complete": 1, "pruned": 1, "failed": 0, "running": 2, "total": 4, "ended": 2},
                "best_value": 0.9312, "best_trial": 0, "best_params": {"width": 12}, "model_version_id": 7})
    return 16


def test_the_sweep_page_shows_its_trials_its_best_and_its_charts(client, users, fake_peers):
    run_id = a_sweep_run(fake_peers)
    assert client.login(username="engineer", password=PASSWORD)
    page = client.get(f"/runs/{run_id}").content.decode()
    assert "1 complete · 1 pruned · 0 failed · 2 in flight, of 4 planned (2 at a time)" in page
    assert "best held-out accuracy <strong>0.9312</strong>" in page
    assert '<a href="/runs/41">0</a>' in page and "<td>complete</td>" in page and "<td>12</td>" in page
    assert 'data-chart="sweep-history"' in page and 'data-chart="sweep-parallel"' in page
    assert 'data-chart="sweep-importances"' not in page, "no importances before two trials completed"
    assert api_data(client, run_id)["trials"][0]["value"] == 0.9312


def api_data(client, run_id):
    return client.get(f"/api/runs/{run_id}/sweep").json()


def test_the_sweep_page_still_shows_the_run_when_ml_svc_is_down(client, users, fake_peers):
    run_id = a_sweep_run(fake_peers)
    fake_peers["ml"].down = True
    assert client.login(username="engineer", password=PASSWORD)
    answer = client.get(f"/runs/{run_id}")
    assert answer.status_code == 200 and "ml_svc is unavailable" in answer.content.decode()


def test_the_train_page_starts_a_sweep_from_its_form(client, users, fake_peers):
    assert client.login(username="engineer", password=PASSWORD)
    form = client.get("/train?mode=sweep").content.decode()
    assert 'name="search_space"' in form and "learning_rate" in form
    answer = client.post("/train", {"mode": "sweep", "dataset_id": "3", "architecture": "cnn", "trials": "6",
                                    "max_parallel": "2", "search_space": '{"width": {"low": 8, "high": 16}}',
                                    "hyperparameters": '{"epochs": 2}'})
    assert answer.status_code == 302 and answer["Location"] == "/runs/16"
    refused = client.post("/train", {"mode": "sweep", "dataset_id": "3", "trials": "6", "max_parallel": "2",
                                     "search_space": "[" * 5000, "hyperparameters": "{}"})
    assert refused.status_code == 400 and "search_space is not valid JSON." in refused.content.decode()
