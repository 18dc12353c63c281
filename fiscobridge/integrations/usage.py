from django.db.models import Count

from fiscobridge.integrations.models import Connection, ConnectionStatus


def active_connections_by_tier(account) -> dict[str, int]:
    """Seats used on Integrations, per tier (including `trial`)."""
    rows = (
        Connection.objects.filter(account=account, status=ConnectionStatus.ACTIVE)
        .values("tier")
        .annotate(n=Count("id"))
    )
    return {row["tier"]: row["n"] for row in rows}
