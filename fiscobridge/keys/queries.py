"""Reusable reads of a partner's keys (list, search, lookup) — always from the partner first."""

from django.db import connection
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
    if before_id is not None:
        keys = keys.filter(pk__lt=before_id)
    if q:
        keys = _search(partner, keys, q, size=limit + 1, product=product, tier=tier, batch=batch)
    page = list(keys.order_by("-id")[: limit + 1])
    return page[:limit], len(page) > limit


# Above this many batches whose reference matches, a search reads the keys of all of them in one
# id order instead of one ordered scan per batch (SQLite allows 500 terms in a UNION).
MERGED_BATCHES = 50


def _search(partner, keys, q: str, *, size: int, product=None, tier=None, batch=None):
    """`keys` narrowed to those whose hint (`POS-••••-••••-AB3D`, or just `AB3D`) or reference matches `q`.

    A key's reference is its batch's, so the text is matched on the partner's few batches. Then
    each source of matches — each matching batch, read through the (batch, -id) index, and the
    last group index — gives its own newest `size` keys, and the page is the newest `size` of
    their union: the database reads about one page of index entries per source, however old the
    batch and however many keys are newer (a single `batch IN (…) OR last_group = …` filter made
    PostgreSQL walk the primary key back from the newest key: 0.35 s at 1,000,000 keys).
    """
    batches = KeyBatch.objects.filter(partner=partner, reference__icontains=q.strip())
    if product:
        batches = batches.filter(product=product)
    if tier:
        batches = batches.filter(tier=tier)
    if batch:
        batches = batches.filter(pk=batch)
    batch_ids = list(batches.values_list("pk", flat=True))
    tail = squash(q)[-4:]
    hint = len(tail) == 4 and all(c in VALUE for c in tail)
    if len(batch_ids) > MERGED_BATCHES:
        # Many batches: with literal ids the planner sees the matches and reads them in id order.
        match = Q(batch_id__in=batch_ids)
        return keys.filter(match | Q(last_group=tail) if hint else match)
    sources = [keys.filter(batch_id=batch_id) for batch_id in batch_ids]
    if hint:
        sources.append(keys.filter(last_group=tail))
    if not sources:
        return keys.none()
    if len(sources) == 1:
        return sources[0]
    newest = [_newest_ids(source, size) for source in sources]
    return keys.filter(pk__in=newest[0].union(*newest[1:]).order_by("-id")[:size])


def _newest_ids(keys, size: int):
    """The ids of the newest `size` of `keys`, as a part of a UNION."""
    ids = keys.order_by("-id").values_list("id", flat=True)[:size]
    if connection.features.supports_slicing_ordering_in_compound:
        return ids  # PostgreSQL: (SELECT … ORDER BY id DESC LIMIT n) UNION (…)
    # SQLite takes no LIMIT in a part of a UNION, only in a subquery of one.
    return ActivationKey.objects.filter(pk__in=ids).values_list("id", flat=True)
