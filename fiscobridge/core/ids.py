MAX_ID = 2**63 - 1  # the largest bigint: larger ids match nothing (and overflow SQLite's binding)


def is_storable_id(value: int) -> bool:
    return 0 < value <= MAX_ID
