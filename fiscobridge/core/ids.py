"""Database ids and the public ids (UIDs) that people read, type and say aloud."""

import secrets

MAX_ID = 2**63 - 1  # the largest bigint: larger ids match nothing (and overflow SQLite's binding)

# Upper-case letters and digits without the look-alikes 0/O, 1/I/L: a UID read aloud or copied
# by hand survives. 31 symbols, so 10 of them carry 31^10 ≈ 2^49.5 values.
UID_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
UID_RANDOM_LENGTH = 10


def is_storable_id(value: int) -> bool:
    return 0 < value <= MAX_ID


def new_uid(prefix: str) -> str:
    """A random public id: `prefix` (one letter naming the kind of object) and 10 CSPRNG symbols."""
    return prefix + "".join(secrets.choice(UID_ALPHABET) for _ in range(UID_RANDOM_LENGTH))


def is_uid(uid: str) -> bool:
    """Could `uid` be a stored UID? Short and printable; anything else (NUL, which PostgreSQL
    refuses) cannot match, so a lookup need not run."""
    return bool(uid) and len(uid) <= 32 and uid.isprintable()
