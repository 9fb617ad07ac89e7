"""First start: if nothing serves yet, queue collect mnist-5k -> train (within a time budget) -> promote."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kit.errors import PeerUnavailable
from ml_svc import jobs, peers


class Command(BaseCommand):
    help = "Queue the first model's collect/train/promote job unless a production model exists."

    def add_arguments(self, parser):
        parser.add_argument("--source", default="mnist-5k")
        parser.add_argument("--epochs", type=int, default=None, help="train this many epochs instead of a time budget")
        parser.add_argument("--time-budget", type=int, default=settings.FIRST_MODEL_TIME_BUDGET_S,
                            help="seconds the first training may take on this CPU (default: ml.first_model_time_budget_s)")
        parser.add_argument("--wait", type=float, default=0.0, help="wait up to this many seconds for storage_svc")

    def handle(self, *args, source, epochs, time_budget, wait, **options):
        deadline = time.monotonic() + wait
        while True:  # started beside the services by `make run`: storage may still be starting
            try:
                peers.storage().ready()
                break
            except PeerUnavailable:
                if time.monotonic() > deadline:
                    raise CommandError("storage_svc is not ready; no first model was queued") from None
                time.sleep(0.3)
        serving = peers.storage().production_version()
        if serving is not None:
            self.stdout.write(f"production already serves {serving['version']}; nothing to do")
            return
        if any(peers.storage().list_runs(created_by="system", status=status)["count"] for status in ("queued", "running")):
            self.stdout.write("a first-start job is already on its way")
            return
        hyperparameters = {"epochs": epochs} if epochs else {"time_budget_s": time_budget}
        jobs.bootstrap_first_model.enqueue(source, settings.DEFAULT_ARCHITECTURE, hyperparameters)
        self.stdout.write(f"queued: collect {source}, train {settings.DEFAULT_ARCHITECTURE}, promote")
