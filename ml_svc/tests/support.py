"""What several of ml_svc's test modules share (fixtures are in conftest.py)."""

from ml_svc.architectures import get_architecture, validate_hyperparameters

CNN = get_architecture("cnn")
HP = validate_hyperparameters(CNN, {"epochs": 3, "width": 16})


def register(storage, weights: bytes) -> int:
    blob = storage.put_blob(weights)
    version = storage.create_model_version({"architecture": "cnn", "hyperparameters": HP, "weights_sha256": blob["sha256"]})
    return version["id"]


def forget_studies() -> None:
    """Sweeps' studies live in the test database beside the queue, across tests: a test starts without any."""
    import optuna

    from ml_svc import sweeps

    store = sweeps.study_storage()
    for summary in optuna.get_all_study_summaries(store):
        optuna.delete_study(study_name=summary.study_name, storage=store)
