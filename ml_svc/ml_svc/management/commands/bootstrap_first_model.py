"""First start: if nothing serves yet, queue collect mnist-5k -> train -> promote."""

from django.conf import settings
from django.core.management.base import BaseCommand

from kit.errors import AppError
from ml_svc import jobs, peers


class Command(BaseCommand):
    help = "Queue the first model's collect/train/promote job unless a production model exists."

    def add_arguments(self, parser):
        parser.add_argument("--source", default="mnist-5k")
        parser.add_argument("--epochs", type=int, default=10)

    def handle(self, *args, source, epochs, **options):
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
        hyperparameters = {"epochs": epochs}
        jobs.bootstrap_first_model.enqueue(source, settings.DEFAULT_ARCHITECTURE, hyperparameters)
        self.stdout.write(f"queued: collect {source}, train {settings.DEFAULT_ARCHITECTURE}, promote")
