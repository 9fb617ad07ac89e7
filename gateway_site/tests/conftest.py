import threading

import pytest
from django.contrib.auth.models import Group, User
from django.core import signals
from django.db import close_old_connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from gateway_site import peers
from tests.fakes import FakeCollector, FakeML, FakeStorage
from tests.support import PASSWORD

# username -> group; `nobody` has an account but no role (reaches only login and logout)
PERSONAS = {"viewer": "viewer", "other_viewer": "viewer", "engineer": "ml_engineer", "admin": "admin", "nobody": None}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings, request):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if "throttled_logins" not in request.keywords:
        # Django's test client logs in without a request, which django-axes refuses; only the
        # throttling tests (marked) keep it.
        settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]


@pytest.fixture(autouse=True)
def keep_the_test_database_connection():
    """Requests sent straight to the WSGI application (the hot path, the schema fuzzer) must not close the
    connection that holds the test's transaction; Django's own test client does the same."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def no_rate_limits(settings):
    """Rate limits count in the database from a thread of their own: only tests/test_limits.py turns them on."""
    from gateway_site.scenarios import limits

    settings.RATE_LIMITS = dict.fromkeys(settings.RATE_LIMITS, 0)
    limits._refused_until.clear()


@pytest.fixture
def fake_peers(monkeypatch):
    fakes = {"storage": FakeStorage(), "ml": FakeML(), "collector": FakeCollector()}
    for name, fake in fakes.items():
        monkeypatch.setattr(peers, name, lambda fake=fake: fake)
    monkeypatch.setattr(peers, "all_peers", lambda: {f.service: f for f in fakes.values()})
    return fakes


@pytest.fixture
def users(db):
    made = {}
    for username, role in PERSONAS.items():
        user = User.objects.create_user(username=username, password=PASSWORD)
        if role:
            user.groups.add(Group.objects.get(name=role))
        made[username] = user
    return made


@pytest.fixture
def api_as(users):
    """An API client authenticated with the token of a persona (None: anonymous)."""

    def make(username: str | None) -> APIClient:
        client = APIClient()
        if username:
            token, _ = Token.objects.get_or_create(user=users[username])
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture(autouse=True)
def short_event_streams(monkeypatch):
    """A stream of a run that never ends (the fakes' runs do not move by themselves) ends within a second here,
    as it would after 15 minutes for a browser, which then reconnects."""
    from gateway_site.scenarios import events

    monkeypatch.setattr(events, "MAX_STREAM_S", 1.0)
    # A WSGI server closes every answer; Django's test client does not close a stream a test left unread.
    monkeypatch.setattr(events, "_open", threading.BoundedSemaphore(events.MAX_STREAMS))
