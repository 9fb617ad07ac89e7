"""Reads from the domain database."""

from __future__ import annotations

from django.db.models import QuerySet

from kit.errors import AppError
from registry.models import Alias, Dataset, ModelVersion, Prediction, Run, Sample
from registry.services import runs_expire_stale


def _int_filter(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise AppError("invalid", f"{name} must be an integer", details={name: value}) from None


def runs_list(*, params) -> QuerySet[Run]:
    runs_expire_stale()
    runs = Run.objects.all()
    for field in ("kind", "status", "created_by"):
        if params.get(field):
            runs = runs.filter(**{field: params[field]})
    return runs


def run_get(*, run_id: int) -> Run:
    runs_expire_stale()
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        raise AppError("not_found", f"run {run_id} does not exist", status=404)
    return run


def datasets_list(*, params) -> QuerySet[Dataset]:
    datasets = Dataset.objects.prefetch_related("parents")
    for field in ("source", "split", "sha256"):
        if params.get(field):
            datasets = datasets.filter(**{field: params[field]})
    return datasets


def dataset_get(*, dataset_id: int) -> Dataset:
    dataset = Dataset.objects.filter(pk=dataset_id).select_related("blob").first()
    if dataset is None:
        raise AppError("not_found", f"dataset {dataset_id} does not exist", status=404)
    return dataset


def model_versions_list(*, params) -> QuerySet[ModelVersion]:
    versions = ModelVersion.objects.prefetch_related("datasets", "aliases")
    if params.get("architecture"):
        versions = versions.filter(architecture=params["architecture"])
    return versions


def model_version_get(*, version_id: int) -> ModelVersion:
    version = ModelVersion.objects.prefetch_related("datasets", "aliases").filter(pk=version_id).first()
    if version is None:
        raise AppError("not_found", f"model version {version_id} does not exist", status=404)
    return version


def alias_get(*, name: str) -> Alias:
    alias = Alias.objects.select_related("model_version", "model_version__weights").filter(name=name).first()
    if alias is None:
        raise AppError("not_found", f"alias {name} points nowhere yet", status=404)
    return alias


def predictions_list(*, params) -> QuerySet[Prediction]:
    predictions = Prediction.objects.select_related("model_version")
    if params.get("user"):
        predictions = predictions.filter(user=params["user"])
    if params.get("corrected") in ("true", "false"):
        predictions = predictions.filter(corrected_label__isnull=params["corrected"] == "false")
    digit = _int_filter(params.get("digit"), "digit")
    if digit is not None:
        predictions = predictions.filter(digit=digit)
    model = _int_filter(params.get("model"), "model")
    if model is not None:
        predictions = predictions.filter(model_version_id=model)
    return predictions


def prediction_get(*, prediction_id: int) -> Prediction:
    prediction = Prediction.objects.filter(pk=prediction_id).first()
    if prediction is None:
        raise AppError("not_found", f"prediction {prediction_id} does not exist", status=404)
    return prediction


def samples_list(*, params) -> QuerySet[Sample]:
    samples = Sample.objects.all()
    for field in ("status", "user"):
        if params.get(field):
            samples = samples.filter(**{field: params[field]})
    return samples
