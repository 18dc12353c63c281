"""Small display helpers for the Partner Portal templates."""

from django import template
from django.utils.html import format_html

from fiscobridge.keys.models import KeyDisplayStatus

register = template.Library()

STATUS_CHIPS = {
    KeyDisplayStatus.AVAILABLE: "ok",
    KeyDisplayStatus.ACTIVATED: "key",
    KeyDisplayStatus.REVOKED: "muted",
    KeyDisplayStatus.EXPIRED: "warn",
    KeyDisplayStatus.VOIDED: "danger",
}


@register.simple_tag
def status_chip(status: str) -> str:
    # A simple tag, not an inclusion template: it is rendered once per row of the keys list.
    return format_html('<span class="chip {}">{}</span>', STATUS_CHIPS.get(status, "muted"), status_label(status))


@register.filter
def status_label(status: str) -> str:
    return KeyDisplayStatus(status).label if status in KeyDisplayStatus.values else status.capitalize()


@register.simple_tag
def package_label(product: str, tier: str = "") -> str:
    name = {"pos": "Cloud POS", "int": "Integrations"}.get(product, product)
    return f"{name} · {tier.capitalize()}" if tier else name


@register.filter
def stock_count(row, status: str) -> int:
    return row.count(status)
