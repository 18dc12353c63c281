"""Issuing batches of activation keys: the only moment a plain code exists."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.core.errors import InvalidInput
from fiscobridge.core.localtime import end_of_day
from fiscobridge.core.text import clean_text
from fiscobridge.keys.codes import code_digest, generate_code
from fiscobridge.keys.models import ActivationKey, KeyBatch
from fiscobridge.keys.rollup import batch_issued
from fiscobridge.subscriptions.models import Product, Tier
from fiscobridge.webhooks import events as webhook_events

CHUNK = 2000

# A redeem-by date further out is a typo (or a probe for date overflows), not a plan.
REDEEM_BY_HORIZON = timedelta(days=36525)


def redeem_by_moment(redeem_by: date | datetime | None, *, partner) -> datetime | None:
    """The stored (UTC) deadline of what the issuer typed. A bare date means "usable through that
    day" where the partner is: the next midnight in the partner's time zone (SPEC 8), so a Samoan
    reseller's "30 Nov" ends at midnight in Apia, not at 11:00 local (midnight UTC). A date-time
    without a zone is read as UTC (the API's language)."""
    if redeem_by is None:
        return None
    if not isinstance(redeem_by, datetime):
        try:
            redeem_by = end_of_day(redeem_by, partner.time_zone)
        except OverflowError:  # 9999-12-31 has no next midnight: as refused as any bad date
            raise InvalidInput.for_field("redeem_by", "Redeem-by must be within 100 years") from None
    elif timezone.is_naive(redeem_by):
        redeem_by = timezone.make_aware(redeem_by, UTC)
    # Stored in UTC: ISO 8601 allows offsets up to ±23:59, PostgreSQL only ±15:59, and a
    # date-time "…-16:58" failed there (a 500 found by the API fuzz test, issue 10).
    return redeem_by.astimezone(UTC)


@dataclass(frozen=True)
class IssuedKey:
    id: int
    code: str  # plain code: return it to the issuer once, never store or log it


@dataclass(frozen=True)
class IssuedBatch:
    batch: KeyBatch
    keys: list[IssuedKey]


def check_package(*, product: str, tier: str, seats: int, months: int) -> str:
    """Validate what a key grants; returns the stored tier ('' for Cloud POS)."""
    if product not in Product.values:
        raise InvalidInput.for_field("product", "Product must be 'pos' or 'int'")
    tier = tier or ""
    if product == Product.INT and tier not in Tier.values:
        raise InvalidInput.for_field("tier", "Integrations keys need a tier: starter, growth or scale")
    if product == Product.POS and tier:
        raise InvalidInput.for_field("tier", "Cloud POS keys have no tier")
    if not isinstance(seats, int) or not 1 <= seats <= 1000:
        raise InvalidInput.for_field("seats", "Seats must be a whole number from 1 to 1000")
    if not isinstance(months, int) or not 1 <= months <= 60:
        raise InvalidInput.for_field("months", "Months must be a whole number from 1 to 60")
    return tier


def issue_keys(
    *,
    partner,
    actor,
    product: str,
    tier: str = "",
    seats: int,
    months: int,
    quantity: int,
    reference: str = "",
    redeem_by: date | datetime | None = None,
    max_quantity: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    ip: str | None = None,
) -> IssuedBatch:
    """Create a batch of `quantity` new keys for `partner`, all or nothing.

    Codes are inserted in bulk, CHUNK at a time; a code whose HMAC already exists (about
    one chance in 2^56 per key) is drawn again.
    """
    tier = check_package(product=product, tier=tier, seats=seats, months=months)
    limit = max_quantity if max_quantity is not None else settings.KEY_ISSUE_MAX_PER_REQUEST
    if not isinstance(quantity, int) or not 1 <= quantity <= limit:
        raise InvalidInput.for_field("quantity", f"Quantity must be a whole number from 1 to {limit}")
    reference = clean_text(reference, field="reference", max_length=200)
    redeem_by = redeem_by_moment(redeem_by, partner=partner)
    if redeem_by is not None and redeem_by <= clock.now():
        raise InvalidInput.for_field("redeem_by", "Redeem-by must be in the future")
    if redeem_by is not None and redeem_by > clock.now() + REDEEM_BY_HORIZON:
        raise InvalidInput.for_field("redeem_by", "Redeem-by must be within 100 years")

    for attempt in range(3):
        try:
            return _insert_batch(
                partner, actor, product, tier, seats, months, quantity, reference, redeem_by, on_progress, ip
            )
        except IntegrityError:
            # Another issuer inserted one of our codes between our check and our insert.
            if attempt == 2:
                raise


@transaction.atomic
def _insert_batch(partner, actor, product, tier, seats, months, quantity, reference, redeem_by, on_progress, ip):
    # What every key of the batch carries, copied onto each so that redemption reads one row.
    package = {
        "partner": partner,
        "product": product,
        "tier": tier,
        "seats": seats,
        "months": months,
        "reference": reference,
        "redeem_by": redeem_by,
    }
    batch = KeyBatch.objects.create(
        **package, quantity=quantity, created_by=actor if getattr(actor, "pk", None) else None
    )
    issued: list[IssuedKey] = []
    done = 0
    while done < quantity:
        size = min(CHUNK, quantity - done)
        codes = _fresh_codes(product, size)
        rows = [
            ActivationKey(**package, batch=batch, code_hmac=digest, last_group=code[-4:], created_at=batch.created_at)
            for code, digest in codes
        ]
        ActivationKey.objects.bulk_create(rows, batch_size=CHUNK)
        issued.extend(IssuedKey(id=row.pk, code=code) for row, (code, _) in zip(rows, codes, strict=True))
        done += size
        if on_progress:
            on_progress(size)
    record_event(
        action="key.issued",
        actor=actor,
        partner=partner,
        target=batch,
        ip=ip,
        details={
            "batch": batch.pk,
            "product": product,
            "tier": tier,
            "seats": seats,
            "months": months,
            "quantity": quantity,
        },
    )
    webhook_events.batch_issued(batch=batch)
    batch_issued(batch_id=batch.pk, quantity=quantity)  # the dashboard's counts (keys/rollup.py)
    return IssuedBatch(batch=batch, keys=issued)


def _fresh_codes(product: str, size: int) -> list[tuple[str, str]]:
    """`size` new (code, digest) pairs, unique among themselves and against stored keys."""
    chosen: dict[str, str] = {}
    while len(chosen) < size:
        for _ in range(size - len(chosen)):
            code = generate_code(product)
            chosen.setdefault(code_digest(code), code)
        taken = set(ActivationKey.objects.filter(code_hmac__in=list(chosen)).values_list("code_hmac", flat=True))
        for digest in taken:
            del chosen[digest]
    return [(code, digest) for digest, code in chosen.items()]
