"""Property-based hostile input (hypothesis) on every API operation of the gateway's schema and every page form.

Each request carries what a hostile client sends: JSON nested thousands deep, integers past 2^53 and 2^64,
characters that are digits to `str.isdigit()` but not to `int()` (`²`, Arabic-Indic digits), NUL bytes,
invalid UTF-8, NaN and 1e999, unknown fields, wrong types; in the body, the query string and the path.
No answer may be a 5xx; an API refusal is the JSON error shape; a refused request writes nothing.
Peers are the in-memory fakes, so the examples are many and fast (the end-to-end battery with real
processes is tests/e2e/test_bad_input.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from gateway_site.accounts.models import AuditEvent
from gateway_site.wsgi import application
from kit.wsgitest import call

pytestmark = pytest.mark.django_db
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "web"
EXAMPLES = settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

UNICODE_DIGITS = "²³¹١٢٣٠٤٥٦٧٨٩०१२३४५६७८९߀０１２"
hostile_text = st.one_of(
    st.text(alphabet="0123456789" + UNICODE_DIGITS + "-+.eEx \x00\t\u202e\ufeff", max_size=30),
    st.sampled_from(["", "0", "-1", "1e3", "0x1f", "NaN", "Infinity", "9" * 40, "²", "١٢", "\x00", "1\x00", "a" * 5000,
                     "%00", "../../etc/passwd", "<script>alert(1)</script>", "null", "true", "2026-13-45", "\ud7ff"]),
    st.text(max_size=40),
)
huge_ints = st.one_of(st.integers(-(2**80), 2**80), st.sampled_from([2**53, 2**53 + 1, 2**63, 2**64, 2**64 + 1,
                                                                     -(2**63) - 1, 10**100]))
scalars = st.one_of(st.none(), st.booleans(), huge_ints, st.floats(allow_nan=False, allow_infinity=False), hostile_text)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(hostile_text, inner, max_size=4)), max_leaves=12)
raw_bodies = st.one_of(
    st.integers(33, 20_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(33, 20_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.sampled_from([b"", b"\x00", b'{"a": "\\u0000"}', b'{"pixels": NaN}', b'{"x": 1e999}', b"\xff\xfe\xfa",
                     b'{"a": 1', b"[]", b"null", b'"text"', b"true", b"5", b"-1.5", b"18446744073709551617", b'{"dataset_id": 18446744073709551617}',
                     b'{"label": "\xd9\xa3"}']),
    st.binary(max_size=200),
)


def json_bodies(fields: list[str]):
    known = st.fixed_dictionaries({}, optional={field: values for field in fields})
    return st.one_of(raw_bodies, known.map(lambda body: json.dumps(body).encode()),
                     st.dictionaries(hostile_text, values, max_size=4).map(lambda body: json.dumps(body).encode()))


path_segments = st.one_of(huge_ints.map(str), hostile_text.filter(lambda text: "/" not in text).map(quote))


def operations() -> list[tuple[str, str, list[str], list[str]]]:
    """(method, path template, query parameter names, body field names) of every operation in the API's schema."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            reference = body.get("$ref", "").rsplit("/", 1)[-1]
            fields = list(schema["components"]["schemas"].get(reference, {}).get("properties", {}))
            found.append((method.upper(), path, query, fields))
    return found


OPERATIONS = operations()
# What every list endpoint takes, documented or not: the same hostile values go there too.
COMMON_QUERY = ["page", "page_size", "digit", "model", "user", "corrected", "since", "until", "kind", "status",
                "created_by", "version", "source", "split", "architecture", "format"]


def writes(fake_peers) -> tuple:
    storage = fake_peers["storage"]
    return (len(storage.predictions), len(storage.samples), len(storage.aliases), repr(storage.versions),
            repr(storage.runs), AuditEvent.objects.count(), Token.objects.count(), len(fake_peers["collector"].uploaded))


def test_the_schema_has_every_api_route():
    from gateway_site.api.urls import urlpatterns

    routes = {"/api/" + re.sub(r"<\w+:(\w+)>", r"{\1}", str(p.pattern)) for p in urlpatterns} - {"/api/schema/", "/api/docs/"}
    assert routes == {path for _, path, _, _ in OPERATIONS}
    assert ("POST", "/api/predictions") in {(method, path) for method, path, _, _ in OPERATIONS}


