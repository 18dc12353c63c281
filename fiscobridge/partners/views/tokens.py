"""The partner user's API tokens."""

from fiscobridge.web.access import partner_page
from fiscobridge.web.tokens import token_views

api_tokens, revoke_token = token_views(partner_page, template="partners/tokens.html", back_to="partners:api_tokens")
