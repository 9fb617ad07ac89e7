"""Hyperparameter sweeps: an Optuna study per sweep run, kept in the ML database (its own schema `optuna` on
PostgreSQL, created at first use), TPE sampling, and median pruning on each epoch's held-out accuracy.

Each trial is a training run of its own, a child of the sweep run, on the task queue: any idle worker, on any host
that reaches the database, takes the next one. Nothing waits in a worker for the sweep as a whole: `advance` (after
each trial, and on a short tick while the sweep lasts) tells the study what ended, starts trials until
`max_parallel` are in flight, and ends the sweep with its best version as `candidate`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import optuna
import sqlalchemy
from django.conf import settings
from django.db import connection
from django.utils import timezone
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from sqlalchemy.engine import URL

from kit.contracts import storage
from kit.errors import AppError
from ml_svc import peers
from ml_svc.architectures import get_architecture

logger = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

SCHEMA = "optuna"
FINISHED = ("succeeded", "failed", "cancelled")
UNFINISHED = ("queued", "running")
TICK_S = 2.0  # how often a lasting sweep looks at its trials (besides after each one)
MAX_TRIALS, MAX_PARALLEL, MAX_CHOICES = 200, 32, 20
NOT_SEARCHED = {"time_budget_s", "mixed_precision"}  # a trial trains for epochs, on the worker's own arithmetic


class TrialPruned(Exception):
    """The study judged this trial's held-out accuracy too weak to go on."""


# Where studies live ---------------------------------------------------------------------------------------------

@cache
def study_storage() -> optuna.storages.RDBStorage:
    """The ML database (PostgreSQL: schema `optuna`; SQLite: a file beside the queue's)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return optuna.storages.RDBStorage(f"sqlite:///{Path(db['NAME']).with_suffix('.optuna.sqlite3')}")
    url = URL.create("postgresql+psycopg2", username=db.get("USER") or None, password=db.get("PASSWORD") or None,
                     host=db.get("HOST") or None, port=int(db["PORT"]) if db.get("PORT") else None, database=db["NAME"])
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as schema:  # its own connection: visible to Optuna's at once, whatever Django's is doing
        schema.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    engine.dispose()
    return optuna.storages.RDBStorage(url.render_as_string(hide_password=False), engine_kwargs={
        "connect_args": {"options": f"-csearch_path={SCHEMA}"}, "pool_pre_ping": True})


def study_name(sweep_id: int) -> str:
    return f"sweep-{sweep_id}"


def create_study(sweep_id: int) -> optuna.Study:
    return optuna.create_study(study_name=study_name(sweep_id), storage=study_storage(), direction="maximize",
                               load_if_exists=True)


def load_study(sweep: storage.Run) -> optuna.Study:
    """The sweep's study with its sampler seeded by how many trials it has (a fresh sampler per call would
    otherwise draw the same first values each time) and its pruner."""
    seed = int(sweep["params"].get("seed", 0))
    study = optuna.load_study(study_name=study_name(sweep["id"]), storage=study_storage(),
                              pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.get_trials(deepcopy=False)))
    return study


# The search space -----------------------------------------------------------------------------------------------

def distributions(architecture_name: str, space: object) -> dict[str, BaseDistribution]:
    """Optuna distributions for a search space, each bound checked against the architecture's declared ones;
    a 400 names the field."""
    architecture = get_architecture(architecture_name)
    declared = {h.name: h for h in architecture.all_hyperparameters()}
    if not isinstance(space, dict) or not space:
        raise _invalid("search_space", "give at least one hyperparameter to search")
    found: dict[str, BaseDistribution] = {}
    for name, spec in space.items():
        field = f"search_space.{name}"
        if name not in declared or name in NOT_SEARCHED:
            raise _invalid(field, f"{architecture.name} has no hyperparameter {name!r} to search; searchable: "
                           f"{', '.join(sorted(set(declared) - NOT_SEARCHED))}")
        found[name] = _distribution(declared[name], spec, field)
    return found


def _distribution(declared, spec: object, field: str) -> BaseDistribution:
    def valid(value, where: str):
        try:
            return declared.validate(value)
        except ValueError as exc:
            raise _invalid(where, str(exc)) from None

    if not isinstance(spec, dict):
        raise _invalid(field, 'give {"low", "high", "log"?} or {"choices": [...]}')
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"} or not isinstance(choices, list) or not 1 <= len(choices) <= MAX_CHOICES:
            raise _invalid(field, f"choices must be a list of 1 to {MAX_CHOICES} values, alone")
        return CategoricalDistribution([valid(c, f"{field}.choices") for c in choices])
    if declared.kind is bool:
        raise _invalid(field, 'a true/false hyperparameter is searched with {"choices": [true, false]}')
    if not {"low", "high"} <= set(spec) <= {"low", "high", "log"}:
        raise _invalid(field, 'give "low" and "high" (and "log" true or false)')
    low, high = valid(spec["low"], f"{field}.low"), valid(spec["high"], f"{field}.high")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise _invalid(f"{field}.log", "must be true or false")
    if not low < high:
        raise _invalid(field, "low must be below high")
    if log and low <= 0:
        raise _invalid(f"{field}.low", "a log scale starts above 0")
    return IntDistribution(low, high, log=log) if declared.kind is int else FloatDistribution(low, high, log=log)


def _invalid(field: str, problem: str) -> AppError:
    return AppError("invalid_search_space", f"{field}: {problem}", details={field: problem})


# Advancing a sweep ----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def sweep_lock(sweep_id: int):
    """One `advance` of a sweep at a time, across workers and hosts (a PostgreSQL advisory lock; with SQLite, one
    host, a file lock)."""
    if connection.vendor == "postgresql":
        # a session lock, outside any transaction: each trial queued under it is committed at once, whatever
        # fails after it (a transaction's lock would roll the queued tasks back with it)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [0x5EE9, sweep_id])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [0x5EE9, sweep_id])
        return
    path = Path(settings.DATABASES["default"]["NAME"]).with_suffix(f".sweep-{sweep_id}.lock")
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def children(sweep_id: int) -> list[storage.Run]:
    return peers.storage().list_runs(parent_run=sweep_id, page_size=500)["results"]


def advance(sweep_id: int) -> bool:
    """Tell the study each trial that ended, start trials up to max_parallel, end the sweep when nothing is left
    to run; True while the sweep goes on."""
    with sweep_lock(sweep_id):
        sweep = peers.storage().get_run(sweep_id)
        study, params = load_study(sweep), sweep["params"]
        if sweep["status"] in FINISHED:
            _end_trials_left(study)
            return False
        trials = children(sweep_id)
        runs_of = {run["params"]["sweep"]["trial"]: run for run in trials}
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            run = runs_of.get(trial.number)
            if run is not None and run["status"] in FINISHED:
                _tell(study, trial.number, run)
        if sweep["status"] == "queued":
            peers.storage().update_run(sweep_id, status="running", message="started")
        started = time.time() - _started_at(sweep)
        out_of_time = bool(params.get("time_budget_s")) and started > params["time_budget_s"]
        in_flight = [run for run in trials if run["status"] in UNFINISHED]
        while len(in_flight) < params["max_parallel"] and len(trials) < params["trials"] and not out_of_time:
            try:
                run = _start_trial(study, sweep)
            except AppError as exc:
                if exc.status != 409:
                    raise
                _end_trials_left(study)  # the sweep ended (cancelled) meanwhile: it starts nothing more
                return False
            trials.append(run)
            in_flight.append(run)
        summary = summarize(study, trials)
        if in_flight:
            peers.storage().update_run(sweep_id, progress=round(summary["trials"]["ended"] / params["trials"], 4),
                                       message=_said(summary, params["trials"]), result=summary)
            return True
        _finish(sweep, summary)
        return False


def _end_trials_left(study: optuna.Study) -> None:
    """A sweep that ended leaves no trial "running" in its study (its page would show them so for ever)."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)