@pytest.mark.parametrize("method, path, query, fields", OPERATIONS, ids=[f"{m} {p}" for m, p, _, _ in OPERATIONS])
@EXAMPLES
@given(data=st.data())
def test_no_hostile_request_to_an_api_operation_is_a_5xx_and_a_refusal_writes_nothing(
        data, method, path, query, fields, fake_peers, users):
    token, _ = Token.objects.get_or_create(user=users["admin"])
    concrete = re.sub(r"\{[^}]+\}", lambda _: data.draw(path_segments), path)
    params = data.draw(st.dictionaries(st.sampled_from(query + COMMON_QUERY), hostile_text, max_size=4))
    body = data.draw(json_bodies(fields)) if method in ("POST", "PATCH", "PUT") else b""
    before = writes(fake_peers)
    answer = call(application, method, concrete, body, headers={"Authorization": f"Token {token.key}"},
                  query=urlencode(params))
    assert answer.status < 500, (method, concrete, params, body[:200], answer.body[:300])
    if answer.status >= 400:
        error = answer.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
        assert writes(fake_peers) == before, f"a refused {method} {concrete} wrote something"


# Every form and filter of the pages: (method, path template, its fields). The test below checks that the
# templates have no field this list lacks.
PAGE_FORMS = [
    ("POST", "/login", ["username", "password", "next"]),
    ("POST", "/recognize", ["image_data", "image_file"]),
    ("GET", "/model-status", ["for"]),
    ("POST", "/predictions/{id}/feedback", ["label"]),
    ("GET", "/history", ["digit", "model", "run", "user", "corrected", "since", "until", "page", "format"]),
    ("POST", "/api/scenarios/infer", ["file", "model_id"]),
    ("POST", "/api/datasets/upload", ["file", "name"]),
    ("POST", "/datasets/collect", ["source", "split", "batch_size", "max_samples"]),
    ("GET", "/review", ["status", "page", "order", "live"]),
    ("POST", "/review/{id}", ["decision"]),
    ("GET", "/runs", ["kind", "status", "created_by", "page"]),
    ("GET", "/runs/{id}", []),
    ("GET", "/runs/{id}/row", []),
    ("POST", "/runs/{id}/cancel", []),
    ("GET", "/train", ["mode", "architecture"]),
    ("POST", "/train", ["mode", "architecture", "dataset_id", "base_model_id", "epochs", "learning_rate", "augment",
                        "replay_size", "search_space", "hyperparameters", "trials", "max_parallel"]),
    ("GET", "/models/compare", ["candidate", "baseline"]),
    ("GET", "/models", ["architecture", "page"]),
    ("GET", "/models/{id}/report.pdf", []),
    ("GET", "/models/{id}/errors", ["source", "true", "predicted"]),
    ("POST", "/models/{id}/errors/review", ["image", "label"]),
    ("POST", "/console/promote", ["version_id", "alias", "reason", "override"]),
    ("POST", "/console/canary", ["percent", "reason"]),
    ("POST", "/console/webhooks", ["url", "events"]),
    ("POST", "/console/webhooks/delete", ["webhook_id"]),
    ("POST", "/console/role", ["user_id", "role"]),
    ("GET", "/dashboard", []),
    ("GET", "/datasets", ["source", "split", "page"]),
]
NOT_INPUTS = {"viewport", "htmx-config", "{{ f.name }}", "csrfmiddlewaretoken"}


def test_the_page_forms_above_cover_every_field_of_the_templates():
    named = set()
    for template in TEMPLATES.glob("*.html"):
        named |= set(re.findall(r'name="([^"]+)"', template.read_text()))
    covered = {field for _, _, fields in PAGE_FORMS for field in fields}
    assert named - NOT_INPUTS - covered == set()


@pytest.mark.parametrize("method, path, fields", PAGE_FORMS, ids=[f"{m} {p}" for m, p, _ in PAGE_FORMS])
@EXAMPLES
@given(data=st.data())
def test_no_hostile_page_form_is_a_5xx_and_a_refusal_writes_nothing(data, method, path, fields, client, fake_peers,
                                                                     users):
    from tests.support import PASSWORD

    client.login(username="admin", password=PASSWORD)
    concrete = re.sub(r"\{[^}]+\}", lambda _: data.draw(path_segments), path)
    form = data.draw(st.fixed_dictionaries({}, optional={field: st.one_of(hostile_text, st.lists(hostile_text, max_size=3))
                                                         for field in fields}))
    headers = {"HTTP_HX_REQUEST": "true"} if data.draw(st.booleans()) else {}
    before = writes(fake_peers)
    if method == "GET":
        answer = client.get(concrete, form, **headers)
    else:
        answer = client.post(concrete, form, **headers)
    assert answer.status_code < 500, (method, concrete, form, answer.content[:300])
    if answer.status_code >= 400:
        assert writes(fake_peers) == before, f"a refused {method} {concrete} wrote something"
