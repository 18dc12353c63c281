"""Who may see a Partner Portal page: signed-in users of a partner (reseller)."""

from fiscobridge.portal.access import tenant_page

partner_page = tenant_page("partner", "partners/not_partner.html")
