"""Training and evaluation as plain functions over a model and in-memory tensors."""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml_svc import strokes
from ml_svc.evaluation import evaluate
from ml_svc.preprocessing import to_model_input

ProgressCallback = Callable[[float, dict | None], None]


class TrainingCancelled(Exception):
    """Raised from a progress callback to stop training between batches."""


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random rotation (±12°), scale (0.9-1.1) and shift (±2 px) of a (N,1,28,28) batch."""
    n = batch.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(12)
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 / 14)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    background = -0.1307 / 0.3081
    return F.grid_sample(batch - background, grid, align_corners=False, padding_mode="zeros") + background


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively; elsewhere torch would emulate it, slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return torch.backends.mkldnn.is_available() and any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


# A time-aware training (`time_budget_s`) times its first optimiser steps, after WARMUP_STEPS untimed ones, at
# the one-cycle plan's starting rate, then sizes the plan to the budget left on this CPU.
WARMUP_STEPS = 2
PROBE_STEPS = 6
ONE_CYCLE_DIV_FACTOR = 25.0  # OneCycleLR's default: its plan starts at max_lr / 25


def planned_steps(*, budget_s: float, seconds_per_step: float, steps_per_epoch: int, eval_seconds: float,
                  minimum: int = 4) -> int:
    """How many optimiser steps fit in `budget_s`, with one held-out evaluation per epoch; at least `minimum`."""
    per_epoch = steps_per_epoch * seconds_per_step + eval_seconds
    whole_epochs, rest = divmod(max(budget_s, 0.0), per_epoch)
    steps = int(whole_epochs) * steps_per_epoch + min(int(rest / seconds_per_step), steps_per_epoch - 1)
    return max(steps, minimum)


def _pct_start(total_steps: int) -> float:
    # OneCycleLR divides by zero when its warm-up would end exactly on the first step (0.25 x 4 steps - 1 = 0).
    return 0.3 if total_steps == 4 else 0.25


def canvas_pen(images: np.ndarray, hp: dict, *, source: str,
               on_start: Callable[[int], None] = lambda count: None) -> strokes.Retracer | None:
    """The centre lines `train` traces digits along with a canvas pen, where the augmentation is on and the images
    are handwriting (a dataset `source` not in strokes.NOT_HANDWRITING); None: no tracing. `on_start(count)` is
    called before the digits' centre lines are looked for (seconds for thousands)."""
    if not (hp.get("augment") and source not in strokes.NOT_HANDWRITING and len(images)):
        return None
    on_start(min(len(images), strokes.LIMIT))
    return strokes.Retracer(images, torch.Generator().manual_seed(hp["seed"]))


def _check_pen(pen: strokes.Retracer | None, images: np.ndarray) -> None:
    if pen is not None and len(pen.row) != len(images):
        raise ValueError("the canvas pen was made for another set of images")


def measure_seconds_per_step(model: nn.Module, images: np.ndarray, labels: np.ndarray, hp: dict,
                             pen: strokes.Retracer | None = None) -> float:
    """What one optimiser step of `model` costs on this CPU, timed on a throwaway copy."""
    _check_pen(pen, images)
    probe = copy.deepcopy(model)
    x, y = to_model_input(images), torch.tensor(np.asarray(labels), dtype=torch.long)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=hp["learning_rate"] / ONE_CYCLE_DIV_FACTOR)
    generator = torch.Generator().manual_seed(hp["seed"])
    step = _step_function(probe, optimizer, hp, generator, pen)
    started = time.perf_counter()
    for done in range(WARMUP_STEPS + PROBE_STEPS):
        if done == WARMUP_STEPS:
            started = time.perf_counter()
        index = torch.randint(len(y), (min(int(hp["batch_size"]), len(y)),), generator=generator)
        step(x[index], y[index], index)
    return (time.perf_counter() - started) / PROBE_STEPS


# A time-budgeted training with no width asked for takes the widest candidate that still gets this many passes
# over its data, and, with no batch size asked for, smaller batches: more steps pay in a short schedule
# (bench/README.md: cnn-dense on 4,500 mnist-5k digits in 50 s on a 2-core AVX2 CPU, official test accuracy:
# batch 128: width 32 6 passes 98.96 %, width 24 8 passes 99.09 %, width 16 18 passes 99.07 %;
# batch 64: width 24 9 passes 99.29 %, width 16 16 passes 99.23 %).
MIN_EPOCHS_IN_BUDGET = 8
BUDGET_BATCH_SIZE = 64


def fit_to_budget(architecture, hp: dict, given: dict, images: np.ndarray, labels: np.ndarray, budget_s: float,
                  pen: strokes.Retracer | None = None, on_probe: Callable[[int], None] = lambda width: None) -> None:
    """What the user left to the platform (`given`: the hyperparameters they asked for), chosen in `hp` for a short
    schedule on this CPU: the batch size, and the widest of the declared width, 3/4 and 1/2 of it that still trains
    enough epochs within the budget."""
    if "batch_size" not in given:
        hp["batch_size"] = BUDGET_BATCH_SIZE
    if "width" in hp and "width" not in given:
        spec = next(h for h in architecture.all_hyperparameters() if h.name == "width")
        widths = sorted({max(int(spec.default * share), int(spec.minimum)) for share in (1.0, 0.75, 0.5)}, reverse=True)
        hp["width"] = widest_that_fits(widths, lambda width: architecture.build({**hp, "width": width}), images, labels,
                                       hp, budget_s, on_probe=on_probe, pen=pen)


