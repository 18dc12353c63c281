"""Small display helpers for the Partner Portal templates."""

from datetime import date
from functools import lru_cache
from html import escape

from django import template
from django.utils import dateformat
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from fiscobridge.core.localtime import date_text, day_text
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
    return _CHIPS.get(status) or _chip(status)


def _chip(status: str) -> str:
    return format_html('<span class="chip {}">{}</span>', STATUS_CHIPS.get(status, "muted"), status_label(status))


@register.filter
def status_label(status: str) -> str:
    return KeyDisplayStatus(status).label if status in KeyDisplayStatus.values else status.capitalize()


_CHIPS = {status: _chip(status) for status in KeyDisplayStatus.values}


@register.simple_tag
def package_label(product: str, tier: str = "") -> str:
    name = {"pos": "Cloud POS", "int": "Integrations"}.get(product, product)
    return f"{name} · {tier.capitalize()}" if tier else name


@register.filter
def stock_count(row, status: str) -> int:
    return row.count(status)


@register.simple_tag
def key_row(key, keys_url: str, detail_url_of_0: str) -> str:
    """One row of the keys list. Python rather than template markup because the list is the
    Partner Portal's hot page (issue 9): as template nodes a row took ~20 variable lookups,
    filters and a {% url %}, and 50 rows were most of the page's time. Text is escaped with
    the standard library's `html.escape`, which is what Django's `escape` calls (without its
    lazy-string wrapper); `detail_url_of_0` is the key-detail URL of key 0, reversed once per
    page, with the key's id put in place of the 0."""
    if key.activated_account_id:
        activated_by = (
            f'{escape(key.activated_account.name)}\n          <div class="note">{day_text(key.activated_at)}</div>'
        )
    else:
        activated_by = "—"
    seats, batch = key.seats, key.batch_id
    before, _, after = detail_url_of_0.rpartition("/0/")
    detail_url = f"{before}/{int(key.pk)}/{after}"
    return mark_safe(
        f'<tr data-key-id="{key.pk}">\n'
        f'        <td class="mono"><a href="{escape(detail_url)}">{escape(key.hint)}</a></td>\n'
        f"        <td>{escape(package_label(key.product, key.tier))}\n"
        f'          <div class="note">{int(seats)} seat{"" if seats == 1 else "s"} · {int(key.months)} mo</div></td>\n'
        f"        <td>{status_chip(key.display_status)}</td>\n"
        f"        <td>{escape(key.reference or '—')}</td>\n"
        f'        <td><a href="{escape(keys_url)}?batch={int(batch)}"\n'
        f'               aria-label="All keys of batch {int(batch)}">#{int(batch)}</a></td>\n'
        f"        <td>{escape(day_text(key.created_at))}</td>\n"
        f"        <td>{activated_by}</td>\n"
        "      </tr>"
    )


# The dashboard's activation chart draws one bar, with its own tooltip, per day of 90 and lists
# the same days in its data table: as template loops these were most of the dashboard's time
# (issue 9), so the two repeated parts are built here; the rest of the chart stays in
# templates/partners/_bar_chart.html. Every value is a number or a formatted date.


@register.simple_tag
def chart_bars(chart) -> str:
    """The chart's bars, the days without activations left out."""
    return mark_safe(
        "".join(
            f'\n    <rect class="chart-bar" x="{b.x}" y="{b.y}" width="{b.width}" height="{b.height}">\n'
            f"      <title>{date_text(b.day)}: {int(b.value)} activation{'' if b.value == 1 else 's'}</title>\n"
            "    </rect>\n    "
            for b in chart.bars
            if b.value
        )
    )


@register.simple_tag
def chart_table_rows(chart) -> str:
    """The rows of the chart's data table, the days without activations left out."""
    return mark_safe(
        "".join(
            f"\n      <tr><td>{_weekday_date_text(b.day)}</td><td>{int(b.value)}</td></tr>\n    "
            for b in chart.bars
            if b.value
        )
    )


@lru_cache(maxsize=512)
def _weekday_date_text(day: date) -> str:
    return dateformat.format(day, "D j M Y")  # "Mon 30 Nov 2026"
