"""First start: if nothing serves yet, queue collect mnist-5k -> train (within a time budget) -> promote."""

from django.conf import settings
from django.core.management.base import BaseCommand

from kit.errors import AppError
from ml_svc import jobs, peers


class Command(BaseCommand):
    help = "Queue the first model's collect/train/promote job unless a production model exists."

    def add_arguments(self, parser):
        parser.add_argument("--source", default="mnist-5k")
        parser.add_argument("--epochs", type=int, default=None, help="train this many epochs instead of a time budget")
        parser.add_argument("--time-budget", type=int, default=settings.FIRST_MODEL_TIME_BUDGET_S,
                            help="seconds the first training may take on this CPU (default: ml.first_model_time_budget_s)")

    def handle(self, *args, source, epochs, time_budget, **options):
        try:
            alias = peers.storage().get_alias("production")
        except AppError as exc:
            if exc.status != 404:
                raise
        else:
            self.stdout.write(f"production already serves {alias['model_version']['version']}; nothing to do")
            return
        if peers.storage().list_runs(created_by="system", status="running")["count"]:
            self.stdout.write("a first-start job is already running")
            return
        hyperparameters = {"epochs": epochs} if epochs else {"time_budget_s": time_budget}
        jobs.bootstrap_first_model.enqueue(source, settings.DEFAULT_ARCHITECTURE, hyperparameters)
        self.stdout.write(f"queued: collect {source}, train {settings.DEFAULT_ARCHITECTURE}, promote")