def _started_at(sweep: storage.Run) -> float:
    stamp = sweep.get("started_at") or sweep["created_at"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _tell(study: optuna.Study, number: int, run: storage.Run) -> None:
    result = run.get("result") or {}
    if run["status"] == "succeeded" and not result.get("pruned"):
        study.tell(number, float(result["accuracy"]))
    else:
        study.tell(number, state=TrialState.PRUNED if result.get("pruned") else TrialState.FAIL)


def _start_trial(study: optuna.Study, sweep: storage.Run) -> storage.Run:
    from ml_svc import jobs  # the jobs module starts sweeps through this one

    params = sweep["params"]
    space = distributions(params["architecture"], params["search_space"])
    trial = study.ask(space)
    hyperparameters = {**params.get("hyperparameters", {}), **trial.params}
    try:
        run = peers.storage().create_run(kind="train", created_by=sweep["created_by"], parent_run=sweep["id"], params={
            "dataset_id": params["dataset_id"], "architecture": params["architecture"],
            "hyperparameters": hyperparameters,
            "sweep": {"run": sweep["id"], "trial": trial.number, "trial_id": trial._trial_id, "study": study.study_name},
        })
    except AppError:
        study.tell(trial.number, state=TrialState.FAIL)  # no run was made for it: it never runs
        raise
    try:
        jobs.train_model.enqueue(run["id"])
    except Exception as exc:  # the queue's database failed: this trial cannot run
        peers.storage().update_run(run["id"], status="failed", error=f"could not queue the trial: {exc}")
        study.tell(trial.number, state=TrialState.FAIL)
        raise
    return run


def summarize(study: optuna.Study, trials: list[storage.Run]) -> dict:
    """What `GET /api/runs/{id}` of a sweep says: trials by state, the best value, parameters, trial and version."""
    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = {name: states.count(state) for name, state in
              (("complete", TrialState.COMPLETE), ("pruned", TrialState.PRUNED), ("failed", TrialState.FAIL))}
    counts |= {"running": sum(run["status"] in UNFINISHED for run in trials), "total": len(trials)}
    counts["ended"] = counts["complete"] + counts["pruned"] + counts["failed"]
    summary: dict = {"study": study.study_name, "trials": counts, "best_value": None, "best_params": None,
                     "best_trial": None, "best_run": None, "model_version_id": None,
                     # each epoch a trial ends changes the sweep run: its watchers see the trials move
                     "in_flight": [{"trial": run["params"]["sweep"]["trial"], "run": run["id"],
                                    "epochs": len(run.get("epochs") or [])} for run in trials
                                   if run["status"] in UNFINISHED]}
    if counts["complete"]:
        best = study.best_trial
        run = next((r for r in trials if r["params"]["sweep"]["trial"] == best.number), None)
        summary |= {"best_value": best.value, "best_params": best.params, "best_trial": best.number,
                    "best_run": run["id"] if run else None,
                    "model_version_id": (run or {}).get("result", {}).get("model_version_id")}
    return summary


def _said(summary: dict, planned: int) -> str:
    counts = summary["trials"]
    best = f"; best held-out accuracy {summary['best_value']:.4f}" if summary["best_value"] is not None else ""
    return (f"{counts['ended']} of {planned} trials ended ({counts['complete']} complete, {counts['pruned']} "
            f"pruned, {counts['failed']} failed), {counts['running']} in flight{best}")


def _finish(sweep: storage.Run, summary: dict) -> None:
    storage_client = peers.storage()
    if summary["model_version_id"] is None:
        storage_client.update_run(sweep["id"], status="failed", result=summary, message="failed",
                                  error="No trial completed: every one was pruned or failed (see the trials).")
        return
    storage_client.set_alias("candidate", model_version_id=summary["model_version_id"], actor=sweep["created_by"],
                             reason=f"best of sweep {sweep['id']}: trial {summary['best_trial']}, held-out accuracy "
                                    f"{summary['best_value']:.4f}")
    storage_client.update_run(sweep["id"], status="succeeded", result=summary,
                              message=_said(summary, sweep["params"]["trials"]))


def tick_again_at():
    return timezone.now() + timedelta(seconds=TICK_S)


# A trial, inside its training -----------------------------------------------------------------------------------

def pruning_check(run: storage.Run):
    """For a trial's training: report each epoch's held-out accuracy to the study; raise TrialPruned when the
    pruner says so. None for a training that is not a trial."""
    sweep = run["params"].get("sweep")
    if not sweep:
        return None
    study = optuna.load_study(study_name=sweep["study"], storage=study_storage(),
                              pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    trial = optuna.trial.Trial(study, sweep["trial_id"])

    def check(epoch: dict) -> None:
        if epoch.get("val_accuracy") is None:
            return
        trial.report(float(epoch["val_accuracy"]), step=int(epoch["epoch"]))
        if trial.should_prune():
            raise TrialPruned(f"pruned after epoch {epoch['epoch']}: held-out accuracy {epoch['val_accuracy']:.4f} "
                              "is below the median of earlier trials at that epoch")

    return check


# The sweep page's data ------------------------------------------------------------------------------------------

def sweep_view(sweep_id: int) -> dict:
    """Each trial (parameters, state, value, epochs reported, duration) and plotly figures of the search:
    optimisation history, parallel coordinates, parameter importances (None until two trials completed)."""
    import json

    from optuna import visualization

    sweep = peers.storage().get_run(sweep_id)
    if sweep["kind"] != "sweep":
        raise AppError("not_found", f"run {sweep_id} is not a sweep", status=404)
    study = optuna.load_study(study_name=study_name(sweep_id), storage=study_storage())
    frozen = study.get_trials(deepcopy=False)
    run_of = {run["params"]["sweep"]["trial"]: run["id"] for run in children(sweep_id)}
    trials = [{"number": t.number, "run": run_of.get(t.number), "state": t.state.name.lower(), "params": t.params,
               "value": t.value,
               "epochs": len(t.intermediate_values), "intermediate": [t.intermediate_values[k] for k in
                                                                      sorted(t.intermediate_values)],
               "duration_s": round(t.duration.total_seconds(), 1) if t.duration else None} for t in frozen]
    complete = sum(t.state == TrialState.COMPLETE for t in frozen)

    def figure(make):
        spec = json.loads(make(study).to_json())
        spec["layout"].pop("template", None)  # plotly's default look: kilobytes the page draws without
        return spec

    charts = {
        "history": figure(visualization.plot_optimization_history) if complete else None,
        "parallel": figure(visualization.plot_parallel_coordinate) if complete else None,
        "importances": figure(visualization.plot_param_importances) if complete >= 2 and len(
            sweep["params"]["search_space"]) >= 2 else None,
    }
    return {"sweep": sweep_id, "study": study.study_name, "trials": trials, "charts": charts}
