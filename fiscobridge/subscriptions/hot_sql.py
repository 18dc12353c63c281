"""Hand-written SQL of the hot paths: subscription facts as subqueries, for statements that read
them together with other facts in one round trip (keys/hot_sql.py, pos/hot_sql.py).

The same rules as `SubscriptionQuerySet.active` and `subscriptions.capacity` (started, not
expired, not ended) and `subscriptions.services.renewable_subscriptions`;
tests/test_hot_paths.py holds them to the same answers. `account`, `product` and `tier` are SQL
expressions (a column of the outer statement, or a quoted constant); the times are parameters.
"""

from datetime import datetime

from django.db import connection

from fiscobridge.core.hot_sql import to_db
from fiscobridge.subscriptions.models import Source, Subscription

SUBSCRIPTIONS = Subscription._meta.db_table


def active_seats(*, account: str, product: str, tier: str | None, moment: datetime) -> tuple[str, list]:
    """A scalar subquery: the seats of the account's active subscriptions of this product and
    tier (of every tier when `tier` is None)."""
    at = to_db(moment)
    of_tier = f"AND tier = {tier} " if tier is not None else ""
    sql = (
        f"(SELECT COALESCE(SUM(seats), 0) FROM {SUBSCRIPTIONS} WHERE account_id = {account} "
        f"AND product = {product} {of_tier}AND started_at <= %s AND expires_at > %s "
        "AND (ended_at IS NULL OR ended_at > %s))"
    )
    return sql, [at, at, at]


def renewable_json(*, account: str, product: str, tier: str, moment: datetime, limit: int) -> tuple[str, list]:
    """A scalar subquery: up to `limit` key subscriptions a new key of this product and tier may
    renew, soonest-ending first, as a JSON array of [id, expires_at, key_hint]."""
    at = to_db(moment)
    aggregate = (
        "json_agg(json_build_array(r.id, r.expires_at, r.key_hint))"
        if connection.vendor == "postgresql"
        else "json_group_array(json_array(r.id, r.expires_at, r.key_hint))"
    )
    sql = (
        f"(SELECT {aggregate} FROM (SELECT s.id, s.expires_at, s.key_hint FROM {SUBSCRIPTIONS} s "
        f"WHERE s.account_id = {account} AND s.product = {product} AND s.tier = {tier} "
        f"AND s.source = '{Source.KEY.value}' AND s.expires_at > %s AND (s.ended_at IS NULL OR s.ended_at > %s) "
        f"AND NOT EXISTS (SELECT 1 FROM {SUBSCRIPTIONS} n WHERE n.renews_id = s.id) "
        "ORDER BY s.expires_at, s.id LIMIT %s) r)"
    )
    return sql, [at, at, limit]
