"""Answers of the machine hot paths (validate, activate, entitlement, lease, usage), rendered directly.

django-ninja checks a view's returned dict against its response schema before rendering it; on
these routes that check costs a large share of the request (bench/README.md). Their dicts are
built by the presenters from typed values and tests/test_hot_paths.py validates each of these
answers against its declared schema, so they are rendered as ninja's own renderer would,
without the check on every request. The routes still declare their schemas (OpenAPI document).
"""

import json

from django.http import HttpResponse
from ninja.renderers import JSONRenderer


def json_answer(data: dict, status: int = 200) -> HttpResponse:
    body = json.dumps(data, cls=JSONRenderer.encoder_class)
    return HttpResponse(body, status=status, content_type=f"{JSONRenderer.media_type}; charset=utf-8")
