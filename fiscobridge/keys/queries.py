"""Reusable reads of a partner's keys (list, search, lookup) — always from the partner first."""

from django.db.models import Count, Q

from fiscobridge.core.errors import InvalidInput
from fiscobridge.core.ids import is_storable_id
from fiscobridge.core.text import clean_text
from fiscobridge.keys.codes import VALUE, code_digest, parse_key, squash
from fiscobridge.keys.errors import KeyNotFound
from fiscobridge.keys.models import (
    ActivationKey,
    KeyBatch,
    KeyDisplayStatus,
    display_status_filters,
)


def get_key_for_partner(partner, key_id: int) -> ActivationKey:
    """The partner's own key, or 404 — also for another partner's key."""
    if not is_storable_id(key_id):
        raise KeyNotFound()
    key = ActivationKey.objects.for_partner(partner).select_related("activated_account").filter(pk=key_id).first()
    if key is None:
        raise KeyNotFound()
    return key


def lookup_key_for_partner(partner, raw: str) -> ActivationKey:
    """Find one of the partner's keys by its full code. Raises KeyFormatError or KeyNotFound."""
    parsed = parse_key(raw)
    key = (
        ActivationKey.objects.for_partner(partner)
        .select_related("activated_account")
        .filter(code_hmac=code_digest(parsed.canonical))
        .first()
    )
    if key is None:
        raise KeyNotFound()
    return key


def display_status_counts(at) -> dict[str, Count]:
    """Aggregates counting keys per display status, for `.aggregate()` or `.annotate()`."""
    return {str(status): Count("id", filter=condition) for status, condition in display_status_filters(at).items()}


def count_by_display_status(keys, at) -> dict[str, int]:
    """How many of `keys` are in each display status, in one query."""
    return keys.aggregate(**display_status_counts(at))


def search_keys(partner, *, status=None, product=None, tier=None, batch=None, q=None, before_id=None, limit=50):
    """One page of the partner's keys, newest first, by keyset (id < before_id): constant cost
    at any depth. Returns (keys, has_more)."""
    keys = ActivationKey.objects.for_partner(partner).select_related("activated_account")
    if status:
        if status not in KeyDisplayStatus.values:
            raise InvalidInput.for_field("status", f"Status must be one of: {', '.join(KeyDisplayStatus.values)}")
        keys = keys.with_display_status(status)
    if product:
        keys = keys.filter(product=product)
    if tier:
        keys = keys.filter(tier=tier)
    if batch is not None and not is_storable_id(batch):
        return [], False
    if batch:
        keys = keys.filter(batch_id=batch)
    q = clean_text(q, field="q", max_length=200)
    if q:
        keys = keys.filter(_search(partner, q))
    if before_id is not None:
        keys = keys.filter(pk__lt=before_id)
    page = list(keys.order_by("-id")[: limit + 1])
    return page[:limit], len(page) > limit


def _search(partner, q: str) -> Q:
    """A hint (`POS-••••-••••-AB3D`, or just `AB3D`) matches the last group; any text, the reference.

    A key's reference is its batch's, so the text is matched on the partner's few batches and
    the keys are then read through the (batch, -id) index: at a million keys, matching the keys'
    own column would scan from the newest key back to an old batch.
    """
    # Materialised: with literal ids the planner sees how few keys match and uses the indexes
    # (batch, -id) and last_group instead of walking the primary key backwards.
    batches = list(
        KeyBatch.objects.filter(partner=partner, reference__icontains=q.strip()).values_list("pk", flat=True)
    )
    match = Q(batch_id__in=batches)
    tail = squash(q)[-4:]
    if len(tail) == 4 and all(c in VALUE for c in tail):
        match |= Q(last_group=tail)
    return match
