"""`manage.py prune_history`: delete predictions older than `storage.prediction_retention_days` (or --days).

Run it daily (cron, a systemd timer, or `docker compose run --rm storage python storage_svc/manage.py prune_history`).
A corrected prediction lives on as its sample; reports and model versions are not touched.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from storage_svc.registry import services


class Command(BaseCommand):
    help = "Delete predictions older than the retention period (storage.prediction_retention_days)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help=f"keep this many days (default: prediction_retention_days, "
                                 f"{settings.PREDICTION_RETENTION_DAYS}; 0 keeps everything)")

    def handle(self, *args, days=None, **options):
        days = settings.PREDICTION_RETENTION_DAYS if days is None else days
        if days < 0:
            raise CommandError("--days must be 0 (keep everything) or more")
        if days == 0:
            self.stdout.write("retention is 0 days: every prediction is kept")
            return
        deleted = services.predictions_prune(older_than_days=days)
        self.stdout.write(f"deleted {deleted} predictions older than {days} days")
