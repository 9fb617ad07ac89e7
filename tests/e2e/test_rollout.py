"""Safe rollout with real processes: a deliberately weak candidate is shadow-scored on live predictions and refused by
the promotion gate (then promoted past it with an override the ledger shows); a bad promotion is rolled back by the
platform once users' corrections show it, while predictions keep being answered; a 20 % canary splits 50 users'
predictions close to 20/80, each user always answered by the same version."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.support import Api, mixed_digits


@pytest.fixture(scope="module")
def weak(platform):
    """(production, a weak candidate: a linear model trained one pass at the smallest learning rate); afterwards
    production is the original again and no canary is open."""
    production = platform.ensure_production_model()
    gateway = platform.url("gateway")
    engineer, admin = Api(gateway, "engineer", platform.demo_password), Api(gateway, "admin", platform.demo_password)
    started = engineer.post("/api/scenarios/train-model", {
        "dataset_id": production["datasets"][0], "architecture": "linear",
        "hyperparameters": {"epochs": 1, "learning_rate": 1e-5, "batch_size": 1024, "augment": False}})
    assert started.status_code == 202, started.text
    run = engineer.wait_for_run(started.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    candidate = engineer.get(f"/api/models/{run['result']['model_version_id']}").json()
    assert admin.post(f"/api/models/{candidate['id']}/promote", {"alias": "candidate", "reason": "weak on purpose"}
                      ).status_code == 200
    time.sleep(2.5)  # serving processes read the aliases every alias_refresh_s
    yield production, candidate
    admin.post("/api/rollout/canary", {"share": 0, "reason": "end of test"})
    admin.post(f"/api/models/{production['id']}/promote", {"reason": "end of test"})


def predict_and_correct(api: Api, images, labels, *, correct: int = 0) -> list[dict]:
    """Predict each image; the first `correct` answers are corrected with their true label."""
    answers = []
    for n, (image, label) in enumerate(zip(images, labels, strict=True)):
        answer = api.post("/api/predictions", {"pixels": image.tolist()})
        assert answer.status_code == 201, answer.text
        answers.append(answer.json())
        if n < correct:
            feedback = api.post(f"/api/predictions/{answers[-1]['id']}/feedback", {"label": int(label)})
            assert feedback.status_code == 201, feedback.text
    return answers


def test_a_weak_candidate_is_shadow_scored_refused_by_the_gate_and_promoted_only_with_an_override(platform, weak):
    production, candidate = weak
    gateway = platform.url("gateway")
    viewer, engineer = Api(gateway, "viewer", platform.demo_password), Api(gateway, "engineer", platform.demo_password)
    admin = Api(gateway, "admin", platform.demo_password)
    images, labels = mixed_digits()
    answers = predict_and_correct(viewer, images[:100], labels[:100], correct=40)
    answers += predict_and_correct(engineer, images[100:200], labels[100:200])
    assert {a["model"]["id"] for a in answers} == {production["id"]}, "production answers; the candidate only shadows"
    assert all("shadow" not in a for a in answers)

    shadow = viewer.get(f"/api/models/{candidate['id']}/shadow").json()
    assert shadow["count"] == 200 and shadow["against_versions"] == [production["id"]]
    assert shadow["agreement"] < 0.8, "the weak candidate disagrees with production often"
    assert sum(map(sum, shadow["confusion"])) == 200
    assert shadow["corrected"]["count"] == 40
    assert shadow["corrected"]["production_accuracy"] > shadow["corrected"]["candidate_accuracy"] + 0.3
    assert shadow["mean_confidence"]["production"] > shadow["mean_confidence"]["candidate"]

    refused = admin.post(f"/api/models/{candidate['id']}/promote", {"reason": "try"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "gate_refused", refused.text
    gate = refused.json()["error"]["details"]["gate"]
    checks = {c["name"]: c for c in gate["checks"]}
    assert not checks["held_out_accuracy"]["passed"] and checks["held_out_accuracy"]["candidate"] < 0.9
    assert checks["shadow_agreement"]["count"] == 200 and not checks["shadow_agreement"]["passed"]
    assert viewer.get("/api/rollout").json()["production"]["id"] == production["id"], "nothing moved"
    assert admin.post(f"/api/models/{candidate['id']}/promote", {"override": True, "reason": ""}).status_code == 400

    overridden = admin.post(f"/api/models/{candidate['id']}/promote", {"override": True, "reason": "seen it, go"})
    assert overridden.status_code == 200, overridden.text
    entry = viewer.get("/api/models/ledger", params={"action": "override"}).json()["results"][0]
    assert (entry["to_version"], entry["from_version"], entry["actor"], entry["reason"]) == (
        candidate["id"], production["id"], "admin", "seen it, go")
    assert entry["details"]["gate"]["passed"] is False
    # The weak version now serves: the next test shows the platform taking it back (the tests run in this order).


def test_a_bad_promotion_is_rolled_back_by_the_corrections_while_predictions_are_answered(platform, weak):
    production, candidate = weak
    gateway = platform.url("gateway")
    viewer, engineer = Api(gateway, "viewer", platform.demo_password), Api(gateway, "engineer", platform.demo_password)
    admin = Api(gateway, "admin", platform.demo_password)
    images, labels = mixed_digits()
    if viewer.get("/api/rollout").json()["production"]["id"] != candidate["id"]:  # run on its own
        assert admin.post(f"/api/models/{candidate['id']}/promote", {"reason": "bad on purpose", "override": True}
                          ).status_code == 200
    time.sleep(2.5)
    stop, statuses, answered_by = threading.Event(), [], []

    def keep_predicting():  # another user, all along: every prediction is answered
        while not stop.is_set():
            answer = engineer.post("/api/predictions", {"pixels": images[4000].tolist()})
            statuses.append(answer.status_code)
            answered_by.append(answer.json().get("model", {}).get("id"))
            time.sleep(0.2)

    background = threading.Thread(target=keep_predicting)
    background.start()
    try:
        by_bad, rolled_back_after = 0, None
        for image, label in zip(images[300:700], labels[300:700], strict=True):
            answer = viewer.post("/api/predictions", {"pixels": image.tolist()})
            assert answer.status_code == 201, answer.text
            if answer.json()["model"]["id"] != candidate["id"]:
                break
            by_bad += 1
            viewer.post(f"/api/predictions/{answer.json()['id']}/feedback", {"label": int(label)})
            if viewer.get("/api/rollout").json()["production"]["id"] == production["id"]:
                rolled_back_after = by_bad
                break
        time.sleep(3)  # serving processes follow within alias_refresh_s
    finally:
        stop.set()
        background.join()
    assert rolled_back_after is not None, "production moved back by itself"
    assert rolled_back_after <= 200, "within the rollback window (200 predictions)"
    assert statuses and set(statuses) == {201}, "predictions were answered throughout"
    assert answered_by[-1] == production["id"]

    rollback = viewer.get("/api/models/ledger", params={"action": "auto-rollback"}).json()["results"][0]
    assert (rollback["from_version"], rollback["to_version"], rollback["actor"]) == (
        candidate["id"], production["id"], "system")
    figures = rollback["details"]
    assert figures["production"]["rate"] > figures["former"]["rate"] + figures["margin"]
    assert figures["production"]["predictions"] >= 50
    overview = viewer.get("/api/rollout").json()
    assert overview["alert"]["id"] == rollback["id"]

    session = requests.Session()
    token = session.get(f"{gateway}/login", timeout=10).cookies["csrftoken"]
    session.post(f"{gateway}/login", data={"username": "viewer", "password": platform.demo_password,
                                           "csrfmiddlewaretoken": token}, headers={"Referer": f"{gateway}/login"},
                 timeout=10)
    dashboard = session.get(f"{gateway}/dashboard", timeout=10).text
    assert 'id="rollback-alert"' in dashboard and f"from v{candidate['id']} to v{production['id']}" in dashboard


def test_a_20_percent_canary_splits_50_users_close_to_20_80_each_always_on_one_version(platform, weak):
    production, candidate = weak
    gateway = platform.url("gateway")
    admin = Api(gateway, "admin", platform.demo_password)
    tokens = json.loads(platform.manage("gateway_site", "shell", "-c", (
        "import json\n"
        "from django.contrib.auth.models import Group, User\n"
        "from rest_framework.authtoken.models import Token\n"
        "viewers = Group.objects.get(name='viewer')\n"
        "tokens = {}\n"
        "for n in range(50):\n"
        "    user, _ = User.objects.get_or_create(username=f'canary-user-{n}')\n"
        "    user.groups.add(viewers)\n"
        "    tokens[user.username] = Token.objects.get_or_create(user=user)[0].key\n"
        "print(json.dumps(tokens))\n")).strip().splitlines()[-1])
    opened = admin.post("/api/rollout/canary", {"share": 0.2, "reason": "a fifth of users"})
    assert opened.status_code == 200 and opened.json()["canary_share"] == 0.2, opened.text
    time.sleep(2.5)
    images, _ = mixed_digits()

    def twenty_predictions(user: str) -> list[int]:
        headers = {"Authorization": f"Token {tokens[user]}"}
        versions = []
        for n in range(20):
            answer = requests.post(f"{gateway}/api/predictions", json={"pixels": images[n].tolist()}, headers=headers,
                                   timeout=10)
            assert answer.status_code == 201, answer.text
            versions.append(answer.json()["model"]["id"])
        return versions

    with ThreadPoolExecutor(8) as pool:
        by_user = dict(zip(tokens, pool.map(twenty_predictions, tokens), strict=True))
    assert all(len(set(versions)) == 1 for versions in by_user.values()), "each user always gets the same version"
    answered = [v for versions in by_user.values() for v in versions]
    share = answered.count(candidate["id"]) / len(answered)
    assert len(answered) == 1000 and set(answered) == {production["id"], candidate["id"]}
    assert 0.1 <= share <= 0.3, f"close to 20/80: {share:.0%} by the candidate"
    # A user's side is fixed by the candidate and their name: the first 8 bytes of SHA-256("<candidate id>:<name>") as
    # a fraction of 2^64, below the share.
    expected = {u for u in tokens
                if int.from_bytes(hashlib.sha256(f"{candidate['id']}:{u}".encode()).digest()[:8], "big") / 2**64 < 0.2}
    assert {u for u, versions in by_user.items() if versions[0] == candidate["id"]} == expected
    history = Api(gateway, "engineer", platform.demo_password).get(
        "/api/predictions", params={"user": "canary-user-0", "page_size": 50}).json()
    assert {p["model"]["id"] for p in history["results"]} == set(by_user["canary-user-0"]), "recorded as answered"
    change = admin.get("/api/models/ledger", params={"action": "canary"}).json()["results"][0]
    assert (change["details"], change["reason"]) == ({"from": 0.0, "to": 0.2}, "a fifth of users")
    metrics = requests.get(platform.url("storage") + "/metrics", timeout=10).text
    assert f'rollout_canary_share{{candidate="v{candidate["id"]}"}} 0.2' in metrics
