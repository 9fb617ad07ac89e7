"""Time-aware training: the schedule is sized from the pace measured on this CPU, not from a number of epochs."""

from __future__ import annotations

import pytest
import torch

from ml_svc import strokes, training
from ml_svc.architectures import get_architecture, validate_hyperparameters
from ml_svc.jobs import collect_body, run_scenario, train_body
from ml_svc.training import BUDGET_BATCH_SIZE, ONE_CYCLE_DIV_FACTOR, planned_steps, train


class SimulatedClock:
    """perf_counter for `training`: every reading is `cost` seconds after the previous one, so that one optimiser
    step (one reading in the loop) costs `cost` seconds, as if the CPU were that fast."""

    def __init__(self, cost: float):
        self.now, self.cost = 0.0, cost

    def perf_counter(self) -> float:
        self.now += self.cost
        return self.now


def budgeted_run(monkeypatch, digits, *, step_cost: float, budget_s: float, images: int = 512):
    clock = SimulatedClock(step_cost)
    monkeypatch.setattr(training.time, "perf_counter", clock.perf_counter)
    architecture = get_architecture("linear")
    hp = validate_hyperparameters(architecture, {"batch_size": 64, "augment": False})
    data, labels = digits
    return train(architecture.build(hp), data[:images], labels[:images], hp, on_progress=lambda f, e: None,
                 time_budget_s=budget_s, val_images=data[images:images + 64], val_labels=labels[images:images + 64])


def test_the_schedule_is_sized_from_the_measured_pace(monkeypatch, digits):
    slow = budgeted_run(monkeypatch, digits, step_cost=0.1, budget_s=20)
    fast = budgeted_run(monkeypatch, digits, step_cost=0.025, budget_s=20)
    # the same budget holds about four times as many steps on a CPU four times as fast
    assert 3.5 < fast[-1]["images_seen"] / slow[-1]["images_seen"] < 4.5
    for reports in (slow, fast):
        assert 18 <= reports[-1]["seconds"] <= 21, "the training takes about its budget"
        assert reports[-1]["eta_s"] == 0.0 and reports[-1]["planned_epochs"] == len(reports)


def test_a_budgeted_schedule_runs_its_one_cycle_plan_to_the_end(monkeypatch, digits):
    clock = SimulatedClock(0.05)
    monkeypatch.setattr(training.time, "perf_counter", clock.perf_counter)
    architecture = get_architecture("linear")
    hp = validate_hyperparameters(architecture, {"batch_size": 64, "augment": False, "learning_rate": 0.01})
    model = architecture.build(hp)
    data, labels = digits
    learning_rates = []
    original_step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        learning_rates.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    train(model, data[:512], labels[:512], hp, on_progress=lambda f, e: None, time_budget_s=10)
    assert learning_rates[0] == pytest.approx(0.01 / ONE_CYCLE_DIV_FACTOR), "the probe steps run at the plan's start"
    assert max(learning_rates) == pytest.approx(0.01, rel=0.02), "the plan reaches its peak"
    assert learning_rates[-1] < 0.01 / ONE_CYCLE_DIV_FACTOR / 100, "and anneals to its end on the last step"


def test_planned_steps_counts_whole_epochs_and_their_evaluations():
    # 10 steps of 1 s per epoch plus a 2 s evaluation: 36 s hold three epochs (36 s) and nothing more
    assert planned_steps(budget_s=36, seconds_per_step=1, steps_per_epoch=10, eval_seconds=2) == 30
    assert planned_steps(budget_s=41, seconds_per_step=1, steps_per_epoch=10, eval_seconds=2) == 35
    assert planned_steps(budget_s=0.1, seconds_per_step=1, steps_per_epoch=10, eval_seconds=2) == 4, "at least 4"


def test_widest_width_that_gets_enough_epochs_is_chosen(monkeypatch, digits):
    paces = {32: 0.5, 24: 0.2, 16: 0.05}  # seconds per step by width, as measured on some CPU
    monkeypatch.setattr(training, "measure_seconds_per_step", lambda model, *a: paces[model.width])

    def build(width):
        model = torch.nn.Linear(1, 1)
        model.width = width
        return model

    data, labels = digits
    hp = {"batch_size": 64}
    # 640 images are 10 steps an epoch; 8 epochs take width 32 40 s, width 24 16 s, width 16 4 s
    assert training.widest_that_fits([32, 24, 16], build, data[:640], labels[:640], hp, budget_s=45) == 32
    assert training.widest_that_fits([32, 24, 16], build, data[:640], labels[:640], hp, budget_s=20) == 24
    assert training.widest_that_fits([32, 24, 16], build, data[:640], labels[:640], hp, budget_s=5) == 16


