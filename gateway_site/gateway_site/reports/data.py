"""Everything a model report shows, gathered from storage (cheap) — the comparison comes at render time."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib.metadata import PackageNotFoundError, version

from gateway_site import peers

SOFTWARE = ("django", "torch", "numpy", "safetensors", "weasyprint")


def software_versions() -> dict:
    found = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def report_inputs(version_id: int) -> dict:
    """The version, its datasets, its alias history, what serves now, and the software."""
    storage = peers.storage()
    model = storage.get_model_version(version_id)
    datasets = [storage.get_dataset(dataset_id) for dataset_id in model["datasets"]]
    ledger = storage.alias_ledger(version=version_id, page_size=200)["results"]
    evaluations = storage.evaluations(version_id, page_size=50)["results"]
    serving = storage.production_version()
    production = serving["id"] if serving else None
    return {
        "model": model,
        "datasets": datasets,
        "ledger": ledger,
        "evaluations": evaluations,
        "production_id": production,
        "software": software_versions(),
    }


def inputs_sha256(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
