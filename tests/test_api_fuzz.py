"""Property-based requests generated from our own OpenAPI document (schemathesis): whatever the
input, the API never answers with a server error, and every error has the JSON error body."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from fiscobridge.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


def error_body_shape(ctx, response, case):
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "details"}, body


@pytest.fixture
def auth_headers(request, customer, reseller):
    return {"Authorization": f"Bearer {customer.token}"}, {"Authorization": f"Bearer {reseller.token}"}


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail(case, auth_headers):
    customer_headers, partner_headers = auth_headers
    headers = partner_headers if "/partner/" in case.path else customer_headers
    response = case.call(headers=headers)
    case.validate_response(response, checks=[not_a_server_error])
    error_body_shape(None, response, case)
