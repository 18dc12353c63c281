"""The partner dashboard's rollup (keys/rollup.py) and the keys list's search at scale (issue 9).

After every kind of change the rollup rows equal a fresh recount, and the dashboard's figures
equal the keys counted as the dashboard counted them before the rollup (per display status with
`display_status_filters`, activations per UTC day from the keys' own times). The keys list's
search gives the keys of the old single filter, page by page.
"""

import importlib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from django.db import connection
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.test.utils import CaptureQueriesContext

from fiscobridge.accounts.services import create_account, set_time_zone
from fiscobridge.core import clock
from fiscobridge.jobs import PERIODIC_JOBS
from fiscobridge.keys import queries, rollup
from fiscobridge.keys.codes import VALUE, squash
from fiscobridge.keys.errors import KeyAlreadyActivated
from fiscobridge.keys.models import (
    ActivationHour,
    ActivationKey,
    KeyBatch,
    KeyBatchCounts,
    KeyDisplayStatus,
    PendingActivation,
)
from fiscobridge.keys.queries import display_status_counts, search_keys
from fiscobridge.keys.services import revoke_key, void_key
from fiscobridge.partners.dashboard import activations_by_day, stock_by_package
from fiscobridge.tasks.schedule import enqueue_due
from tests.factories import activate, bearer_client, browser_for, key_of, outcome, redeem, run_at_once, run_tasks

# --- the reference: the dashboard's figures computed from the keys, as before the rollup --------


def stock_from_keys(partner, at) -> dict:
    rows = ActivationKey.objects.for_partner(partner).values("product", "tier").annotate(**display_status_counts(at))
    return {(r["product"], r["tier"]): {s: r[s] for s in KeyDisplayStatus.values} for r in rows.order_by()}


def days_from_keys(partner, at, days=90) -> list:
    """Activations per local day of the partner (its time zone), counted from the keys themselves."""
    zone = ZoneInfo(partner.time_zone)
    today = at.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    rows = (
        ActivationKey.objects.for_partner(partner)
        .filter(activated_at__gte=datetime(first.year, first.month, first.day, tzinfo=zone))
        .annotate(day=TruncDate("activated_at", tzinfo=zone))
        .values("day")
        .annotate(n=Count("*"))
        .order_by()
    )
    per_day = {r["day"]: r["n"] for r in rows}
    return [(first + timedelta(days=i), per_day.get(first + timedelta(days=i), 0)) for i in range(days)]


def stock_from_rollup(partner, at) -> dict:
    return {
        (row.product, row.tier): {s: row.count(s) for s in KeyDisplayStatus.values}
        for row in stock_by_package(partner, at=at)
    }


def rollup_rows() -> tuple[dict, dict]:
    counts = {
        c.batch_id: (c.available_keys, c.activated_keys, c.revoked_keys, c.voided_keys)
        for c in KeyBatchCounts.objects.all()
    }
    hours = {(h.partner_id, h.hour): h.activations for h in ActivationHour.objects.all()}
    return counts, hours


def assert_dashboards_are_exact(*partners, at):
    for partner in partners:
        assert stock_from_rollup(partner, at) == stock_from_keys(partner, at)
        assert activations_by_day(partner, at=at) == days_from_keys(partner, at)


def assert_rollup_is_exact(*partners, at=None):
    """The dashboard's figures equal the keys counted directly, with activations pending and once
    they are folded, and then the rows equal a rebuild."""
    at = at or clock.now()
    assert_dashboards_are_exact(*partners, at=at)
    rollup.fold_pending()
    assert not PendingActivation.objects.exists()
    assert_dashboards_are_exact(*partners, at=at)
    kept = rollup_rows()
    assert set(kept[0]) == set(KeyBatch.objects.values_list("pk", flat=True))  # one row per batch
    rollup.rebuild()
    assert rollup_rows() == kept


def keys_of(codes) -> list[ActivationKey]:
    return [key_of(code) for code in codes]


# --- every kind of change ---------------------------------------------------------------------


