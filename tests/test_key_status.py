"""The one rule of a key's display status: the filter per status and the status of a loaded key
agree for every combination of facts, and the statuses partition a partner's keys."""

from datetime import timedelta

import pytest

from fiscobridge.core import clock
from fiscobridge.keys.models import ActivationKey, KeyDisplayStatus, KeyStatus
from fiscobridge.keys.queries import count_by_display_status

# (stored status, redeem-by relative to now in days or None, voided?) and the expected display status
CASES = [
    (KeyStatus.AVAILABLE, None, False, KeyDisplayStatus.AVAILABLE),
    (KeyStatus.AVAILABLE, 3, False, KeyDisplayStatus.AVAILABLE),
    (KeyStatus.AVAILABLE, -3, False, KeyDisplayStatus.EXPIRED),
    (KeyStatus.ACTIVATED, None, False, KeyDisplayStatus.ACTIVATED),
    (KeyStatus.ACTIVATED, -3, False, KeyDisplayStatus.ACTIVATED),  # redeemed in time, then the date passed
    (KeyStatus.ACTIVATED, None, True, KeyDisplayStatus.VOIDED),
    (KeyStatus.REVOKED, None, False, KeyDisplayStatus.REVOKED),
    (KeyStatus.REVOKED, -3, False, KeyDisplayStatus.REVOKED),
]


@pytest.fixture
def keys_in_every_state(issue, customer):
    """One key per case, its stored facts set directly (each combination the services can reach)."""
    now = clock.now()
    codes = issue(quantity=len(CASES))
    keys = list(ActivationKey.objects.order_by("id"))
    assert len(keys) == len(codes) == len(CASES)
    for key, (status, redeem_in_days, voided, _) in zip(keys, CASES, strict=True):
        key.status = status
        key.redeem_by = None if redeem_in_days is None else now + timedelta(days=redeem_in_days)
        if status == KeyStatus.ACTIVATED:
            key.activated_account, key.activated_at = customer.account, now - timedelta(days=1)
        if status == KeyStatus.REVOKED:
            key.revoked_at = now - timedelta(days=1)
        key.voided_at = now if voided else None
        key.save()
    return keys, now


def test_each_key_matches_exactly_the_filter_of_its_own_status(keys_in_every_state):
    keys, now = keys_in_every_state
    for key, (*_, expected) in zip(keys, CASES, strict=True):
        assert key.display_status_at(now) == expected
        matching = [
            status
            for status in KeyDisplayStatus
            if ActivationKey.objects.with_display_status(status, now).filter(pk=key.pk).exists()
        ]
        assert matching == [expected], f"key {key.pk}: filters {matching}, rule {expected}"


def test_counts_by_display_status_partition_every_key(keys_in_every_state):
    keys, now = keys_in_every_state
    counts = count_by_display_status(ActivationKey.objects.all(), now)
    assert list(counts) == KeyDisplayStatus.values  # every status, in the one order
    expected = {status: sum(1 for *_, e in CASES if e == status) for status in KeyDisplayStatus.values}
    assert counts == expected and sum(counts.values()) == len(keys)


def test_redeemable_is_the_available_display_status(keys_in_every_state):
    keys, now = keys_in_every_state
    redeemable = set(ActivationKey.objects.redeemable(now).values_list("pk", flat=True))
    assert redeemable == {k.pk for k in keys if k.display_status_at(now) == KeyDisplayStatus.AVAILABLE}


def test_an_unknown_display_status_is_refused_not_ignored(db):
    with pytest.raises(ValueError):
        ActivationKey.objects.with_display_status("lost")
