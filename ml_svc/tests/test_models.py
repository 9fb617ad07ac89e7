import hashlib

import numpy as np
import pytest

from kit.errors import AppError
from ml_svc.architectures import ARCHITECTURES, get_architecture, validate_hyperparameters
from ml_svc.evaluation import evaluate, predict_proba, stratified_split
from ml_svc.training import TrainingCancelled, train
from ml_svc.weights import WeightsRejected, load_weights, weights_to_bytes

CNN = get_architecture("cnn")


def small_hp(**overrides):
    return validate_hyperparameters(CNN, {"epochs": 2, "width": 8, "batch_size": 64, **overrides})


def test_defaults_are_filled_in_and_declared():
    hp = validate_hyperparameters(CNN, {})
    assert hp["epochs"] == 25 and hp["width"] == 16 and hp["batch_size"] == 128
    described = {h["name"] for h in CNN.describe()["hyperparameters"]}
    assert {"epochs", "learning_rate", "width"} <= described


@pytest.mark.parametrize(
    "given, field",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"width": 4096}, "width"),
        ({"augment": "yes"}, "augment"),
        ({"momentum": 0.9}, "momentum"),
    ],
)
def test_bad_hyperparameters_are_a_400_naming_the_field(given, field):
    with pytest.raises(AppError) as raised:
        validate_hyperparameters(CNN, given)
    assert raised.value.status == 400 and field in raised.value.details


def test_an_unknown_architecture_is_refused():
    with pytest.raises(AppError) as raised:
        get_architecture("transformer-xxl")
    assert raised.value.status == 400
    assert "cnn" in ARCHITECTURES


def test_a_split_is_stratified_and_fixed_by_its_seed(digits):
    _, labels = digits
    train_idx, val_idx = stratified_split(labels, 0.1, seed=7)
    assert np.bincount(labels[val_idx]).tolist() == [50] * 10
    assert not set(train_idx) & set(val_idx)
    assert np.array_equal(val_idx, stratified_split(labels, 0.1, seed=7)[1])


def test_training_learns_digits_and_reports_every_epoch(digits):
    images, labels = digits
    train_idx, held_out = stratified_split(labels, 0.7, seed=1)  # 1,500 to train on, 3,500 held out
    hp = small_hp(epochs=4, width=16)
    model = CNN.build(hp)
    reports = []
    epochs = train(model, images[train_idx], labels[train_idx], hp, on_progress=lambda f, e: reports.append((f, e)))
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
    assert all(e["eta_s"] >= 0 and e["loss"] > 0 for e in epochs)
    assert reports[-1][0] == 1.0
    metrics = evaluate(model, images[held_out], labels[held_out], mistakes=5)
    assert metrics["accuracy"] > 0.9
    assert np.array(metrics["confusion_matrix"]).sum() == len(held_out)
    assert set(metrics["per_class"]) == {str(d) for d in range(10)}
    assert len(metrics["confident_mistakes"]) == 5


def test_training_stops_between_batches_when_cancelled(digits):
    images, labels = digits
    calls = []

    def cancel_at_once(fraction, epoch):
        calls.append(fraction)
        raise TrainingCancelled("cancelled by test")

    with pytest.raises(TrainingCancelled):
        train(CNN.build(small_hp(epochs=50)), images, labels, small_hp(epochs=50), on_progress=cancel_at_once, progress_every_s=0.0)
    assert len(calls) == 1 and calls[0] < 0.01


def test_weights_round_trip_through_safetensors(digits):
    images, _ = digits
    model = CNN.build(small_hp())
    data = weights_to_bytes(model)
    assert data[8:9] == b"{", "safetensors starts with a length and a JSON header, never a pickle"
    copy = load_weights(CNN.build(small_hp()), data, expected_sha256=hashlib.sha256(data).hexdigest())
    assert np.allclose(predict_proba(model, images[:50]), predict_proba(copy, images[:50]))


def test_weights_whose_hash_does_not_match_are_refused():
    data = weights_to_bytes(CNN.build(small_hp()))
    with pytest.raises(WeightsRejected):
        load_weights(CNN.build(small_hp()), data, expected_sha256="0" * 64)


def test_weights_of_another_shape_are_refused():
    data = weights_to_bytes(CNN.build(small_hp(width=16)))
    with pytest.raises(WeightsRejected):
        load_weights(CNN.build(small_hp(width=8)), data, expected_sha256=hashlib.sha256(data).hexdigest())
