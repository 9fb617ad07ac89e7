"""Create the role groups and the demo accounts `viewer`, `engineer`, `admin`.

The password comes from $DEMO_PASSWORD, else one is generated and printed.
Existing users keep their password unless --reset is given.
"""

import os
import secrets

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from gateway_site.accounts.roles import ROLES

DEMO_USERS = {"viewer": "viewer", "engineer": "ml_engineer", "admin": "admin"}


class Command(BaseCommand):
    help = "Create role groups and demo accounts for the local run."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="set the password of existing demo users too")

    def handle(self, *args, reset, **options):
        for role in ROLES:
            Group.objects.get_or_create(name=role)
        password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(9)
        created = []
        for username, role in DEMO_USERS.items():
            user, is_new = User.objects.get_or_create(username=username)
            if is_new or reset:
                user.set_password(password)
                user.is_staff = role == "admin"
                user.save()
                created.append(username)
            user.groups.set([Group.objects.get(name=role)])
        if created:
            self.stdout.write(f"demo accounts {', '.join(created)} — password: {password}")
        else:
            self.stdout.write("demo accounts already exist (use --reset to set a new password)")