def test_issue_activate_revoke_and_void_keep_the_rollup_exact(reseller, other_reseller, issue, customer, staff):
    pos = issue(quantity=4, reference="Order 7")
    ints = issue(product="int", tier="growth", quantity=3, redeem_by=clock.now() + timedelta(days=10))
    theirs = issue(quantity=2, partner=other_reseller.partner)
    assert_rollup_is_exact(reseller.partner, other_reseller.partner)
    assert KeyBatchCounts.objects.get(batch=key_of(pos[0]).batch).available_keys == 4

    redeem(customer, pos[0])
    redeem(customer, ints[0], product="int")
    redeem(customer, theirs[0])
    assert_rollup_is_exact(reseller.partner, other_reseller.partner)

    revoke_key(key=key_of(pos[1]), reason="order cancelled", actor=reseller.user)
    assert_rollup_is_exact(reseller.partner, other_reseller.partner)

    void_key(key=key_of(pos[0]), reason="chargeback", actor=staff.user)
    assert_rollup_is_exact(reseller.partner, other_reseller.partner)

    counts = KeyBatchCounts.objects.get(batch=key_of(pos[0]).batch)
    assert (counts.available_keys, counts.activated_keys, counts.revoked_keys, counts.voided_keys) == (2, 0, 1, 1)
    stock = stock_from_rollup(reseller.partner, clock.now())
    assert stock[("pos", "")] == {"available": 2, "activated": 0, "revoked": 1, "expired": 0, "voided": 1}
    assert stock[("int", "growth")] == {"available": 2, "activated": 1, "revoked": 0, "expired": 0, "voided": 0}
    # A voided key's activation stays in the chart, as it did when the chart counted keys.
    assert sum(n for _, n in activations_by_day(reseller.partner, at=clock.now())) == 2


def test_refused_changes_leave_the_rollup_alone(reseller, issue, customer, outsider):
    [code] = issue()
    redeem(customer, code)
    before = rollup_rows()
    assert outcome(activate(outsider, code)) == (409, "not_available")
    with pytest.raises(KeyAlreadyActivated):
        revoke_key(key=key_of(code), reason="too late", actor=reseller.user)
    assert rollup_rows() == before
    assert_rollup_is_exact(reseller.partner)


def test_a_batch_past_its_redeem_by_shows_its_available_keys_as_expired(reseller, issue, customer):
    start = clock.now()
    soon = issue(quantity=3, redeem_by=start + timedelta(days=2))
    issue(quantity=2)  # no redeem-by: never expires
    redeem(customer, soon[0])
    assert stock_from_rollup(reseller.partner, start)[("pos", "")]["expired"] == 0
    rows = rollup_rows()
    with time_machine.travel(start + timedelta(days=3), tick=False):
        later = clock.now()
        stock = stock_from_rollup(reseller.partner, later)
        assert stock[("pos", "")] == {"available": 2, "activated": 1, "revoked": 0, "expired": 2, "voided": 0}
        assert rollup_rows() == rows  # nothing was written: expiry is derived when read
        assert_rollup_is_exact(reseller.partner, at=later)
        # An expired key can still be revoked: it leaves the expired count.
        revoke_key(key=key_of(soon[1]), reason="order cancelled", actor=reseller.user)
        assert stock_from_rollup(reseller.partner, later)[("pos", "")]["expired"] == 1
        assert_rollup_is_exact(reseller.partner, at=later)


def test_activations_count_in_their_utc_hour_and_the_partners_local_day(reseller, issue, customer):
    codes = issue(quantity=3)
    # The partner is in Pacific/Fiji (UTC+12 in 2027): local midnight of 2 March is 12:00 UTC on 1 March.
    moments = ["2027-03-01T11:59:59Z", "2027-03-01T12:00:00Z", "2027-03-01T23:00:00Z"]
    for code, moment in zip(codes, moments, strict=True):
        with time_machine.travel(moment, tick=False):
            redeem(customer, code)
    at = datetime(2027, 3, 2, 12, tzinfo=UTC)
    pending_days = activations_by_day(reseller.partner, at=at)  # read from the pending rows
    rollup.fold_pending()
    assert activations_by_day(reseller.partner, at=at) == pending_days
    hours = sorted((h.hour, h.activations) for h in ActivationHour.objects.filter(partner=reseller.partner))
    assert hours == [
        (datetime(2027, 3, 1, 11, tzinfo=UTC), 1),
        (datetime(2027, 3, 1, 12, tzinfo=UTC), 1),
        (datetime(2027, 3, 1, 23, tzinfo=UTC), 1),
    ]
    days = dict(activations_by_day(reseller.partner, at=at))
    assert days[date(2027, 3, 1)] == 1 and days[date(2027, 3, 2)] == 2
    assert_rollup_is_exact(reseller.partner, at=at)
    # In UTC the same three activations are one day's.
    set_time_zone(tenant=reseller.partner, time_zone="UTC", actor=reseller.user)
    days = dict(activations_by_day(reseller.partner, at=at))
    assert days[date(2027, 3, 1)] == 3 and days[date(2027, 3, 2)] == 0
    assert_rollup_is_exact(reseller.partner, at=at)
    # Activations older than the chart's 90 days are kept, but not shown.
    assert sum(n for _, n in activations_by_day(reseller.partner, at=at + timedelta(days=120))) == 0


