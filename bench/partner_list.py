"""Partner keys list at scale, run in a subprocess with the bench environment:

    python -m bench.partner_list [--keys N] [--batches B] [--repeat R] [--warmup W]  -> JSON on stdout

Loads N keys (default 1,000,000) for one partner straight into the database with one
INSERT … SELECT FROM generate_series per batch (PostgreSQL; the codes do not matter, so each
key gets a unique made-up code_hmac and a spread-out last group), with realistic statuses:
about 60 % available, 30 % activated (over the last 90 days, some voided), 6 % revoked, and
two batches past their redeem-by date (their unredeemed keys are expired); then it rebuilds the
dashboard's rollup from them (keys/rollup.py: the keys went in around the services) and checks
it against the keys. Then it times the partner's keys list page — the full HTML page through
Django's test Client, as a logged-in partner user — for:

- first:        /partner/keys/                 (the newest 50)
- deep:         /partner/keys/?cursor=…        (a cursor 5,000 keys above the oldest)
- filtered:     /partner/keys/?status=available&q=<the newest batch's order number>
- filtered_old: /partner/keys/?status=available&q=<the oldest batch's order number> (worst case)
- hint:         /partner/keys/?status=available&q=<the last group of one key>
- dashboard:    /partner/                      (counts per package and the 90-day chart)

each `repeat` times after `warmup` unmeasured requests, and reports p50/p99/mean/max in ms,
the rows on the page and the query plan's access path of the list query.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fiscobridge.settings")
    import django

    django.setup()


ALPHABET = "23456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# (product, tier, reference) of each batch, oldest first; the keys are spread evenly over them.
PACKAGES = [("pos", ""), ("int", "starter"), ("pos", ""), ("int", "growth"), ("pos", ""), ("int", "scale")]
CUSTOMERS = ["Alvarez Retail", "Boreal Foods", "Cobalt Pharmacy", "Delta Hardware", "Estrella Café"]


def _load_sql(table: str) -> str:
    # One INSERT per batch. h spreads g over 34^4 last groups; r picks the status (fixed
    # proportions, scattered over the ids, so every page and every filter meets all states).
    return f"""
        INSERT INTO {table} (
            partner_id, batch_id, product, tier, seats, months, reference, code_hmac, last_group, status,
            redeem_by, created_at, activated_at, activated_account_id, revoked_at, revoked_reason,
            voided_at, voided_reason)
        SELECT %(partner)s, %(batch)s, %(product)s, %(tier)s, 1 + (g %% 5), 12, %(reference)s,
               encode(sha256(('bench-key-' || g)::bytea), 'hex'),
               substr(%(alphabet)s::text, (1 + (h / 39304) %% 34)::int, 1)
                 || substr(%(alphabet)s::text, (1 + (h / 1156) %% 34)::int, 1)
                 || substr(%(alphabet)s::text, (1 + (h / 34) %% 34)::int, 1)
                 || substr(%(alphabet)s::text, (1 + h %% 34)::int, 1),
               CASE WHEN r < 30 THEN 'activated' WHEN r < 36 THEN 'revoked' ELSE 'available' END,
               %(redeem_by)s::timestamptz, %(created_at)s::timestamptz,
               CASE WHEN r < 30 THEN now() - make_interval(days => (g %% 90)::int, mins => (g %% 1440)::int) END,
               CASE WHEN r < 30 THEN (%(accounts)s::bigint[])[(1 + g %% %(n_accounts)s)::int] END,
               CASE WHEN r >= 30 AND r < 36 THEN now() - make_interval(days => (g %% 60)::int) END,
               CASE WHEN r >= 30 AND r < 36 THEN 'Order cancelled' ELSE '' END,
               CASE WHEN r = 0 THEN now() - make_interval(days => (g %% 30)::int) END,
               CASE WHEN r = 0 THEN 'Chargeback' ELSE '' END
        FROM (SELECT g, (g * 2654435761) %% 1336336 AS h, (g * 7919) %% 100 AS r
              FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g) AS s
    """


def load(keys: int, batches: int) -> dict:
    from datetime import timedelta

    from django.db import connection, transaction
    from django.db.models import Sum

    from fiscobridge.accounts.models import Account, Partner, User
    from fiscobridge.core import clock
    from fiscobridge.keys import rollup
    from fiscobridge.keys.models import ActivationHour, ActivationKey, KeyBatch, KeyBatchCounts

    if connection.vendor != "postgresql":
        raise SystemExit("the partner-list benchmark needs PostgreSQL (generate_series, sha256)")
    started = time.perf_counter()
    now = clock.now()
    partner = Partner.objects.create(name="Bench Scale Partner")
    user = User.objects.create_user("scale-partner@bench.example", None, partner=partner)
    accounts = [Account.objects.create(name=name).pk for name in CUSTOMERS]
    per_batch = -(-keys // batches)
    created, first = [], 1
    with transaction.atomic():
        for index in range(batches):
            size = min(per_batch, keys - first + 1)
            if size <= 0:
                break
            product, tier = PACKAGES[index % len(PACKAGES)]
            at = now - timedelta(days=5 * (batches - index))
            expired = index in (1, 4)  # two old batches past their redeem-by date
            batch = KeyBatch.objects.create(
                partner=partner,
                product=product,
                tier=tier,
                seats=1,
                months=12,
                quantity=size,
                reference=f"Order {1000 + index} {CUSTOMERS[index % len(CUSTOMERS)]}",
                redeem_by=now - timedelta(days=1) if expired else None,
                created_at=at,
                created_by=user,
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    _load_sql(ActivationKey._meta.db_table),
                    {
                        "partner": partner.pk,
                        "batch": batch.pk,
                        "product": product,
                        "tier": tier,
                        "reference": batch.reference,
                        "alphabet": ALPHABET,
                        "redeem_by": batch.redeem_by,
                        "created_at": at,
                        "accounts": accounts,
                        "n_accounts": len(accounts),
                        "first": first,
                        "last": first + size - 1,
                    },
                )
            created.append(batch)
            first += size
    # What autovacuum does to a table that has been written: statistics and the visibility map.
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {ActivationKey._meta.db_table}")
    loaded = time.perf_counter() - started
    # The keys went in around the services: count the dashboard's rollup from them, as an
    # operator would after an import (keys/rollup.py).
    started = time.perf_counter()
    rollup.rebuild(partner)
    rebuilt = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {KeyBatchCounts._meta.db_table}, {ActivationHour._meta.db_table}")
    counts = _status_counts(partner)
    rolled = KeyBatchCounts.objects.filter(batch__partner=partner).aggregate(
        available=Sum("available_keys"),
        activated=Sum("activated_keys") + Sum("voided_keys"),
        revoked=Sum("revoked_keys"),
    )
    if rolled != counts:
        raise SystemExit(f"the dashboard's rollup {rolled} disagrees with the keys {counts}")
    return {
        "partner": partner,
        "user": user,
        "batches": created,
        "load_s": loaded,
        "rollup_rebuild_s": rebuilt,
        "counts": counts,
    }


def _status_counts(partner) -> dict:
    from django.db.models import Count

    from fiscobridge.keys.models import ActivationKey

    rows = ActivationKey.objects.filter(partner=partner).values("status").annotate(n=Count("id")).order_by()
    return {row["status"]: row["n"] for row in rows}


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[rank]


def _access_path(client, path: str) -> str | None:
    """How PostgreSQL reads the page's list query: its scans and execution time, one line.

    The query is the one the page really ran (captured), explained with ANALYZE.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(path)
    listing = [
        q["sql"]
        for q in captured.captured_queries
        if 'FROM "keys_activationkey"' in q["sql"] and "ORDER BY" in q["sql"] and "LIMIT" in q["sql"]
    ]
    if not listing:
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE) {listing[0]}")
        plan = [row[0] for row in cursor.fetchall()]
    scans = [
        re.sub(r" on keys_activationkey$", "", line.strip().lstrip("-> ").split("  (")[0])
        for line in plan
        if "Scan" in line and "accounts_account" not in line
    ]
    timing = next((line.split(":")[1].strip() for line in plan if line.strip().startswith("Execution Time")), "")
    return "; ".join(scans) + (f" ({timing})" if timing else "")


