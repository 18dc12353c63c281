"""Django-side helpers for the benchmark, run in a subprocess with the bench environment.

    python -m bench.tenants setup ACCOUNTS TOKENS_PER_ACCOUNT   -> JSON on stdout
    python -m bench.tenants machine ACCOUNT_ID…                 -> JSON on stdout
    python -m bench.tenants count                               -> JSON on stdout

`setup` creates one partner and ACCOUNTS customer accounts, each with TOKENS_PER_ACCOUNT API
tokens (each token is its own failed-attempt "session", like separate POS terminals).
`machine` gives each account what the machine hot paths need: one certificate (a Cloud POS seat
is already there, from the activate rows) and one trial Integrations connection; it prints their
UIDs. `count` reports what the database holds after the run, to cross-check the HTTP figures.
"""

import json
import os
import secrets
import sys


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fiscobridge.settings")
    import django

    django.setup()


def setup(accounts: int, tokens_per_account: int) -> dict:
    from fiscobridge.accounts.services import create_account, create_api_token, create_partner

    password = "bench-" + secrets.token_urlsafe(16)
    run = secrets.token_hex(4)
    partner = create_partner(name=f"Bench Partner {run}", email=f"partner-{run}@bench.example", password=password)
    customers = []
    for index in range(accounts):
        user = create_account(
            name=f"Bench Shop {index} {run}", email=f"shop{index}-{run}@bench.example", password=password
        )
        tokens = [create_api_token(user=user, name=f"bench-{t}").plain for t in range(tokens_per_account)]
        customers.append({"email": user.email, "account_id": user.account.pk, "tokens": tokens})
    return {"partner_email": partner.email, "customers": customers}


def machine(account_ids: list[int]) -> dict:
    from fiscobridge.accounts.models import Account
    from fiscobridge.integrations.services import create_connection
    from fiscobridge.pos.services import upload_certificate
    from tests.factories import PFX_PASSWORD, new_pfx

    result = {"certificates": [], "connections": []}
    for account in Account.objects.filter(pk__in=account_ids).order_by("pk"):
        data = new_pfx(org=f"{account.name} SA")
        certificate = upload_certificate(account=account, actor=None, data=data, password=PFX_PASSWORD)
        connection = create_connection(account=account, actor=None, type="custom", tier="trial", name="Bench sync")
        result["certificates"].append(certificate.uid)
        result["connections"].append(connection.uid)
    return result


def count() -> dict:
    from django.db import connection
    from django_tasks_db.models import DBTaskResult

    from fiscobridge.audit.models import Event
    from fiscobridge.keys.models import ActivationKey, RedeemAttempt
    from fiscobridge.subscriptions.models import Subscription

    return {
        "keys_total": ActivationKey.objects.count(),
        "keys_activated": ActivationKey.objects.filter(status="activated").count(),
        "subscriptions": Subscription.objects.count(),
        "redeem_attempts": RedeemAttempt.objects.count(),
        "redeem_attempts_failed": RedeemAttempt.objects.filter(failed=True).count(),
        "audit_events": Event.objects.count(),
        "tasks_ready": DBTaskResult.objects.filter(status="READY").count(),
        "database_version": _db_version(connection),
    }


def _db_version(connection) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
        else:
            cursor.execute("SELECT sqlite_version()")
        return f"{connection.vendor} {cursor.fetchone()[0]}"


def main(argv: list[str]) -> int:
    _django()
    if argv[:1] == ["setup"]:
        result = setup(int(argv[1]), int(argv[2]))
    elif argv[:1] == ["machine"]:
        result = machine([int(x) for x in argv[1:]])
    elif argv[:1] == ["count"]:
        result = count()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
