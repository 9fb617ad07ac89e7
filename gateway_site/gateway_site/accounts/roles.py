"""Roles are Django groups; each includes the ones before it. Every role check of the API, the pages and the
scenarios is made here: `has_role`, `require_role`, `sees_everyones`, the DRF permission `RoleRequired` and the
page decorator `role_required`."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

ROLES = ("viewer", "ml_engineer", "admin")
ROLE_TITLES = {"viewer": "Viewer", "ml_engineer": "ML engineer", "admin": "Admin"}


def role_of(user) -> str | None:
    """The highest role the user holds (superusers are admins), or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return "admin"
    cached = getattr(user, "_platform_role", False)
    if cached is not False:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = next((r for r in reversed(ROLES) if r in names), None)
    user._platform_role = role
    return role


def has_role(user, role: str) -> bool:
    current = role_of(user)
    return current is not None and ROLES.index(current) >= ROLES.index(role)


def require_role(user, role: str) -> None:
    """A 403 (the API's JSON, the pages' 403 page) unless `user` holds `role` or a higher one."""
    if not has_role(user, role):
        raise PermissionDenied(f"This needs the {role} role.")


def sees_everyones(user) -> bool:
    """Engineers see every user's predictions and runs; viewers only their own."""
    return has_role(user, "ml_engineer")


def RoleRequired(role: str) -> type[BasePermission]:  # noqa: N802 - used like a class
    """A DRF permission class admitting users with `role` or a higher one."""

    class _RoleRequired(BasePermission):
        message = f"This needs the {role} role."

        def has_permission(self, request, view) -> bool:
            return bool(request.user and request.user.is_authenticated and has_role(request.user, role))

    _RoleRequired.__name__ = f"RoleRequired_{role}"
    return _RoleRequired


def role_required(role: str):
    """A page for `role` and above (after login); others get the 403 page."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            require_role(request.user, role)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def roles_context(request) -> dict:
    user = getattr(request, "user", None)
    role = role_of(user) if user is not None else None
    return {
        "role": role,
        "role_title": ROLE_TITLES.get(role or "", ""),
        "is_engineer": role in ("ml_engineer", "admin"),
        "is_admin": role == "admin",
    }
