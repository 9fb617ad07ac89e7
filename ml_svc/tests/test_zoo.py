import numpy as np
import pytest
import torch

from ml_svc.architectures import ARCHITECTURES, FINE_TUNE_HYPERPARAMETERS, validate_hyperparameters, validate_values
from ml_svc.training import augment, evaluate, stratified_split, train

REQUIRED = {"linear", "mlp", "lenet5", "cnn"}


def test_the_zoo_has_the_four_required_architectures_each_declaring_its_settings():
    assert REQUIRED <= set(ARCHITECTURES)
    for architecture in ARCHITECTURES.values():
        described = architecture.describe()
        assert described["title"] and {"epochs", "learning_rate", "seed"} <= {h["name"] for h in described["hyperparameters"]}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_architecture_learns_digits(name, digits):
    images, labels = digits
    train_idx, held_out = stratified_split(labels, 0.6, seed=2)
    hp = validate_hyperparameters(ARCHITECTURES[name], {"epochs": 3, "batch_size": 32, **({"width": 8} if name == "cnn" else {})})
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
