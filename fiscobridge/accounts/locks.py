"""Row locks on a tenant, for changes that must see a stable count (seats in use)."""

from fiscobridge.accounts.models import Account


def lock_account(account: Account) -> Account:
    """Lock the account row until the transaction ends.

    Every seat-spending change (certificate upload, connection create) takes this one lock
    first, so N parallel requests into k free seats give exactly k successes on PostgreSQL;
    on SQLite, BEGIN IMMEDIATE already serialises writers. Take it before any other row lock.
    """
    return Account.objects.select_for_update().get(pk=account.pk)
