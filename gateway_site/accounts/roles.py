"""Roles are Django groups; each includes the ones before it."""

from __future__ import annotations

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


def roles_context(request) -> dict:
    user = getattr(request, "user", None)
    role = role_of(user) if user is not None else None
    return {
        "role": role,
        "role_title": ROLE_TITLES.get(role or "", ""),
        "is_engineer": role in ("ml_engineer", "admin"),
        "is_admin": role == "admin",
    }
