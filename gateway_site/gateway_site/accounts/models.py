import logging

from django.db import DatabaseError, connection, models

logger = logging.getLogger(__name__)


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


def audit(*, actor: str, action: str, target: str = "", details: dict | None = None) -> AuditEvent | None:
    """Record who did what. The action has happened by then (in storage_svc, say): if the gateway's database is
    away for a moment, the event goes to the log instead of turning a done action into a 503 that invites a retry."""
    try:
        return AuditEvent.objects.create(actor=actor, action=action, target=target, details=details or {})
    except DatabaseError as exc:
        connection.close()  # a fresh connection for the next request
        logger.warning("audit event kept in the log only, the database being unavailable (%s): %s",
                       str(exc).strip(), {"actor": actor, "action": action, "target": target, "details": details or {}})
        return None
