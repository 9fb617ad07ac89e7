"""Every API URL x method x role: who gets in. A URL missing from the table fails the test."""

import json

import pytest
from django.urls import URLPattern, get_resolver

from tests.conftest import PASSWORD

ROLES = [None, "viewer", "engineer", "admin"]
RANK = {None: 0, "viewer": 1, "engineer": 2, "admin": 3}
NEED = {"anyone": 0, "viewer": 1, "engineer": 2, "admin": 3}

# (method, path, body, the least role that may call it)
TABLE = [
    ("POST", "/api/auth/token", {"username": "viewer", "password": PASSWORD}, "anyone"),
    ("GET", "/api/health", None, "anyone"),
    ("GET", "/api/schema/", None, "anyone"),
    ("DELETE", "/api/auth/token", None, "viewer"),
    ("GET", "/api/predictions", None, "viewer"),
    ("POST", "/api/predictions", {"pixels": [[0] * 28] * 28}, "viewer"),
    ("POST", "/api/predictions/1/feedback", {"label": 3}, "viewer"),
    ("POST", "/api/predictions/batch", {"images": [{"pixels": [[0] * 28] * 28}]}, "viewer"),
    ("POST", "/api/scenarios/fine-tune", {"base_model_id": 1}, "engineer"),
    ("GET", "/api/architectures", None, "engineer"),
    ("GET", "/api/models/1/compare?with=1", None, "viewer"),
    ("GET", "/api/samples", None, "engineer"),
    ("POST", "/api/samples", {"label": 3, "pixels": [[0] * 28] * 28}, "viewer"),
    ("POST", "/api/samples/1/review", {"decision": "accept"}, "engineer"),
    ("GET", "/api/sources", None, "engineer"),
    ("GET", "/api/collector/log", None, "engineer"),
    ("POST", "/api/scenarios/collect-and-store", {"source": "mnist-5k"}, "engineer"),
    ("POST", "/api/scenarios/train-model", {"dataset_id": 1}, "engineer"),
    ("GET", "/api/runs", None, "viewer"),
    ("GET", "/api/runs/5", None, "viewer"),
    ("POST", "/api/runs/5/cancel", None, "engineer"),
    ("GET", "/api/datasets", None, "engineer"),
    ("GET", "/api/datasets/1", None, "engineer"),
    ("GET", "/api/models", None, "viewer"),
    ("GET", "/api/models/ledger", None, "viewer"),
    ("GET", "/api/models/1", None, "viewer"),
    ("PATCH", "/api/models/1", {"note": "checked"}, "engineer"),
    ("POST", "/api/models/1/promote", {"reason": "test"}, "admin"),
    ("GET", "/api/models/1/report.json", None, "viewer"),
]


def api_routes() -> set[str]:
    resolver = get_resolver()
    api = next(p for p in resolver.url_patterns if str(p.pattern) == "api/")
    return {"/api/" + str(p.pattern).replace("<int:run_id>", "5").replace("<int:dataset_id>", "1").replace("<int:version_id>", "1").replace("<int:prediction_id>", "1").replace("<int:sample_id>", "1").replace("<report_kind:kind>", "json")
            for p in api.url_patterns if isinstance(p, URLPattern)}


def test_the_table_covers_every_api_url():
    assert api_routes() == {path.split("?")[0] for _, path, _, _ in TABLE}


def test_every_method_the_api_answers_is_in_the_table(api_as, fake_peers):
    """A method a view accepts but the table does not list would go untested: the views must refuse it."""
    listed = {(m, p.split("?")[0]) for m, p, _, _ in TABLE}
    client = api_as("admin")
    for path in api_routes():
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if (method, path) in listed:
                continue
            status = client.generic(method, path).status_code
            assert status in (404, 405), (method, path, status)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize("method, path, body, least", TABLE, ids=[f"{m} {p}" for m, p, _, _ in TABLE])
def test_each_role_reaches_exactly_what_it_may(api_as, fake_peers, role, method, path, body, least):
    client = api_as(role)
    response = client.generic(method, path, data=json.dumps(body) if body else "", content_type="application/json")
    allowed = RANK[role] >= NEED[least]
    if allowed:
        assert response.status_code not in (401, 403), (role, method, path, response.content)
    elif method == "DELETE" and path == "/api/auth/token":
        assert response.status_code == 401
    else:
        assert response.status_code == (401 if role is None else 403), (role, method, path, response.status_code)
        assert response.json()["error"]["code"] in ("not_authenticated", "permission_denied")



@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/dashboard", "/history", "/runs", "/models", "/datasets", "/review", "/train", "/console"])
def test_pages_send_anonymous_visitors_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login")


@pytest.mark.django_db
@pytest.mark.parametrize("path, least", [("/datasets", "engineer"), ("/review", "engineer"), ("/train", "engineer"),
                                         ("/console", "admin")])
def test_engineer_and_admin_pages_are_a_clear_403_below_their_role(client, users, fake_peers, path, least):
    for username in ("viewer", "engineer", "admin"):
        client.login(username=username, password=PASSWORD)
        response = client.get(path)
        if RANK[username] >= NEED[least]:
            assert response.status_code == 200, (username, path)
        else:
            assert response.status_code == 403 and "Not allowed" in response.content.decode(), (username, path)
