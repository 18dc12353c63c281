"""The API tokens page of both portals: a user's own tokens, created (shown once) and revoked."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from fiscobridge.accounts.models import ApiToken
from fiscobridge.accounts.scopes import Scope, scopes_for_kind, user_kind
from fiscobridge.accounts.services import create_api_token, revoke_api_token
from fiscobridge.core.errors import InvalidInput
from fiscobridge.core.ids import is_storable_id


def _own_tokens(request: HttpRequest):
    return ApiToken.objects.filter(user=request.user).order_by("-created_at")


def tokens_page(request: HttpRequest, *, template: str) -> HttpResponse:
    created = error = None
    name = ""
    # Full access stays the default choice: a token made as before this choice existed behaves
    # as before. Limiting it is one tick away, and ticking both is refused (the service says why).
    chosen = [Scope.ALL.value]
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100]
        chosen = request.POST.getlist("scopes")
        try:
            created = create_api_token(user=request.user, name=name or "API token", scopes=chosen)
        except InvalidInput as refused:
            error = refused.message  # the form keeps the name and the ticks to correct them
        else:
            chosen, name = [Scope.ALL.value], ""
    scope_choices = [
        {"value": scope.value, "label": scope.label, "checked": scope.value in chosen}
        for scope in scopes_for_kind(user_kind(request.user))
    ]
    return render(
        request,
        template,
        {
            "active_nav": "tokens",
            "tokens": _own_tokens(request),
            "created": created,
            "error": error,
            "name": name,
            "scope_choices": scope_choices,
        },
        status=422 if error else 200,
    )


def revoke_own_token(request: HttpRequest, token_id: int, *, back_to: str) -> HttpResponse:
    """Only the user's own token; anyone else's is not found."""
    token = _own_tokens(request).filter(pk=token_id).first() if is_storable_id(token_id) else None
    if token is None:
        raise Http404
    revoke_api_token(token=token, actor=request.user)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect(back_to)


def token_views(page, *, template: str, back_to: str):
    """The two views of one portal's API tokens page, behind that portal's `page` decorator
    (`customer_page` or `partner_page`): the list with its create form, and revoking one."""

    @never_cache  # a new token is shown in this answer
    @require_http_methods(["GET", "POST"])
    @page
    def api_tokens(request, tenant):
        return tokens_page(request, template=template)

    @require_POST
    @page
    def revoke_token(request, tenant, token_id: int):
        return revoke_own_token(request, token_id, back_to=back_to)

    return api_tokens, revoke_token
