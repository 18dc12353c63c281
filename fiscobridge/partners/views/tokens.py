"""The partner user's API tokens."""

from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from fiscobridge.web.access import partner_page
from fiscobridge.web.tokens import revoke_own_token, tokens_page


@never_cache  # a new token is shown in this answer
@require_http_methods(["GET", "POST"])
@partner_page
def api_tokens(request, partner):
    return tokens_page(request, template="partners/tokens.html")


@require_POST
@partner_page
def revoke_token(request, partner, token_id: int):
    return revoke_own_token(request, token_id, back_to="partners:api_tokens")
