"""Accounts: revocable tokens, login throttling, session rotation, CSRF, deploy checks, idempotent scenarios."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.support import PASSWORD

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_a_revoked_token_no_longer_opens_the_api(api_as, fake_peers):
    client = api_as("viewer")
    assert client.get("/api/runs").status_code == 200
    assert client.delete("/api/auth/token").status_code == 204
    assert client.get("/api/runs").status_code == 401


@pytest.mark.throttled_logins
def test_five_failed_logins_lock_that_account_for_that_address(client, users):
    for _ in range(5):
        bad = client.post("/api/auth/token", {"username": "viewer", "password": "guess"}, content_type="application/json")
        assert bad.status_code in (401, 429)
    locked = client.post("/api/auth/token", {"username": "viewer", "password": PASSWORD}, content_type="application/json")
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "locked_out" and locked["Retry-After"]
    page = client.post("/login", {"username": "viewer", "password": PASSWORD})
    assert page.status_code == 429 and "Too many failed logins" in page.content.decode()
    other = client.post("/api/auth/token", {"username": "engineer", "password": PASSWORD}, content_type="application/json")
    assert other.status_code == 200, "another account is not locked"


@pytest.mark.throttled_logins
def test_a_successful_api_login_resets_the_failure_count(client, users):
    def token(password):
        return client.post("/api/auth/token", {"username": "viewer", "password": password}, content_type="application/json")

    for _ in range(4):
        assert token("guess").status_code == 401
    assert token(PASSWORD).status_code == 200
    for _ in range(4):
        assert token("guess").status_code == 401, "four failures after a success are not a lockout"
    assert token(PASSWORD).status_code == 200


def test_the_session_key_changes_at_login_and_dies_at_logout(client, users, fake_peers):
    client.get("/login")
    before = client.cookies.get("sessionid")
    client.post("/login", {"username": "viewer", "password": PASSWORD})
    session = client.cookies["sessionid"].value
    assert before is None or before.value != session
    stolen = Client()
    stolen.cookies["sessionid"] = session
    assert stolen.get("/history").status_code == 200
    client.post("/logout")
    assert stolen.get("/history").status_code == 302, "the old session cookie no longer logs anyone in"


def test_forms_and_htmx_posts_need_the_csrf_token(users, fake_peers):
    browser = Client(enforce_csrf_checks=True)
    assert browser.post("/login", {"username": "viewer", "password": PASSWORD}).status_code == 403
    browser.get("/login")
    token = browser.cookies["csrftoken"].value
    assert browser.post("/login", {"username": "viewer", "password": PASSWORD, "csrfmiddlewaretoken": token}).status_code == 302
    assert browser.post("/recognize", {"image_data": ""}, HTTP_HX_REQUEST="true").status_code == 403
    with_header = browser.post("/recognize", {"image_data": ""}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value)
    assert with_header.status_code == 200


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {**os.environ, "GATEWAY_HTTPS": "true", "GATEWAY_DEBUG": "false", "SECRET_KEY": "k" * 20 + "-Zq8!x@long-random-secret-value-0042",
           "SERVICE_TOKEN": "s" * 32, "GATEWAY_ALLOWED_HOSTS": "digits.example.org", "PYTHONPATH": str(ROOT),
           "GATEWAY_LOG_FILE": str(tmp_path / "gateway.jsonl")}
    done = subprocess.run([sys.executable, str(ROOT / "gateway_site" / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_same_idempotency_key_creates_one_run(api_as, fake_peers, monkeypatch):
    started = []
    original = fake_peers["ml"].start_training
    monkeypatch.setattr(fake_peers["ml"], "start_training", lambda **p: started.append(p) or original(**p))
    client = api_as("engineer")
    first = client.post("/api/scenarios/train-model", {"dataset_id": 1}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    again = client.post("/api/scenarios/train-model", {"dataset_id": 1}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true" and len(started) == 1
    reused = client.post("/api/scenarios/train-model", {"dataset_id": 2}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert reused.status_code == 422 and len(started) == 1
    client.post("/api/scenarios/train-model", {"dataset_id": 1}, format="json")
    client.post("/api/scenarios/train-model", {"dataset_id": 1}, format="json")
    assert len(started) == 3, "without a key every POST is its own run"


def test_a_failed_first_attempt_does_not_burn_the_key(api_as, fake_peers):
    client = api_as("engineer")
    fake_peers["ml"].down = True
    assert client.post("/api/scenarios/collect-and-store", {"source": "mnist-5k"}, format="json", HTTP_IDEMPOTENCY_KEY="k2").status_code == 503
    fake_peers["ml"].down = False
    assert client.post("/api/scenarios/collect-and-store", {"source": "mnist-5k"}, format="json", HTTP_IDEMPOTENCY_KEY="k2").status_code == 202


def test_an_admin_manages_users_and_their_roles_in_the_django_admin(client, users):
    from django.contrib.auth.models import Group

    admin = users["admin"]
    admin.is_staff = True
    admin.save()
    assert client.login(username="admin", password=PASSWORD)
    listing = client.get("/django-admin/auth/user/")
    assert listing.status_code == 200 and b"nobody" in listing.content
    assert client.get("/django-admin/authtoken/tokenproxy/").status_code == 200
    assert client.get("/django-admin/axes/accessattempt/").status_code == 200
    nobody = users["nobody"]
    form = {"username": "nobody", "is_active": "on", "groups": [Group.objects.get(name="viewer").pk],
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00"}
    changed = client.post(f"/django-admin/auth/user/{nobody.pk}/change/", form)
    assert changed.status_code == 302, changed.content[:2000]
    assert list(nobody.groups.values_list("name", flat=True)) == ["viewer"]
    assert client.get("/django-admin/auth/group/1/delete/").status_code == 403, "roles themselves are not the admin's to delete"


def test_an_engineer_who_is_staff_still_cannot_manage_users(client, users):
    engineer = users["engineer"]
    engineer.is_staff = True
    engineer.save()
    assert client.login(username="engineer", password=PASSWORD)
    assert client.get("/django-admin/auth/user/").status_code == 403


def test_an_admin_cannot_make_anyone_a_superuser_or_see_a_superuser(client, users, django_user_model):
    admin = users["admin"]
    admin.is_staff = True
    admin.save()
    root = django_user_model.objects.create_superuser("root", password="another-long-password-1")
    assert client.login(username="admin", password=PASSWORD)
    assert b"root" not in client.get("/django-admin/auth/user/").content
    assert client.get(f"/django-admin/auth/user/{root.pk}/change/").status_code in (302, 404)
    form = {"username": "admin", "is_active": "on", "is_staff": "on", "is_superuser": "on",
            "groups": [admin.groups.get().pk], "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00"}
    assert client.post(f"/django-admin/auth/user/{admin.pk}/change/", form).status_code == 302
    admin.refresh_from_db()
    assert not admin.is_superuser and admin.user_permissions.count() == 0


def test_a_token_deleted_in_the_django_admin_stops_working_at_once(users, fake_peers):
    from rest_framework.authtoken.models import Token

    from gateway_site.wsgi import application
    from kit.wsgitest import call

    token = Token.objects.create(user=users["viewer"])
    headers = {"Authorization": f"Token {token.key}"}
    digit = {"pixels": [[0] * 28] * 10 + [[0] * 13 + [255] * 2 + [0] * 13] * 8 + [[0] * 28] * 10}
    assert call(application, "POST", "/api/predictions", digit, headers=headers).status == 201
    token.delete()  # what the admin's delete action does
    assert call(application, "POST", "/api/predictions", digit, headers=headers).status == 401


@pytest.mark.parametrize("peer, real_ip, counted", [
    ("127.0.0.1", "203.0.113.7", "203.0.113.7"),    # through the front: the client it saw
    ("198.51.100.9", "203.0.113.7", "198.51.100.9"),  # straight from a client: its own header is not believed
    ("127.0.0.1", "not-an-address", "127.0.0.1"),    # the front never sends that: the peer counts
])
def test_the_lockout_counts_the_address_the_front_saw_only_from_a_trusted_front(rf, peer, real_ip, counted):
    from gateway_site.accounts.lockout import client_ip

    request = rf.post("/login", REMOTE_ADDR=peer, HTTP_X_REAL_IP=real_ip)
    assert client_ip(request) == counted