def widest_that_fits(widths: list[int], build: Callable[[int], nn.Module], images: np.ndarray, labels: np.ndarray,
                     hp: dict, budget_s: float, on_probe: Callable[[int], None] = lambda width: None,
                     pen: strokes.Retracer | None = None) -> int:
    """The first of `widths` (widest first) whose model trains MIN_EPOCHS_IN_BUDGET epochs in `budget_s` here;
    `on_probe(width)` is called before each is timed (a heartbeat: a busy CPU makes the timing slow)."""
    steps_per_epoch = math.ceil(len(labels) / int(hp["batch_size"]))
    for width in widths[:-1]:
        on_probe(width)
        pace = measure_seconds_per_step(build(width), images, labels, hp, pen)
        if planned_steps(budget_s=budget_s, seconds_per_step=pace, steps_per_epoch=steps_per_epoch,
                         eval_seconds=0.0) >= MIN_EPOCHS_IN_BUDGET * steps_per_epoch:
            return width
    return widths[-1]


def _resize_one_cycle(scheduler: torch.optim.lr_scheduler.OneCycleLR, total_steps: int) -> None:
    """Stretch or shrink a two-phase one-cycle plan to `total_steps` from where it is (torch is pinned: the phase
    table is what OneCycleLR.__init__ builds from total_steps)."""
    phases = scheduler._schedule_phases
    scheduler.total_steps = total_steps
    phases[0]["end_step"] = float(_pct_start(total_steps) * total_steps) - 1
    phases[1]["end_step"] = total_steps - 1


