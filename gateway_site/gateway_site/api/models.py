from django.conf import settings
from django.db import models


class IdempotentRequest(models.Model):
    """A scenario POST sent with an `Idempotency-Key`: the first answer is replayed for repeats."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=200)
    path = models.CharField(max_length=200)
    request_sha256 = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True, help_text="empty while the first request is in flight")
    body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_request_per_idempotency_key")]


class RateCounter(models.Model):
    """What one user spent of one limit (api/limits.py) in the current window, shared by every gateway process."""

    key = models.CharField(max_length=200, primary_key=True, help_text="<limit>:<username>")
    used = models.PositiveIntegerField()
    window_end = models.FloatField(help_text="Unix time when the count starts again from zero")
