"""How the API reads bodies: JSON must say it is JSON, a file upload must be multipart.

django-ninja decodes any body as JSON whatever its Content-Type; a body sent as text/plain or
without a type is answered 415 instead, before it is decoded (issue 10.4). Only operations that
take a body are checked: a POST without parameters (revoke, remove) ignores what it is sent.
"""

from django.http import HttpRequest
from ninja.parser import Parser

from fiscobridge.core.errors import DomainError

JSON = "application/json"
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    http_status = 415

    def __init__(self, expected: str):
        super().__init__(f"Send the body as {expected}", details={"expected": expected})


def _media_type(request: HttpRequest) -> str:
    return request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()


class StrictParser(Parser):
    def parse_body(self, request: HttpRequest):
        if _media_type(request) != JSON:
            raise UnsupportedMediaType(JSON)
        return super().parse_body(request)

    def parse_querydict(self, data, list_fields, request: HttpRequest):
        if data is not request.GET and _media_type(request) not in FORM_TYPES:
            raise UnsupportedMediaType("multipart/form-data")
        return super().parse_querydict(data, list_fields, request)