def test_a_batch_without_counts_is_counted_from_its_keys(reseller, issue, customer, caplog):
    """Keys written around the services (an old import, a raw load) heal on their next change."""
    codes = issue(quantity=3)
    redeem(customer, codes[0])
    KeyBatchCounts.objects.all().delete()
    revoke_key(key=key_of(codes[1]), reason="x", actor=reseller.user)
    counts = KeyBatchCounts.objects.get()
    # The activation is still pending: a counts row counts it as available until it is folded.
    assert (counts.available_keys, counts.activated_keys, counts.revoked_keys) == (2, 0, 1)
    assert "had no counts" in caplog.text
    assert_rollup_is_exact(reseller.partner)
    counts.refresh_from_db()
    assert (counts.available_keys, counts.activated_keys, counts.revoked_keys) == (1, 1, 1)


def test_a_fold_that_meets_a_batch_without_counts_counts_it_from_its_keys(reseller, issue, customer, caplog):
    codes = issue(quantity=3)
    redeem(customer, codes[0])
    redeem(customer, codes[1])
    KeyBatchCounts.objects.all().delete()
    # One fold transaction takes the first pending row only: the second is still pending while
    # the batch is counted from its keys, and must not be counted twice when its turn comes.
    assert rollup.fold_pending(rows=1) == 2
    counts = KeyBatchCounts.objects.get()
    assert (counts.available_keys, counts.activated_keys) == (1, 2)
    assert "had no counts" in caplog.text
    assert_rollup_is_exact(reseller.partner)


def test_the_workers_periodic_job_folds_the_pending_activations(reseller, issue, customer):
    codes = issue(quantity=3)
    redeem(customer, codes[0])
    redeem(customer, codes[1])
    assert PendingActivation.objects.count() == 2
    due = [job for job in PERIODIC_JOBS if job.name == "fold-dashboard-activations"]
    assert enqueue_due(due) == ["fold-dashboard-activations"]
    run_tasks()  # the worker's own task loop, in this process
    assert not PendingActivation.objects.exists()
    counts = KeyBatchCounts.objects.get()
    assert (counts.available_keys, counts.activated_keys) == (1, 2)
    assert sum(ActivationHour.objects.values_list("activations", flat=True)) == 2
    assert_rollup_is_exact(reseller.partner)


def test_rebuild_of_one_partner_touches_only_its_rows(reseller, other_reseller, issue, customer):
    mine, theirs = issue(quantity=2), issue(quantity=2, partner=other_reseller.partner)
    redeem(customer, mine[0])
    redeem(customer, theirs[0])
    rollup.fold_pending()
    KeyBatchCounts.objects.update(available_keys=99)
    ActivationHour.objects.update(activations=99)
    rollup.rebuild(reseller.partner)
    assert KeyBatchCounts.objects.get(batch=key_of(mine[0]).batch).available_keys == 1
    assert KeyBatchCounts.objects.get(batch=key_of(theirs[0]).batch).available_keys == 99
    assert ActivationHour.objects.get(partner=reseller.partner).activations == 1
    assert ActivationHour.objects.get(partner=other_reseller.partner).activations == 99
    rollup.rebuild()
    assert_rollup_is_exact(reseller.partner, other_reseller.partner)


