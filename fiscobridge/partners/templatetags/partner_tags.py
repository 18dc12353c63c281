"""Small display helpers for the Partner Portal templates."""

from django import template

register = template.Library()

STATUS_CHIPS = {"available": "ok", "activated": "key", "revoked": "muted", "expired": "warn", "voided": "danger"}
STATUS_LABELS = {"available": "Available", "activated": "Activated", "revoked": "Revoked", "expired": "Expired",
                 "voided": "Voided"}


@register.inclusion_tag("partners/_status_chip.html")
def status_chip(status: str):
    return {"css": STATUS_CHIPS.get(status, "muted"), "label": STATUS_LABELS.get(status, status.capitalize())}


@register.filter
def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.capitalize())


@register.simple_tag
def package_label(product: str, tier: str = "") -> str:
    name = {"pos": "Cloud POS", "int": "Integrations"}.get(product, product)
    return f"{name} · {tier.capitalize()}" if tier else name


@register.filter
def stock_count(row, status: str) -> int:
    return row.count(status)