def _step_function(model: nn.Module, optimizer: torch.optim.Optimizer, hp: dict, generator: torch.Generator,
                   pen: strokes.Retracer | None = None):
    """One optimiser step on a batch (and the batch's positions in the training set) -> (summed loss, correct
    count)."""
    # bfloat16 matmuls and convolutions (weights and optimiser stay float32) in channels-last layout, oneDNN's
    # fast path; serving and evaluation run the same weights in float32.
    bfloat16 = bool(hp.get("mixed_precision")) and native_bfloat16()
    memory_format = torch.channels_last if bfloat16 else torch.contiguous_format
    model.to(memory_format=memory_format)
    model.train()

    def step(batch_x: torch.Tensor, batch_y: torch.Tensor, index: torch.Tensor) -> tuple[float, int]:
        if hp["augment"]:
            if pen is not None:
                batch_x = pen.retrace(batch_x, index, generator)
            batch_x = augment(batch_x, generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            logits = model(batch_x.contiguous(memory_format=memory_format)).float()
        loss = F.cross_entropy(logits, batch_y, label_smoothing=0.05)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item() * len(batch_y), int((logits.argmax(1) == batch_y).sum())

    return step


class Schedule:
    """The optimiser steps a training takes and its one-cycle learning rate over them: `epochs` passes, or, given a
    time budget, as many steps as the budget holds at the pace measured after WARMUP_STEPS + PROBE_STEPS, planned
    again at each epoch's end (the first steps can be slower or faster); either way the plan runs to its end."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, max_lr: float, steps_per_epoch: int, epochs: int,
                 budget_s: float, eval_batches: int):
        self.optimizer, self.max_lr, self.steps_per_epoch = optimizer, max_lr, steps_per_epoch
        self.budget_s, self.eval_batches = budget_s, eval_batches
        self.started = self.probe_started = time.perf_counter()
        self.done = 0  # optimiser steps taken
        self.eval_seconds = 0.0  # the last held-out evaluation's time
        self.evaluating_since_probe = 0.0  # every evaluation's since the probe steps
        self.scheduler: torch.optim.lr_scheduler.OneCycleLR | None = None
        if budget_s:
            self.total_steps = 0  # sized once the probe steps are timed
            for group in optimizer.param_groups:
                group["lr"] = max_lr / ONE_CYCLE_DIV_FACTOR
        else:
            self.total_steps = epochs * steps_per_epoch
            self.scheduler = self._one_cycle(self.total_steps)

    def _one_cycle(self, total_steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
        return torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=self.max_lr, total_steps=total_steps,
                                                   pct_start=_pct_start(total_steps), div_factor=ONE_CYCLE_DIV_FACTOR)

    def _plan(self, now: float, pace: float, minimum: int) -> int:
        """Total optimiser steps that end the plan when the budget does, at `pace` seconds per step."""
        return self.done + planned_steps(budget_s=self.budget_s - (now - self.started), seconds_per_step=max(pace, 1e-6),
                                         steps_per_epoch=self.steps_per_epoch, eval_seconds=self.eval_seconds,
                                         minimum=minimum)

    @property
    def finished(self) -> bool:
        return bool(self.total_steps) and self.done >= self.total_steps

    def stepped(self, now: float) -> None:
        """One optimiser step was taken: move the learning rate, or time the probe and plan the budget."""
        self.done += 1
        if self.scheduler is not None:
            self.scheduler.step()
        elif self.done == WARMUP_STEPS:
            self.probe_started = now
        elif self.done == WARMUP_STEPS + PROBE_STEPS:
            pace = (now - self.probe_started) / PROBE_STEPS
            # until one is measured, evaluating costs about a third of training on as many images
            self.eval_seconds = pace / 3 * self.eval_batches
            self.total_steps = self._plan(now, pace, minimum=4)
            self.scheduler = self._one_cycle(self.total_steps - self.done)

    def evaluated(self, seconds: float) -> None:
        self.eval_seconds = seconds
        self.evaluating_since_probe += seconds if self.done > WARMUP_STEPS else 0.0

    def epoch_ended(self, now: float) -> None:
        """Re-plan from the pace so far; once the budget is spent the plan ends with the next step."""
        if self.budget_s and self.scheduler is not None and self.done < self.total_steps:
            pace = (now - self.probe_started - self.evaluating_since_probe) / (self.done - WARMUP_STEPS)
            self.total_steps = max(self._plan(now, pace, minimum=0), self.done + 1)
            _resize_one_cycle(self.scheduler, self.total_steps - (self.done - self.scheduler.last_epoch))

    def fraction(self, now: float, *, cap: float = 1.0) -> float:
        """How far the training is (0 to 1)."""
        if self.total_steps:
            return min(self.done / self.total_steps, 1.0)
        return min((now - self.started) / self.budget_s, cap)


def train_epoch(step: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[float, int]], x: torch.Tensor,
                y: torch.Tensor,
                *, batch_size: int, generator: torch.Generator, schedule: Schedule,
                on_progress: ProgressCallback, progress_every_s: float) -> dict:
    """One pass over (x, y) in a random order, or fewer steps where the schedule ends first: its loss, accuracy and
    the images it saw. Progress is reported every `progress_every_s`."""
    order = torch.randperm(len(y), generator=generator)
    loss_sum, correct, seen = 0.0, 0, 0
    last_report = time.perf_counter()
    for position in range(schedule.steps_per_epoch):
        index = order[position * batch_size : (position + 1) * batch_size]
        batch_loss, batch_correct = step(x[index], y[index], index)
        loss_sum, correct, seen = loss_sum + batch_loss, correct + batch_correct, seen + len(index)
        now = time.perf_counter()
        schedule.stepped(now)
        if now - last_report >= progress_every_s:
            last_report = now
            on_progress(schedule.fraction(now), None)
        if schedule.finished:
            break
    return {"loss": round(loss_sum / seen, 5), "train_accuracy": round(correct / seen, 5), "seen": seen}


def train(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    hp: dict,
    *,
    on_progress: ProgressCallback,
    progress_every_s: float = 2.0,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    time_budget_s: float | None = None,
    pen: strokes.Retracer | None = None,
) -> list[dict]:
    """Train in place with AdamW and a one-cycle schedule (`Schedule`); returns one report per epoch. `pen`
    (`canvas_pen`): the augmentation also traces digits with a canvas pen."""
    _check_pen(pen, images)
    torch.manual_seed(hp["seed"])
    generator = torch.Generator().manual_seed(hp["seed"])
    x = to_model_input(images)
    y = torch.tensor(np.asarray(labels), dtype=torch.long)
    batch_size = int(hp["batch_size"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp["learning_rate"], weight_decay=hp["weight_decay"])
    step = _step_function(model, optimizer, hp, generator, pen)
    schedule = Schedule(optimizer, max_lr=hp["learning_rate"], steps_per_epoch=math.ceil(len(y) / batch_size),
                        epochs=int(hp["epochs"]), budget_s=float(time_budget_s or 0),
                        eval_batches=math.ceil(len(val_labels) / batch_size) if val_labels is not None else 0)
    reports: list[dict] = []
    images_seen = 0
    while not schedule.finished:
        model.train()
        epoch = train_epoch(step, x, y, batch_size=batch_size, generator=generator, schedule=schedule,
                            on_progress=on_progress, progress_every_s=progress_every_s)
        images_seen += epoch.pop("seen")
        report = {"epoch": len(reports) + 1, **epoch, "images_seen": images_seen}
        if val_images is not None and len(val_images):
            evaluated = time.perf_counter()
            report["val_accuracy"] = round(evaluate(model, val_images, val_labels)["accuracy"], 5)
            schedule.evaluated(time.perf_counter() - evaluated)
        now = time.perf_counter()
        schedule.epoch_ended(now)
        fraction = schedule.fraction(now, cap=0.99)
        total_steps = schedule.total_steps
        report.update({"planned_epochs": math.ceil(total_steps / schedule.steps_per_epoch) if total_steps else None,
                       "seconds": round(now - schedule.started, 2),
                       "eta_s": round((now - schedule.started) * (1 / fraction - 1), 1)})
        reports.append(report)
        on_progress(fraction, report)
    model.to(memory_format=torch.contiguous_format)  # plain tensors again for safetensors and ONNX export
    return reports
