"""Every API URL x method x role: who gets in. A URL missing from the table fails the test."""

import json
from urllib.parse import urlencode

import pytest
from django.urls import URLPattern, get_resolver

from tests.support import PASSWORD

ROLES = [None, "nobody", "viewer", "engineer", "admin"]
RANK = {None: 0, "nobody": 0, "viewer": 1, "engineer": 2, "admin": 3}
NEED = {"anyone": 0, "viewer": 1, "engineer": 2, "admin": 3}

# (method, path, body, the least role that may call it)
TABLE = [
    ("POST", "/api/auth/token", {"username": "viewer", "password": PASSWORD}, "anyone"),
    ("GET", "/api/health", None, "anyone"),
    ("GET", "/api/schema/", None, "anyone"),
    ("GET", "/api/docs/", None, "anyone"),
    ("DELETE", "/api/auth/token", None, "viewer"),
    ("GET", "/api/predictions", None, "viewer"),
    ("POST", "/api/predictions", {"pixels": [[0] * 28] * 28}, "viewer"),
    ("POST", "/api/predictions/1/feedback", {"label": 3}, "viewer"),
    ("GET", "/api/predictions/1/explanation", None, "viewer"),
    ("POST", "/api/predictions/batch", {"images": [{"pixels": [[0] * 28] * 28}]}, "viewer"),
    ("POST", "/api/scenarios/fine-tune", {"base_model_id": 1}, "engineer"),
    ("GET", "/api/architectures", None, "engineer"),
    ("GET", "/api/models/1/compare?with=1", None, "viewer"),
    ("GET", "/api/samples", None, "engineer"),
    ("POST", "/api/samples", {"label": 3, "pixels": [[0] * 28] * 28}, "viewer"),
    ("POST", "/api/samples/batch", {"label": 4, "images": ["AA==" * 196]}, "engineer"),
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
    ("GET", "/api/runs/5/events", None, "viewer"),
    ("GET", "/api/datasets/1/download", None, "engineer"),
    ("GET", "/api/models/1/download", None, "engineer"),
    ("GET", "/api/models/1/card", None, "engineer"),
    ("POST", "/api/scenarios/evaluate", {"model_id": 1, "dataset_id": 1}, "engineer"),
    ("GET", "/api/models/1/evaluations", None, "viewer"),
    ("POST", "/api/datasets/upload", {"file": "not a file part"}, "engineer"),
    ("POST", "/api/scenarios/infer", {"file": "not a file part"}, "viewer"),
    ("GET", "/api/runs/5/results.csv", None, "viewer"),
    ("POST", "/api/scenarios/sweep", {"dataset_id": 1, "trials": 2, "search_space": {"width": {"low": 8, "high": 12}}},
     "engineer"),
    ("GET", "/api/runs/5/sweep", None, "viewer"),
    ("GET", "/api/models/1/shadow", None, "viewer"),
    ("GET", "/api/models/1/gate", None, "viewer"),
    ("GET", "/api/rollout", None, "viewer"),
    ("POST", "/api/rollout/canary", {"share": 0.1, "reason": "test"}, "admin"),
    ("GET", "/api/models/1/drift", None, "viewer"),
    ("GET", "/api/models/1/errors?true=4&predicted=9", None, "engineer"),
    ("GET", "/api/webhooks", None, "admin"),
    ("POST", "/api/webhooks", {"url": "https://example.com/hook", "events": ["alias.moved"]}, "admin"),
    ("DELETE", "/api/webhooks/1", None, "admin"),
    ("GET", "/api/webhooks/deliveries", None, "admin"),
]


