"""The partner's Settings page (its time zone)."""

from fiscobridge.web.access import partner_page
from fiscobridge.web.settings_page import settings_views

settings_page = settings_views(partner_page, template="partners/settings.html", back_to="partners:settings")
