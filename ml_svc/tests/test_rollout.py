"""The candidate in ml_svc's prediction path: shadow scoring beside production, and the canary share of users."""

import numpy as np
import pytest
import torch

from ml_svc import inference, serving
from ml_svc.weights import weights_to_bytes
from tests.support import CNN, HP, register


@pytest.fixture(autouse=True)
def float32_and_instant_refresh(settings):
    settings.ALIAS_REFRESH_S = 0.0
    settings.SERVING_PRECISION = "float32"  # what answers is exactly what a pinned request answers
    settings.SHADOW_SHARE = 1.0


@pytest.fixture
def versions(storage, trained_weights):
    """(production: a trained CNN, candidate: an untrained one, which answers differently)"""
    torch.manual_seed(1)
    weak = weights_to_bytes(CNN.build(HP))
    production, candidate = register(storage, trained_weights), register(storage, weak)
    storage.set_alias("production", model_version_id=production, actor="t", reason="")
    storage.set_alias("candidate", model_version_id=candidate, actor="t", reason="")
    return production, candidate


def batch(served, images, route=None, model_id=None):
    body = {"images": [{"pixels": image.tolist(), **({"route": route} if route else {})} for image in images]}
    answer = served("/predict/batch", body if model_id is None else {**body, "model_id": model_id})
    assert answer.status == 200, answer.body
    return answer.json()


def test_live_predictions_carry_the_candidates_shadow_answer_and_production_still_answers(served, digits, versions):
    production, candidate = versions
    images = digits[0][4000:4040]
    live = batch(served, images, route="ann")
    pinned = {v: batch(served, images, model_id=v)["results"] for v in versions}
    assert live["model"]["id"] == production
    for result, mine, theirs in zip(live["results"], pinned[production], pinned[candidate], strict=True):
        assert "model" not in result, "production answered"
        assert result["digit"] == mine["digit"] and result["probabilities"] == pytest.approx(mine["probabilities"], abs=1e-5)
        assert result["shadow"]["model_version_id"] == candidate
        assert result["shadow"]["digit"] == theirs["digit"]
        assert result["shadow"]["confidence"] == pytest.approx(max(theirs["probabilities"]), abs=1e-5)
    agreement = np.mean([r["digit"] == r["shadow"]["digit"] for r in live["results"]])
    assert agreement < 0.5, "the untrained candidate disagrees: its answers are its own"


def test_no_shadow_without_a_user_for_a_pinned_version_when_turned_off_or_without_a_candidate(served, digits, versions,
                                                                                           storage, settings):
    production, candidate = versions
    images = digits[0][4000:4010]
    assert not any("shadow" in r for r in batch(served, images)["results"]), "no route: not live traffic"
    assert not any("shadow" in r for r in batch(served, images, route="ann", model_id=production)["results"])
    settings.SHADOW_SHARE = 0.0
    assert not any("shadow" in r for r in batch(served, images, route="ann")["results"])
    settings.SHADOW_SHARE = 0.5
    shadowed = sum("shadow" in r for _ in range(10) for r in batch(served, images, route="ann")["results"])
    assert 25 <= shadowed <= 75, f"about half of 100 were shadow-scored, got {shadowed}"
    settings.SHADOW_SHARE = 1.0
    storage.set_alias("production", model_version_id=candidate, actor="t", reason="")
    assert not any("shadow" in r for r in batch(served, images, route="ann")["results"]), "the candidate serves"


def test_a_canary_share_of_users_is_answered_by_the_candidate_each_user_always_the_same(served, digits, versions, storage):
    production, candidate = versions
    storage.canary_share = 0.2
    image = digits[0][4000:4001]
    users = [f"user-{n}" for n in range(200)]
    answered_by = {}
    for user in users:
        for _ in range(2):
            result = batch(served, image, route=user)["results"][0]
            version = result.get("model", {"id": production})["id"]
            assert answered_by.setdefault(user, version) == version, "sticky per user"
            assert ("shadow" in result) == (version == production), "a canary answer is no shadow of itself"
    in_canary = {user for user, version in answered_by.items() if version == candidate}
    assert in_canary == {user for user in users if inference.bucket(user, candidate) < 0.2}
    assert 0.12 <= len(in_canary) / len(users) <= 0.28
    storage.canary_share = 0.4
    wider = {user for user in users if batch(served, image, route=user)["results"][0].get("model", {}).get("id") == candidate}
    assert in_canary < wider, "raising the share keeps the users it had"


def test_a_mixed_batch_answers_each_user_by_their_side_of_the_canary(served, digits, versions, storage):
    production, candidate = versions
    storage.canary_share = 0.5
    inside = next(f"u{n}" for n in range(100) if inference.bucket(f"u{n}", candidate) < 0.5)
    outside = next(f"u{n}" for n in range(100) if inference.bucket(f"u{n}", candidate) >= 0.5)
    images = digits[0][4000:4002]
    items = [{"pixels": images[0].tolist(), "route": inside}, {"pixels": images[1].tolist(), "route": outside},
             {"pixels": [[0] * 28] * 28, "route": inside}, {"pixels": images[0].tolist(), "route": 7}]
    results = served("/predict/batch", {"images": items}).json()["results"]
    assert results[0]["model"]["id"] == candidate and "shadow" not in results[0]
    assert "model" not in results[1] and results[1]["shadow"]["model_version_id"] == candidate
    assert results[2]["error"]["code"] == "blank_image"
    assert results[3]["error"]["code"] == "invalid" and "route" in results[3]["error"]["message"]


def test_another_candidate_draws_its_own_users(versions):
    users = [f"user-{n}" for n in range(400)]
    first = {u for u in users if inference.bucket(u, 1) < 0.2}
    second = {u for u in users if inference.bucket(u, 2) < 0.2}
    assert len(first & second) < 0.5 * len(first), "not the same fifth of users for every candidate"


def test_a_candidate_that_cannot_load_is_left_alone_and_production_serves(served, digits, versions, storage, monkeypatch):
    production, candidate = versions
    storage.blobs[storage.versions[candidate]["weights_sha256"]] = b"not weights"
    loads = []
    real = serving.load_model_version
    monkeypatch.setattr(serving, "load_model_version", lambda v: loads.append(v["id"]) or real(v))
    for _ in range(3):
        result = batch(served, digits[0][4000:4001], route="ann")["results"][0]
        assert "shadow" not in result and "model" not in result
    assert loads.count(candidate) == 1, "tried once, not at every refresh"


def test_a_promoted_candidate_is_not_loaded_again_and_storage_away_keeps_both(served, digits, versions, storage,
                                                                            monkeypatch):
    production, candidate = versions
    image = digits[0][4000:4001]
    assert batch(served, image, route="ann")["results"][0]["shadow"]["model_version_id"] == candidate
    loads = []
    real = serving.load_model_version
    monkeypatch.setattr(serving, "load_model_version", lambda v: loads.append(v["id"]) or real(v))
    storage.down = True
    assert batch(served, image, route="ann")["results"][0]["shadow"]["model_version_id"] == candidate
    storage.down = False
    storage.set_alias("production", model_version_id=candidate, actor="t", reason="")
    assert batch(served, image, route="ann")["model"]["id"] == candidate
    assert loads == [], "the loaded candidate became production as it was"
