"""Schema fuzzing: schemathesis sends generated requests for every operation in the gateway's OpenAPI schema.

Bounded (a few examples per operation); peers are the in-memory fakes (held to the peers' contracts). No answer may
be a 5xx, every answer must match the body the schema documents for it, and every JSON answer must be exactly its
contract (kit.contracts.gateway): no field the contract lacks.
"""

from urllib.parse import urlsplit

import pytest
import schemathesis
from django.urls import resolve
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from gateway_site.api.schema import contract_of
from gateway_site.wsgi import application
from kit.contracts import check

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_no_generated_request_makes_the_api_fail(case, fake_peers, users):
    token, _ = Token.objects.get_or_create(user=users["admin"])
    response = case.call(headers={"Authorization": f"Token {token.key}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance])
    media_type = response.headers.get("Content-Type", [""])[0].split(";")[0]
    view = resolve(urlsplit(response.request.url).path).func if response.status_code < 400 else None
    shape = contract_of(view, case.method.upper(), response.status_code, media_type)
    if media_type == "application/json" and shape is not None:
        check(response.json(), shape, f"{case.method.upper()} {case.path} {response.status_code}")
