"""The API tokens page of both portals: a user's own tokens, created (shown once) and revoked."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from fiscobridge.accounts.models import ApiToken
from fiscobridge.accounts.services import create_api_token, revoke_api_token
from fiscobridge.core.ids import is_storable_id


def _own_tokens(request: HttpRequest):
    return ApiToken.objects.filter(user=request.user).order_by("-created_at")


def tokens_page(request: HttpRequest, *, template: str) -> HttpResponse:
    created = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100] or "API token"
        created = create_api_token(user=request.user, name=name)
    return render(request, template, {"active_nav": "tokens", "tokens": _own_tokens(request), "created": created})


def revoke_own_token(request: HttpRequest, token_id: int, *, back_to: str) -> HttpResponse:
    """Only the user's own token; anyone else's is not found."""
    token = _own_tokens(request).filter(pk=token_id).first() if is_storable_id(token_id) else None
    if token is None:
        raise Http404
    revoke_api_token(token=token, actor=request.user)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect(back_to)
