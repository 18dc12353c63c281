from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


def healthz(request: HttpRequest) -> JsonResponse:
    """The framework floor for benchmarks and a liveness probe: no database, no session."""
    return JsonResponse({"ok": True})