def measure(data: dict, repeat: int, warmup: int) -> dict:
    from django.test import Client

    from fiscobridge.keys.models import ActivationKey
    from fiscobridge.web.cursor import encode_cursor as _encode_cursor

    partner, batches = data["partner"], data["batches"]
    from tests.factories import enrol_authenticator, verify_session

    client = Client()
    # Partner users sign in with a second factor (issue 10): the page would redirect to its set-up.
    enrol_authenticator(data["user"])
    client.force_login(data["user"])
    verify_session(client, data["user"])
    oldest = ActivationKey.objects.filter(partner=partner).order_by("id").values_list("id", flat=True).first()
    deep_cursor = oldest + 5000
    # Order numbers: the newest batch's (its keys come first in the newest-first order) and the
    # oldest batch's (its keys sit at the far end: the worst case for a newest-first walk).
    newest, oldest_order = (" ".join(b.reference.split()[:2]) for b in (batches[-1], batches[0]))
    some_key = (
        ActivationKey.objects.filter(partner=partner, batch=batches[len(batches) // 2], status="available")
        .order_by("id")
        .first()
    )
    cases = {
        "first": "/partner/keys/",
        "deep": f"/partner/keys/?cursor={_encode_cursor(deep_cursor)}",
        "filtered": f"/partner/keys/?status=available&q={newest.replace(' ', '+')}",
        "filtered_old": f"/partner/keys/?status=available&q={oldest_order.replace(' ', '+')}",
        "hint": f"/partner/keys/?status=available&q={some_key.last_group}",
        "dashboard": "/partner/",
    }
    results = {}
    for name, path in cases.items():
        for _ in range(warmup):
            client.get(path)
        times, rows, size = [], 0, 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code}")
            rows = response.content.count(b"<tr data-key-id=")
            size = len(response.content)
        results[name] = {
            "path": path,
            "requests": repeat,
            "rows_on_page": rows,
            "html_bytes": size,
            "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(_percentile(times, 99), 2),
            "mean_ms": round(statistics.fmean(times), 2),
            "max_ms": round(max(times), 2),
            "plan": _access_path(client, path),
        }
        if name != "dashboard" and rows == 0:
            raise SystemExit(f"{path} showed no keys: the benchmark data is not what the case expects")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.partner_list")
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    _django()
    data = load(args.keys, args.batches)
    cases = measure(data, args.repeat, args.warmup)
    print(
        json.dumps(
            {
                "keys": args.keys,
                "batches": len(data["batches"]),
                "load_s": round(data["load_s"], 1),
                "rollup_rebuild_s": round(data["rollup_rebuild_s"], 2),
                "statuses": data["counts"],
                "repeat": args.repeat,
                "warmup": args.warmup,
                "cases": cases,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
