"""Account changes made by admins, each recorded in the audit log."""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.db import transaction

from gateway_site.accounts.models import audit
from gateway_site.accounts.roles import ROLES, role_of
from kit.errors import AppError


@transaction.atomic
def account_set_role(*, actor: User, user: User, role: str) -> None:
    """Give `user` exactly one role group; an admin cannot demote themselves (and lock everyone out)."""
    if role not in ROLES:
        raise AppError("invalid", f"role must be one of {', '.join(ROLES)}")
    if user.pk == actor.pk and role != "admin":
        raise AppError("invalid", "You cannot remove your own admin role; ask another admin.")
    previous = role_of(user)
    user.groups.set([Group.objects.get(name=role)])  # the API's remembered token checks forget it (accounts.apps)
    audit(actor=actor.get_username(), action="account.role", target=f"user:{user.get_username()}",
          details={"from": previous, "to": role})