def test_the_data_migration_fills_the_rollup_from_the_keys(reseller, issue, customer, staff):
    codes = issue(quantity=5)
    issue(product="int", tier="scale", quantity=2)
    redeem(customer, codes[0])
    redeem(customer, codes[1])
    void_key(key=key_of(codes[1]), reason="fraud", actor=staff.user)
    revoke_key(key=key_of(codes[2]), reason="x", actor=reseller.user)
    rollup.fold_pending()
    kept = rollup_rows()
    KeyBatchCounts.objects.all().delete()
    ActivationHour.objects.all().delete()
    migration = importlib.import_module("fiscobridge.keys.migrations.0004_dashboard_rollup")
    migration.fill_from_keys(apps, None)
    assert rollup_rows() == kept


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_revocations_and_a_rebuild_keep_the_rollup_exact(reseller, issue):
    """Row locks and the pending rows: every transaction's change is counted once, whatever their
    interleaving with each other, with two folds and with a rebuild."""
    first, second = issue(quantity=12), issue(quantity=12)
    clients = [
        bearer_client(create_account(name=f"Shop {i}", email=f"buyer{i}@rollup.example", password="race-password-123"))
        for i in range(18)
    ]
    activations = [(lambda c=c, k=k: activate(c, k)) for c, k in zip(clients, first[:8] + second[:10], strict=True)]
    revocations = [
        (lambda key=key: revoke_key(key=key, reason="cancelled", actor=reseller.user)) for key in keys_of(first[8:])
    ]
    folds = [rollup.fold_pending, rollup.fold_pending]  # two workers folding at once
    results = run_at_once([*activations, *revocations, *folds, lambda: rollup.rebuild(reseller.partner)])
    assert [outcome(r) for r in results[: len(activations)]] == [(201, "ok")] * 18
    assert not [r for r in results[len(activations) :] if isinstance(r, Exception)], results
    assert_dashboards_are_exact(reseller.partner, at=clock.now())  # what was not folded yet is pending
    rollup.fold_pending()
    by_batch = {c.batch_id: c for c in KeyBatchCounts.objects.all()}
    a, b = by_batch[key_of(first[0]).batch_id], by_batch[key_of(second[0]).batch_id]
    assert (a.available_keys, a.activated_keys, a.revoked_keys) == (0, 8, 4)
    assert (b.available_keys, b.activated_keys, b.revoked_keys) == (2, 10, 0)
    assert sum(ActivationHour.objects.values_list("activations", flat=True)) == 18
    assert_rollup_is_exact(reseller.partner)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_reads_the_rollup_and_the_pending_rows_in_one_snapshot(reseller, issue, customer):
    """A fold commits between two reads at any moment: the dashboard's reads share one snapshot,
    so it can neither count the folded activations twice nor miss them."""
    codes = issue(quantity=2)
    redeem(customer, codes[0])
    client = browser_for(reseller)
    with CaptureQueriesContext(connection) as captured:
        html = client.get("/partner/").content.decode()
    sql = [q["sql"] for q in captured.captured_queries]
    reads = [i for i, statement in enumerate(sql) if "keys_" in statement]
    assert len(reads) == 3  # the pending rows (for both), the counts, the hours
    assert sql[reads[0] - 1] == "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
    assert 'data-testid="total-activated">1<' in html


# --- what the pages cost ----------------------------------------------------------------------


def test_the_dashboard_page_reads_a_fixed_number_of_rows_whatever_the_keys(
    reseller, issue, customer, django_assert_max_num_queries
):
    client = browser_for(reseller)
    client.get("/partner/")  # the session's first read
    issue(quantity=2)
    # The session, the user, the partner; in one snapshot (a transaction: here a savepoint), the
    # pending activations, the stock per package and the activations per day.
    with django_assert_max_num_queries(8) as few:
        assert client.get("/partner/").status_code == 200
    fixed = len(few)  # counted now: the next request empties Django's query log
    for index in range(4):
        codes = issue(product="int", tier="starter", quantity=3, reference=f"Order {index}")
        redeem(customer, codes[0], product="int")
    with django_assert_max_num_queries(fixed) as many:
        html = client.get("/partner/").content.decode()
    assert 'data-testid="total-activated">4<' in html
    reads_keys = [q["sql"] for q in many.captured_queries if "keys_activationkey" in q["sql"]]
    assert reads_keys == []  # the rollup only


