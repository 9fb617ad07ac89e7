from rest_framework.permissions import BasePermission

from accounts.roles import has_role


def RoleRequired(role: str) -> type[BasePermission]:  # noqa: N802 - used like a class
    """A DRF permission class admitting users with `role` or a higher one."""

    class _RoleRequired(BasePermission):
        message = f"This needs the {role} role."

        def has_permission(self, request, view) -> bool:
            return bool(request.user and request.user.is_authenticated and has_role(request.user, role))

    _RoleRequired.__name__ = f"RoleRequired_{role}"
    return _RoleRequired
