"""The worker of the task queue's `webhooks` queue: starts the chain of delivery ticks, then works that queue only
(trainings are the `default` queue's, on `db_worker`)."""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from ml_svc import webhooks


class Command(BaseCommand):
    help = "Deliver webhooks: the webhooks queue's worker (the tick that claims and sends due deliveries)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between looks at an idle queue")

    def handle(self, *args, interval, **options):
        webhooks.ensure_tick()
        call_command("db_worker", queue_name=webhooks.QUEUE, interval=interval, reload=False, startup_delay=False)
