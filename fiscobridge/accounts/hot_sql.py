"""Hand-written SQL of bearer-token authentication, the first statement of every API request.

One query reads the token, its user and the user's tenant (account or partner); the ORM's
select_related would send the same join, but building it costs more than running it.
"""

from django.db import connection

from fiscobridge.accounts.models import Account, ApiToken, Partner, User
from fiscobridge.core.hot_sql import RowReader

_TOKEN = RowReader(ApiToken, [f.attname for f in ApiToken._meta.concrete_fields])
_USER = RowReader(User, [f.attname for f in User._meta.concrete_fields])
_ACCOUNT = RowReader(Account, [f.attname for f in Account._meta.concrete_fields])
_PARTNER = RowReader(Partner, [f.attname for f in Partner._meta.concrete_fields])
_SQL = (
    f"SELECT {_TOKEN.sql('t')}, {_USER.sql('u')}, {_ACCOUNT.sql('a')}, {_PARTNER.sql('p')} "
    f"FROM {ApiToken._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.user_id "
    f"LEFT JOIN {Account._meta.db_table} a ON a.id = u.account_id "
    f"LEFT JOIN {Partner._meta.db_table} p ON p.id = u.partner_id "
    "WHERE t.prefix = %s AND t.revoked_at IS NULL AND u.is_active = %s"
)


def unrevoked_token(prefix: str) -> ApiToken | None:
    """The unrevoked token of an active user with this prefix, with `user`, `user.account` and
    `user.partner` loaded (None where the user has no such tenant)."""
    with connection.cursor() as cursor:
        cursor.execute(_SQL, [prefix, True])
        row = cursor.fetchone()
    if row is None:
        return None
    cuts = [0]
    for reader in (_TOKEN, _USER, _ACCOUNT, _PARTNER):
        cuts.append(cuts[-1] + len(reader.columns))
    token, user, account, partner = (
        reader.build(row[start:end])
        for reader, start, end in zip((_TOKEN, _USER, _ACCOUNT, _PARTNER), cuts[:-1], cuts[1:], strict=True)
    )
    user.account, user.partner = account, partner
    token.user = user
    return token
