"""Schema fuzzing: schemathesis sends generated requests for every operation in the gateway's OpenAPI schema.

Bounded (a few examples per operation); peers are the in-memory fakes. No answer may be a 5xx, and every
answer that the schema documents must match it.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from gateway_site.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_no_generated_request_makes_the_api_fail(case, fake_peers, users):
    token, _ = Token.objects.get_or_create(user=users["admin"])
    response = case.call(headers={"Authorization": f"Token {token.key}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance])
