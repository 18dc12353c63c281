"""Template filters for local time, a builtin of every template (settings.TEMPLATES).

`{{ value|moment }}` → "30 Nov 2026 14:05 +12" and `{{ value|day }}` → "30 Nov 2026", in the
active zone (the page's tenant, set by web.time_zone_middleware), or in the zone given as the
argument: `{{ value|moment:partner.time_zone }}` where a template is rendered without a request.
"""

from django import template

from fiscobridge.core.localtime import day_text, moment_text

register = template.Library()


@register.filter
def moment(value, zone_name=None):
    return moment_text(value, zone_name) if value else ""


@register.filter
def day(value, zone_name=None):
    return day_text(value, zone_name) if value else ""
