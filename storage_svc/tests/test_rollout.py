"""Safe rollout in the domain database: the canary share, shadow figures, and the automatic rollback."""

import base64

import pytest

from tests.test_registry import promote, second_version

pytestmark = pytest.mark.django_db
IMAGE = base64.b64encode(bytes(784)).decode()


def record(api, version_id: int, digits: list[int], *, user: str = "ann", shadow: tuple[int, list[int], float] | None = None):
    """Predictions answered by `version_id` (one per digit), each with the candidate's shadow answer if given."""
    rows = []
    for n, digit in enumerate(digits):
        row = {"image_b64": IMAGE, "digit": digit, "probabilities": [0.1] * 10, "model_version_id": version_id,
               "latency_ms": 1.0, "user": user}
        row["probabilities"][digit] = 0.8
        if shadow is not None:
            row["shadow"] = {"model_version_id": shadow[0], "digit": shadow[1][n], "confidence": shadow[2]}
        rows.append(row)
    answer = api.post("/predictions/bulk", {"predictions": rows}, content_type="application/json")
    assert answer.status_code == 201, answer.content
    return answer.json()["ids"]


def correct(api, prediction_id: int, label: int, user: str = "ann"):
    answer = api.post(f"/predictions/{prediction_id}/feedback", {"label": label, "user": user},
                      content_type="application/json")
    assert answer.status_code == 201, answer.content


def canary(api, share, actor="root", reason=""):
    return api.post("/rollout/canary", {"share": share, "actor": actor, "reason": reason}, content_type="application/json")


def ledger(api, **filters):
    return api.get("/aliases/ledger", filters).json()["results"]


def test_the_canary_share_is_bounded_needs_a_candidate_and_every_change_is_in_the_ledger(api, model_version):
    assert canary(api, 0.2).json()["error"]["code"] == "no_candidate"
    newer = second_version(api, model_version)
    promote(api, "production", model_version["id"])
    promote(api, "candidate", newer["id"])
    for bad in (0.51, -0.1, "NaN", "Infinity", "0.2\x00", True, None):
        answer = canary(api, bad)
        assert answer.status_code == 400, (bad, answer.content)
    assert api.get("/rollout").json()["canary_share"] == 0.0, "a refused share changes nothing"
    state = canary(api, 0.2, reason="try it on a fifth").json()
    assert (state["production"]["id"], state["candidate"]["id"], state["canary_share"]) == (
        model_version["id"], newer["id"], 0.2)
    canary(api, 0.35)
    changes = ledger(api, action="canary")
    assert [(c["details"], c["to_version"], c["actor"]) for c in changes] == [
        ({"from": 0.2, "to": 0.35}, newer["id"], "root"), ({"from": 0.0, "to": 0.2}, newer["id"], "root")]
    assert changes[1]["reason"] == "try it on a fifth"


def test_a_new_candidate_and_a_promoted_one_start_without_canary_traffic(api, model_version):
    newer, third = second_version(api, model_version), second_version(api, model_version)
    promote(api, "production", model_version["id"])
    promote(api, "candidate", newer["id"])
    canary(api, 0.3)
    promote(api, "candidate", third["id"])
    assert api.get("/rollout").json()["canary_share"] == 0.0
    assert ledger(api, alias="candidate")[0]["details"] == {"canary": {"from": 0.3, "to": 0.0}}
    canary(api, 0.3)
    promote(api, "production", third["id"])
    assert api.get("/rollout").json()["canary_share"] == 0.0, "production answers everyone: no canary of itself"
    assert canary(api, 0.1).json()["error"]["code"] == "candidate_is_production"


