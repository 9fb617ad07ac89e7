from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User

from gateway_site.accounts.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "target"]
    list_filter = ["action"]
    readonly_fields = ["actor", "action", "target", "details", "created_at"]


admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(UserAdmin):
    """Users for the `admin` role: add them, set their role (group), deactivate them. Only a superuser grants
    superuser status or single permissions, and only a superuser sees or changes superusers."""

    GUARDED = ("is_superuser", "user_permissions")

    def get_queryset(self, request):
        users = super().get_queryset(request)
        return users if request.user.is_superuser else users.filter(is_superuser=False)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else (*fields, *self.GUARDED)