def api_routes() -> set[str]:
    resolver = get_resolver()
    api = next(p for p in resolver.url_patterns if str(p.pattern) == "api/")
    return {"/api/" + str(p.pattern).replace("<id:run_id>", "5").replace("<id:dataset_id>", "1").replace("<id:version_id>", "1").replace("<id:prediction_id>", "1").replace("<id:sample_id>", "1").replace("<id:webhook_id>", "1").replace("<report_kind:kind>", "json")
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
        # revoking one's own token (logging out) needs a token, not a role
        assert response.status_code == (401 if role is None else 204)
    else:
        assert response.status_code == (401 if role is None else 403), (role, method, path, response.status_code)
        assert response.json()["error"]["code"] in ("not_authenticated", "permission_denied")



# Every page: (method, path, form, the least role that may use it). A page missing from the table fails the test.
PAGES = [
    ("GET", "/login", None, "anyone"),
    ("POST", "/logout", None, "anyone"),
    ("GET", "/", None, "viewer"),
    ("POST", "/recognize", {"image_data": ""}, "viewer"),
    ("GET", "/model-status", None, "viewer"),
    ("POST", "/predictions/1/feedback", {"label": "3"}, "viewer"),
    ("GET", "/predictions/1/why", None, "viewer"),
    ("GET", "/history", None, "viewer"),
    ("GET", "/dashboard", None, "viewer"),
    ("GET", "/runs", None, "viewer"),
    ("GET", "/runs/5", None, "viewer"),
    ("GET", "/runs/5/row", None, "viewer"),
    ("GET", "/models", None, "viewer"),
    ("GET", "/models/compare", None, "viewer"),
    ("GET", "/models/1/report.html", None, "viewer"),
    ("GET", "/models/1/errors", None, "engineer"),
    ("POST", "/models/1/errors/review", {"label": "4", "image": "AA=="}, "engineer"),
    ("POST", "/runs/5/cancel", None, "engineer"),
    ("GET", "/datasets", None, "engineer"),
    ("POST", "/datasets/collect", {"source": "mnist-5k"}, "engineer"),
    ("GET", "/review", None, "engineer"),
    ("POST", "/review/1", {"decision": "accept"}, "engineer"),
    ("GET", "/train", None, "engineer"),
    ("GET", "/console", None, "admin"),
    ("POST", "/console/promote", {"version_id": "1", "reason": "rollback"}, "admin"),
    ("POST", "/console/role", {"user_id": "1", "role": "viewer"}, "admin"),
    ("POST", "/console/canary", {"percent": "10", "reason": "try"}, "admin"),
    ("POST", "/console/webhooks", {"url": "https://example.com/hook", "events": "alias.moved"}, "admin"),
    ("POST", "/console/webhooks/delete", {"webhook_id": "1"}, "admin"),
]


def page_routes() -> set[str]:
    resolver = get_resolver()
    web = [p for p in resolver.url_patterns if isinstance(p, URLPattern) or str(p.pattern) == ""]
    paths = set()
    for pattern in web:
        for inner in getattr(pattern, "url_patterns", [pattern]):
            text = "/" + str(inner.pattern)
            paths.add(text.replace("<id:run_id>", "5").replace("<id:prediction_id>", "1").replace("<id:sample_id>", "1")
                      .replace("<id:version_id>", "1").replace("<report_kind:kind>", "html"))
    return {p for p in paths if not p.startswith(("/api", "/static", "/metrics", "/health", "/ready", "/django-admin"))}


def test_the_page_table_covers_every_page():
    assert page_routes() - {path for _, path, _, _ in PAGES} == set()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize("method, path, form, least", PAGES, ids=[f"{m} {p}" for m, p, _, _ in PAGES])
def test_each_role_reaches_exactly_the_pages_it_may(client, users, fake_peers, role, method, path, form, least):
    if role:
        assert client.login(username=role, password=PASSWORD)
    response = client.generic(method, path, data=urlencode(form or {}), content_type="application/x-www-form-urlencoded")
    if RANK[role] >= NEED[least]:
        assert response.status_code != 403, (role, method, path)
        if path != "/logout":  # logging out ends on the login page, as it should
            assert not response.get("Location", "").startswith("/login"), (role, method, path)
    elif role is None:
        assert response.status_code == 302 and response["Location"].startswith("/login"), (method, path)
    else:
        assert response.status_code == 403 and "Not allowed" in response.content.decode(), (role, method, path)
