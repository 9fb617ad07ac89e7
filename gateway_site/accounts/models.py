from django.db import models


class AuditEvent(models.Model):
    """Every state change a user causes through the gateway: who, what, on what, when."""

    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=60)
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"


def audit(*, actor: str, action: str, target: str = "", details: dict | None = None) -> AuditEvent:
    return AuditEvent.objects.create(actor=actor, action=action, target=target, details=details or {})
