"""storage_svc's Django admin throttles its login like the gateway: five failures lock that username out."""

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_the_admin_login_locks_a_username_out_after_five_failures(client):
    User.objects.create_superuser("operator", password="the-right-password-123")
    for _ in range(4):
        failed = client.post("/admin/login/?next=/admin/", {"username": "operator", "password": "wrong"})
        assert failed.status_code == 200 and b"Please enter the correct username" in failed.content
    assert client.post("/admin/login/?next=/admin/", {"username": "operator", "password": "wrong"}).status_code == 429
    locked = client.post("/admin/login/?next=/admin/", {"username": "operator", "password": "the-right-password-123"})
    assert locked.status_code == 429, "even the right password is refused while locked out"
    assert not client.get("/admin/").wsgi_request.user.is_authenticated


def test_the_admin_login_still_lets_the_right_password_in(client):
    User.objects.create_superuser("operator", password="the-right-password-123")
    answer = client.post("/admin/login/?next=/admin/", {"username": "operator", "password": "the-right-password-123"})
    assert answer.status_code == 302 and answer["Location"] == "/admin/"