def test_a_search_page_is_a_fixed_number_of_queries(reseller, issue, django_assert_max_num_queries):
    for index in range(4):
        issue(quantity=3, reference=f"Order {index}")
    client = browser_for(reseller)
    client.get("/partner/keys/table/")
    # The session, the user, the partner; the batches whose reference matches; the page of keys.
    with django_assert_max_num_queries(5) as captured:
        html = client.get("/partner/keys/table/?status=available&q=Order").content.decode()
    assert html.count("data-key-id=") == 12
    listing = [q["sql"] for q in captured.captured_queries if 'FROM "keys_activationkey"' in q["sql"]]
    assert len(listing) == 1 and "UNION" in listing[0]  # one ordered read per batch, merged


# --- the search gives the keys the single filter gave -----------------------------------------


def old_search(partner, *, status=None, product=None, tier=None, batch=None, q) -> list[int]:
    """The keys list's search as it was: every key of a matching batch, or of the hint, newest first."""
    keys = ActivationKey.objects.for_partner(partner)
    if status:
        keys = keys.with_display_status(status)
    if product:
        keys = keys.filter(product=product)
    if tier:
        keys = keys.filter(tier=tier)
    if batch:
        keys = keys.filter(batch_id=batch)
    batches = KeyBatch.objects.filter(partner=partner, reference__icontains=q.strip()).values_list("pk", flat=True)
    match = Q(batch_id__in=list(batches))
    tail = squash(q)[-4:]
    if len(tail) == 4 and all(c in VALUE for c in tail):
        match |= Q(last_group=tail)
    return list(keys.filter(match).order_by("-id").values_list("id", flat=True))


def all_pages(partner, limit, **filters) -> list[int]:
    seen, before = [], None
    while True:
        page, more = search_keys(partner, before_id=before, limit=limit, **filters)
        seen += [key.pk for key in page]
        if not more:
            return seen
        before = page[-1].pk


@pytest.mark.parametrize("merged_batches", [50, 1])  # one ordered read per batch; or one filter (many batches)
def test_searches_by_reference_and_hint_give_the_keys_of_before(
    reseller, other_reseller, issue, customer, monkeypatch, merged_batches
):
    monkeypatch.setattr(queries, "MERGED_BATCHES", merged_batches)
    oldest = issue(quantity=5, reference="Order 1000 Alvarez")
    issue(product="int", tier="starter", quantity=4, reference="Order 1001 Boreal")
    middle = issue(quantity=6, reference="Order 1002 Cobalt")
    issue(quantity=3, reference="Invoice 77", partner=other_reseller.partner)  # never another partner's
    newest = issue(quantity=4, reference="Order 1003 Delta", redeem_by=clock.now() + timedelta(days=1))
    redeem(customer, oldest[0])
    redeem(customer, middle[1])
    revoke_key(key=key_of(oldest[1]), reason="x", actor=reseller.user)
    hint = middle[3][-4:]
    partner = reseller.partner
    batch_of_middle = key_of(middle[0]).batch_id
    cases = [
        {"q": "Order 1000"},  # the oldest batch only
        {"q": "order 1000", "status": "available"},
        {"q": "Order"},  # every batch
        {"q": "Order", "status": "available", "product": "pos"},
        {"q": "Order", "product": "int", "tier": "starter"},
        {"q": "Order", "batch": batch_of_middle},
        {"q": hint},  # a hint alone
        {"q": f"POS-••••-••••-{hint}"},
        {"q": "Order 1000", "status": "revoked"},
        {"q": "Invoice 77"},  # the other partner's reference
        {"q": "nothing like it"},
    ]
    with time_machine.travel(clock.now() + timedelta(days=2), tick=False):  # the newest batch has expired
        cases.append({"q": "Order", "status": "expired"})
        for filters in cases:
            expected = old_search(partner, **filters)
            for limit in (2, 3, 50):
                assert all_pages(partner, limit, **filters) == expected, (filters, limit)
    assert old_search(partner, q="Order 1000") == [key.pk for key in reversed(keys_of(oldest))]
    assert old_search(partner, q=hint) == [key_of(middle[3]).pk]
    assert newest