def test_shadow_figures_count_agreement_confusion_confidence_and_accuracy_on_corrected_predictions(api, model_version):
    candidate = second_version(api, model_version)
    # production said 1,1,2,3; the candidate 1,7,2,8: agreement 2/4
    ids = record(api, model_version["id"], [1, 1, 2, 3], shadow=(candidate["id"], [1, 7, 2, 8], 0.6))
    record(api, model_version["id"], [5])  # not shadowed
    correct(api, ids[1], 7)  # the candidate was right
    correct(api, ids[3], 3)  # production was right (a user confirming the answer)
    shadow = api.get(f"/models/{candidate['id']}/shadow").json()
    assert (shadow["count"], shadow["agreement"], shadow["against_versions"]) == (4, 0.5, [model_version["id"]])
    assert shadow["confusion"][1][1] == 1 and shadow["confusion"][1][7] == 1 and shadow["confusion"][3][8] == 1
    assert sum(map(sum, shadow["confusion"])) == 4
    assert shadow["mean_confidence"] == {"production": 0.8, "candidate": 0.6}
    assert shadow["corrected"] == {"count": 2, "production_accuracy": 0.5, "candidate_accuracy": 0.5}
    assert shadow["answered"] == {"count": 0, "corrected": 0}
    assert api.get("/models/999999/shadow").status_code == 404
    empty = api.get(f"/models/{model_version['id']}/shadow").json()
    assert (empty["count"], empty["agreement"], empty["answered"]["count"]) == (0, None, 5)


@pytest.mark.parametrize("shadow", [
    {"model_version_id": 1, "digit": 10, "confidence": 0.5},
    {"model_version_id": 1, "digit": 3, "confidence": 1.5},
    {"model_version_id": "1", "digit": 3, "confidence": 0.5},
    {"model_version_id": 1, "digit": 3},
    {"model_version_id": 1, "digit": 3, "confidence": 0.5, "extra": 1},
    [1, 3, 0.5],
])
def test_a_malformed_shadow_answer_is_refused_and_nothing_is_recorded(api, model_version, shadow):
    row = {"image_b64": IMAGE, "digit": 1, "probabilities": [0.1] * 10, "model_version_id": model_version["id"],
           "latency_ms": 1.0, "user": "ann", "shadow": shadow}
    answer = api.post("/predictions/bulk", {"predictions": [row]}, content_type="application/json")
    assert answer.status_code == 400 and "predictions[0].shadow" in answer.json()["error"]["details"]
    assert api.get("/predictions").json()["count"] == 0


def test_a_shadow_answer_of_a_missing_version_is_a_404(api, model_version):
    row = {"image_b64": IMAGE, "digit": 1, "probabilities": [0.1] * 10, "model_version_id": model_version["id"],
           "latency_ms": 1.0, "user": "ann", "shadow": {"model_version_id": 999999, "digit": 1, "confidence": 0.5}}
    assert api.post("/predictions/bulk", {"predictions": [row]}, content_type="application/json").status_code == 404


@pytest.fixture
def promoted(api, model_version, settings):
    """v_old served 100 predictions with 2 corrections, then v_new was promoted."""
    settings.ROLLBACK_WINDOW, settings.ROLLBACK_MIN_PREDICTIONS, settings.ROLLBACK_MARGIN = 100, 40, 0.05
    old, new = model_version, second_version(api, model_version)
    promote(api, "production", old["id"], reason="first")
    ids = record(api, old["id"], [1] * 100)
    correct(api, ids[0], 2)
    correct(api, ids[1], 2)
    promote(api, "production", new["id"], actor="admin", reason="better offline")
    return old, new


def test_a_promotion_whose_correction_rate_rises_past_the_margin_is_rolled_back_with_its_figures(api, promoted):
    old, new = promoted
    ids = record(api, new["id"], [4] * 50)
    for n in range(3):  # 3/50 = 6 % against 2 %: within the 5-point margin
        correct(api, ids[n], 9)
    assert api.get("/rollout").json()["production"]["id"] == new["id"]
    correct(api, ids[3], 9)  # 4/50 = 8 %: more than 5 points worse
    assert api.get("/rollout").json()["production"]["id"] == old["id"]
    rollback = ledger(api, alias="production")[0]
    assert (rollback["action"], rollback["actor"], rollback["from_version"], rollback["to_version"]) == (
        "auto-rollback", "system", new["id"], old["id"])
    assert rollback["details"]["production"] == {"version": new["id"], "predictions": 50, "corrections": 4, "rate": 0.08}
    assert rollback["details"]["former"] == {"version": old["id"], "predictions": 100, "corrections": 2, "rate": 0.02}
    assert "8.0%" in rollback["reason"] and "2.0%" in rollback["reason"]
    correct(api, ids[4], 9)
    assert len(ledger(api, action="auto-rollback")) == 1, "a rollback is not rolled back again"


