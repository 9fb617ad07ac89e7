"""The `admin` role manages accounts in /django-admin/: users and their roles, tokens, and login lockouts."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# app label -> model -> the actions the admin role may take
GRANTS = {
    "auth": {"user": ("view", "add", "change", "delete"), "group": ("view",)},
    "authtoken": {"token": ("view", "delete"), "tokenproxy": ("view", "delete")},
    "axes": {"accessattempt": ("view", "delete"), "accessfailurelog": ("view",), "accesslog": ("view",)},
}


def grant(apps, schema_editor):
    # Permissions are made after the last migration; make them now so that they can be granted here.
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admin = Group.objects.get(name="admin")
    for app_label, models in GRANTS.items():
        for model, actions in models.items():
            codenames = [f"{action}_{model}" for action in actions]
            admin.permissions.add(*Permission.objects.filter(content_type__app_label=app_label,
                                                             content_type__model=model, codename__in=codenames))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_role_groups"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("axes", "0010_accessattemptexpiration"),
    ]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