def test_a_budgeted_training_run_fits_batch_and_width_to_this_cpu_and_records_them(storage, collector, monkeypatch):
    collect = storage.create_run(kind="collect", params={"source": "mnist-5k", "batch_size": 5000, "max_samples": 1000},
                                 created_by="eve")
    dataset_id = run_scenario(collect["id"], collect_body)["dataset_id"]
    monkeypatch.setattr(training, "widest_that_fits", lambda widths, *a, **k: widths[-1])
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn-dense",
                                                  "hyperparameters": {"time_budget_s": 8}}, created_by="eve")
    result = run_scenario(run["id"], train_body)
    version = storage.versions[result["model_version_id"]]
    hp = version["hyperparameters"]
    assert hp["batch_size"] == BUDGET_BATCH_SIZE and hp["width"] == 16, "what the user left open was chosen"
    finished = storage.get_run(run["id"])
    assert finished["status"] == "succeeded"
    assert hp["epochs"] == len(finished["epochs"]), "the version records the epochs the budget held"
    assert version["metrics"]["images_per_second"] > 0


def test_what_the_user_asked_for_is_kept_within_a_budget(storage, collector, monkeypatch):
    collect = storage.create_run(kind="collect", params={"source": "mnist-5k", "batch_size": 5000, "max_samples": 600},
                                 created_by="eve")
    dataset_id = run_scenario(collect["id"], collect_body)["dataset_id"]
    monkeypatch.setattr(training, "widest_that_fits", lambda *a, **k: pytest.fail("the width was given"))
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"time_budget_s": 3, "width": 8, "batch_size": 32}},
                             created_by="eve")
    version = storage.versions[run_scenario(run["id"], train_body)["model_version_id"]]
    assert (version["hyperparameters"]["width"], version["hyperparameters"]["batch_size"]) == (8, 32)


@pytest.mark.parametrize("images", [64, 150, 192])
def test_a_budget_over_one_to_three_steps_an_epoch_still_ends(monkeypatch, digits, images):
    reports = budgeted_run(monkeypatch, digits, step_cost=0.1, budget_s=5, images=images)
    assert 4.0 <= reports[-1]["seconds"] <= 6.0 and reports[-1]["eta_s"] == 0.0


def test_the_pace_probe_times_real_steps_that_trace_digits(digits):
    """The width is chosen from steps as training takes them: with the canvas pen's tracing."""
    data, labels = digits
    architecture = get_architecture("cnn")
    hp = validate_hyperparameters(architecture, {"batch_size": 32, "width": 8})
    pen = training.canvas_pen(data[:256], hp, source="mnist-5k")
    traced = []
    original = pen.retrace
    pen.retrace = lambda *a: traced.append(1) or original(*a)
    seconds = training.measure_seconds_per_step(architecture.build(hp), data[:256], labels[:256], hp, pen)
    assert 0 < seconds < 5 and len(traced) == training.WARMUP_STEPS + training.PROBE_STEPS


@pytest.mark.parametrize(("source", "traced"), [("mnist-5k", True), ("fashion-mnist", False)])
def test_only_handwriting_is_traced_with_a_canvas_pen(storage, collector, monkeypatch, source, traced):
    collect = storage.create_run(kind="collect", params={"source": "mnist-5k", "batch_size": 5000, "max_samples": 300},
                                 created_by="eve")
    dataset_id = run_scenario(collect["id"], collect_body)["dataset_id"]
    storage.dataset_rows[dataset_id]["source"] = source  # the same images, as if they were clothes
    traced_batches = []
    real = strokes.Retracer.retrace
    monkeypatch.setattr(strokes.Retracer, "retrace", lambda *a: traced_batches.append(1) or real(*a))
    # A time budget with the width left open: the probe's steps and the training's both trace handwriting.
    run = storage.create_run(kind="train", params={"dataset_id": dataset_id, "architecture": "cnn",
                                                  "hyperparameters": {"time_budget_s": 4}}, created_by="eve")
    run_scenario(run["id"], train_body)
    assert storage.get_run(run["id"])["status"] == "succeeded"
    probes = training.WARMUP_STEPS + training.PROBE_STEPS
    assert len(traced_batches) > probes if traced else not traced_batches