def test_no_rollback_before_enough_predictions_nor_when_the_rate_stays_within_the_margin(api, promoted, settings):
    old, new = promoted
    ids = record(api, new["id"], [4] * 30)
    for n in range(10):  # a third corrected, but only 30 predictions of the 40 needed
        correct(api, ids[n], 9)
    assert api.get("/rollout").json()["production"]["id"] == new["id"]
    settings.AUTO_ROLLBACK = False
    record(api, new["id"], [4] * 20)
    correct(api, ids[10], 9)
    assert api.get("/rollout").json()["production"]["id"] == new["id"], "turned off: it never moves"
    assert ledger(api, action="auto-rollback") == []


def test_a_correction_that_confirms_the_answer_is_no_correction(api, promoted):
    old, new = promoted
    ids = record(api, new["id"], [4] * 50)
    for n in range(10):
        correct(api, ids[n], 4)
    assert api.get("/rollout").json()["production"]["id"] == new["id"]


def test_prometheus_shows_the_canary_share_and_the_shadow_agreement(api, model_version):
    candidate = second_version(api, model_version)
    promote(api, "production", model_version["id"])
    promote(api, "candidate", candidate["id"])
    canary(api, 0.2)
    record(api, model_version["id"], [1, 2, 3, 4], shadow=(candidate["id"], [1, 2, 3, 9], 0.7))
    text = api.get("/metrics").content.decode()
    label = f'candidate="v{candidate["id"]}"'
    assert f"rollout_canary_share{{{label}}} 0.2" in text
    assert f"rollout_shadow_agreement{{{label}}} 0.75" in text
    assert f"rollout_shadow_predictions{{{label}}} 4.0" in text


def test_promoting_the_version_already_there_moves_nothing_and_keeps_the_watch(api, promoted):
    old, new = promoted
    promote(api, "production", new["id"], reason="again")
    assert [c["reason"] for c in ledger(api, alias="production")][:1] == ["better offline"], "no row for a non-move"
    ids = record(api, new["id"], [4] * 50)
    for n in range(4):
        correct(api, ids[n], 9)
    assert api.get("/rollout").json()["production"]["id"] == old["id"], "the promotion is still watched"


def test_an_admins_rollback_of_the_last_promotion_is_not_watched(api, promoted):
    old, new = promoted
    record(api, new["id"], [4] * 60)
    promote(api, "production", old["id"], actor="admin", reason="rolled back by hand")
    ids = record(api, old["id"], [1] * 50)
    for n in range(10):
        correct(api, ids[n], 9)
    assert api.get("/rollout").json()["production"]["id"] == old["id"], "the admin's choice stands"
    assert ledger(api, action="auto-rollback") == []


def test_a_scored_files_answers_do_not_dilute_the_correction_rate(api, promoted):
    old, new = promoted
    run = api.post("/runs", {"kind": "infer", "params": {}, "created_by": "ann"}, content_type="application/json").json()
    rows = [{"image_b64": IMAGE, "digit": 4, "probabilities": [0.1] * 10, "model_version_id": new["id"],
             "latency_ms": 1.0, "user": "ann", "run_id": run["id"]} for _ in range(150)]
    assert api.post("/predictions/bulk", {"predictions": rows}, content_type="application/json").status_code == 201
    ids = record(api, new["id"], [4] * 50)
    for n in range(4):  # 4 of 50 live predictions, 4 of 200 with the file's
        correct(api, ids[n], 9)
    assert api.get("/rollout").json()["production"]["id"] == old["id"]
    assert ledger(api, action="auto-rollback")[0]["details"]["production"]["predictions"] == 50
