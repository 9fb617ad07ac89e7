"""The worker of the task queue's `webhooks` queue: starts the chain of delivery ticks, then works that queue only
(trainings are the `default` queue's, on `db_worker`)."""

import logging
import threading
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from ml_svc import webhooks


class Command(BaseCommand):
    help = "Deliver webhooks: the webhooks queue's worker (the tick that claims and sends due deliveries)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between looks at an idle queue")

    def handle(self, *args, interval, **options):
        # This worker runs nothing but ticks: their every start and end would fill the log (the deliveries that
        # fail are logged as warnings by the tick itself).
        logging.getLogger("django_tasks").setLevel(logging.WARNING)
        webhooks.ensure_tick()
        threading.Thread(target=self._reseed, name="webhook-ticks", daemon=True).start()
        call_command("db_worker", queue_name=webhooks.QUEUE, interval=interval, reload=False, startup_delay=False)

    @staticmethod
    def _reseed() -> None:
        """Start the chain again should it break (a tick that could not queue the next one: a database blip)."""
        while True:
            time.sleep(webhooks.TICK_SPAN_S * 3)
            try:
                webhooks.ensure_tick()
            except Exception:  # noqa: BLE001 -- the next look tries again
                logging.getLogger(__name__).warning("could not look at the webhook ticks", exc_info=True)
            finally:
                close_old_connections()
