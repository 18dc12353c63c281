"""Hand-written SQL of the hot paths: the seats of active subscriptions, as a fragment.

The same rule as `SubscriptionQuerySet.active` and `subscriptions.capacity` (started, not
expired, not ended), for statements that read capacity together with other facts in one round
trip (keys/hot_sql.py, pos/hot_sql.py); tests/test_hot_paths.py holds them to the same answers.
"""

from datetime import datetime

from fiscobridge.core.hot_sql import to_db
from fiscobridge.subscriptions.models import Subscription

SUBSCRIPTIONS = Subscription._meta.db_table


def active_seats(*, account_column: str, product: str, tier: str, moment: datetime) -> tuple[str, list]:
    """A scalar subquery: the seats of the account's active subscriptions of this product and
    tier at `moment`. `account_column` is the SQL (a column or %s) naming the account id."""
    at = to_db(moment)
    sql = (
        f"(SELECT COALESCE(SUM(seats), 0) FROM {SUBSCRIPTIONS} WHERE account_id = {account_column} "
        "AND product = %s AND tier = %s AND started_at <= %s AND expires_at > %s "
        "AND (ended_at IS NULL OR ended_at > %s))"
    )
    return sql, [product, tier, at, at, at]
