import hashlib

import numpy as np
import pytest
import torch

from ml_svc import training
from ml_svc.architectures import ARCHITECTURES, FINE_TUNE_HYPERPARAMETERS, validate_hyperparameters, validate_values
from ml_svc.evaluation import evaluate, stratified_split
from ml_svc.training import augment, train
from ml_svc.weights import load_weights, weights_to_bytes

REQUIRED = {"linear", "mlp", "lenet5", "cnn"}


def test_the_zoo_has_the_four_required_architectures_each_declaring_its_settings():
    assert REQUIRED <= set(ARCHITECTURES)
    for architecture in ARCHITECTURES.values():
        described = architecture.describe()
        assert described["title"] and {"epochs", "learning_rate", "seed"} <= {h["name"] for h in described["hyperparameters"]}


def small(name: str, **given) -> dict:
    declared = {h.name for h in ARCHITECTURES[name].hyperparameters}
    return validate_hyperparameters(ARCHITECTURES[name], {**({"width": 8} if "width" in declared else {}), **given})


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_learns_digits(name, digits):
    images, labels = digits
    train_idx, held_out = stratified_split(labels, 0.6, seed=2)
    hp = small(name, epochs=3, batch_size=32)
    model = ARCHITECTURES[name].build(hp)
    assert model(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    train(model, images[train_idx], labels[train_idx], hp, on_progress=lambda f, e: None)
    assert evaluate(model, images[held_out], labels[held_out])["accuracy"] > 0.75


def test_augmentation_moves_digits_but_keeps_the_background(digits):
    from ml_svc.preprocessing import to_model_input

    batch = to_model_input(digits[0][:16])
    moved = augment(batch, torch.Generator().manual_seed(0))
    assert moved.shape == batch.shape and not torch.allclose(moved, batch)
    background = -0.1307 / 0.3081
    assert torch.isclose(moved[:, :, 0, 0], torch.full((16, 1), background), atol=1e-4).all()


def test_fine_tune_settings_have_defaults_and_bounds():
    values = validate_values(FINE_TUNE_HYPERPARAMETERS, {})
    assert values["epochs"] == 4 and values["replay_size"] == 2000 and values["learning_rate"] < 0.003
    from kit.errors import AppError

    with pytest.raises(AppError) as raised:
        validate_values(FINE_TUNE_HYPERPARAMETERS, {"replay_size": -1, "width": 8})
    assert set(raised.value.details) == {"replay_size", "width"}


def test_a_fixed_seed_gives_the_same_model(digits):
    images, labels = digits[0][:600], digits[1][:600]
    hp = validate_hyperparameters(ARCHITECTURES["mlp"], {"epochs": 1, "hidden": 32})
    torch.manual_seed(0)
    first = ARCHITECTURES["mlp"].build(hp)
    train(first, images, labels, hp, on_progress=lambda f, e: None)
    torch.manual_seed(0)
    second = ARCHITECTURES["mlp"].build(hp)
    train(second, images, labels, hp, on_progress=lambda f, e: None)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True))
    assert np.isfinite(evaluate(first, images, labels)["accuracy"])


def first_conv_output_dtype(model: torch.nn.Module, images, labels, hp: dict) -> torch.dtype:
    seen = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    handle = conv.register_forward_hook(lambda module, args, output: seen.append(output.dtype) if module.training else None)
    train(model, images, labels, hp, on_progress=lambda f, e: None)
    handle.remove()
    return seen[0]


def test_mixed_precision_computes_in_bfloat16_and_leaves_plain_float32_weights(digits):
    if not training.native_bfloat16():
        pytest.skip("this CPU has no native bfloat16: mixed_precision is a no-op here")
    images, labels = digits[0][:3000], digits[1][:3000]
    train_idx, held_out = stratified_split(labels, 0.3, seed=2)
    hp = small("cnn-dense", epochs=3, batch_size=32, mixed_precision=True)
    model = ARCHITECTURES["cnn-dense"].build(hp)
    assert first_conv_output_dtype(model, images[train_idx], labels[train_idx], hp) == torch.bfloat16
    assert all(p.dtype == torch.float32 and p.is_contiguous() for p in model.state_dict().values() if p.is_floating_point())
    assert evaluate(model, images[held_out], labels[held_out])["accuracy"] > 0.8
    restored = ARCHITECTURES["cnn-dense"].build(hp)
    data = weights_to_bytes(model)
    load_weights(restored, data, expected_sha256=hashlib.sha256(data).hexdigest())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), restored.state_dict().values(), strict=True))


def test_without_mixed_precision_training_stays_in_float32(digits):
    hp = small("cnn-dense", epochs=1, batch_size=64, mixed_precision=False)
    model = ARCHITECTURES["cnn-dense"].build(hp)
    assert first_conv_output_dtype(model, digits[0][:256], digits[1][:256], hp) == torch.float32


@pytest.mark.parametrize("images", [64, 200, 256, 300])
def test_a_training_of_only_a_few_steps_completes(images, digits):
    hp = small("mlp", epochs=1, batch_size=64)
    model = ARCHITECTURES["mlp"].build(hp)
    reports = train(model, digits[0][:images], digits[1][:images], hp, on_progress=lambda f, e: None)
    assert len(reports) == 1 and np.isfinite(reports[0]["loss"])


def test_an_architecture_may_declare_its_own_default_for_a_training_hyperparameter():
    dense, plain = validate_hyperparameters(ARCHITECTURES["cnn-dense"], {}), validate_hyperparameters(ARCHITECTURES["cnn"], {})
    assert dense["epochs"] == 30 and plain["epochs"] == 25
    names = [h["name"] for h in ARCHITECTURES["cnn-dense"].describe()["hyperparameters"]]
    assert names.count("epochs") == 1
