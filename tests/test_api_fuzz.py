"""Property-based requests generated from our own OpenAPI document (schemathesis): whatever the
input and whoever asks, the API never answers with a server error, and every error has the JSON
error body (issue 10, item 10).

Every operation is fuzzed twice, with a customer's token and with a partner's, so the wrong kind
of caller is fuzzed as much as the right one. Path ids are sometimes aimed at real objects (the
caller's own, or another tenant's) instead of generated text, so the code behind a found object
runs too, and another tenant's object must never answer 2xx. The budget (examples, phases,
derandomize) and why: docs/decisions.md, "API fuzzing in CI".
"""

import gc
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from fiscobridge.wsgi import application
from tests.factories import owned_objects

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture(autouse=True)
def _no_garbage_collection_during_the_draws():
    """Collect what earlier tests of this process left, then no automatic collection until the
    test ends.

    Browser tests leave Playwright's asyncio tasks behind. Collected in the middle of a draw, each
    one's finalizer runs Python code (it logs "Task was destroyed but it is pending!"); when that
    happens inside `ast.parse` (Hypothesis describing a lambda, pytest rewriting a lazily imported
    module), CPython 3.11's AST constructor finds its recursion depth changed and raises
    "SystemError: AST constructor recursion depth mismatch": a failure with no request made (CI
    saw it twice on the first fuzzed operation).
    """
    gc.collect()
    gc.disable()
    yield
    gc.enable()


# Per operation and per kind of caller: the issue asks for at least 100. CI runs the same examples
# every time (derandomized); FUZZ_EXAMPLES=2000 FUZZ_RANDOM=1 explores afresh, by hand or nightly.
EXAMPLES = max(100, int(os.environ.get("FUZZ_EXAMPLES", "100")))
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"


def error_body_shape(response) -> None:
    if response.status_code >= 400:
        [content_type] = response.headers.get("content-type", [""])  # schemathesis: lower-case names, lists
        assert content_type.startswith("application/json"), response.headers
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "details"}, body
        assert isinstance(body["error"]["code"], str) and body["error"]["code"], body


@pytest.fixture
def world(customer, outsider, reseller, other_reseller, issue):
    """Objects behind every kind of id: the customer's and reseller's own, and another tenant's."""
    mine = owned_objects(customer, reseller, issue)
    theirs = owned_objects(outsider, other_reseller, lambda **kw: issue(partner=other_reseller.partner, **kw))
    return {
        "customer": customer.token,
        "partner": reseller.token,
        "own": mine,
        "other": theirs,
    }


def aim_path_ids(case, data, world) -> str:
    """Replace a generated path id by a real one (own or another tenant's) some of the time;
    returns which was used ("generated", "own" or "other")."""
    if not case.path_parameters:
        return "generated"
    target = data.draw(st.sampled_from(["generated", "own", "other"]), label="path id")
    if target == "generated":
        return target
    objects = world[target]
    for name in case.path_parameters:
        if name == "key_id":
            case.path_parameters[name] = objects["key_id"]
        elif "/pos/" in case.path:
            case.path_parameters[name] = objects["certificate"]
        else:
            case.path_parameters[name] = objects["connection"]
    return target


@pytest.mark.parametrize("kind", ["customer", "partner"])
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@schema.given(data=st.data())
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_api_fail(case, data, kind, world):
    target = aim_path_ids(case, data, world)
    response = case.call(headers={"Authorization": f"Bearer {world[kind]}"})
    case.validate_response(response, checks=[not_a_server_error])
    error_body_shape(response)
    if target == "other":
        # Another tenant's object is never served: 404 (or refused before the lookup).
        assert response.status_code >= 400, (case.method, case.path, response.status_code)
