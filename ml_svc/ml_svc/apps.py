from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml_svc"

    def ready(self) -> None:
        import torch
        from django.conf import settings

        # Serving processes use few threads so that processes x threads <= cores;
        # training jobs raise it to WORKER_TORCH_THREADS while they run.
        torch.set_num_threads(settings.TORCH_THREADS)
