"""Helpers of the hand-written SQL of the hot paths (the `hot_sql.py` modules, docs/decisions.md).

Raw statements get their datetimes adapted exactly as the ORM would store them, and read back
as aware UTC datetimes on both databases.
"""

from datetime import UTC, datetime

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils.dateparse import parse_datetime

# The most parameters of one hot statement: the activation's final round trip (subscription,
# attempt, two audit events, e-mail task, webhook event, deliveries and task, rollup) has 97.
HOT_STATEMENT_MAX_PARAMETERS = 160


def _cache_hot_statement_conversions() -> None:
    """psycopg turns a statement's `%s` placeholders into PostgreSQL's `$n` with a regular
    expression, and keeps the result in a 128-entry LRU cache only for statements of at most 50
    parameters (psycopg._queries, so that one-off bulk inserts do not fill it). The activation's
    round trip has more, and converting it again took 0.37 ms of CPU on every activation. Our
    hot statements are a few fixed texts, so the limit is raised for them; bulk inserts (hundreds
    of parameters) stay uncached. tests/test_hot_paths.py fails if psycopg drops the setting."""
    try:
        from psycopg import _queries
    except ImportError:  # SQLite only: no psycopg
        return
    _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, HOT_STATEMENT_MAX_PARAMETERS)


_cache_hot_statement_conversions()


def to_db(moment: datetime | None):
    return connections[DEFAULT_DB_ALIAS].ops.adapt_datetimefield_value(moment)


def from_db(value) -> datetime | None:
    """A datetime read by a raw statement: PostgreSQL gives an aware one; SQLite gives a naive
    UTC one for a column it knows as datetime, and text for a computed column."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else parse_datetime(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class RowReader:
    """Builds model instances from the columns of a raw row, converted exactly as the ORM
    converts them (SQLite's 0/1 booleans and naive datetimes, JSON text…); the columns not read
    are deferred, as with `.only()`, so an instance never carries made-up values. Made once per
    model and column list; `columns` are attnames, kept in the model's field order (select them
    with `sql()`)."""

    def __init__(self, model, columns: list[str]):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if f.attname in columns]
        self.columns = [f.attname for f in self.fields]
        missing = set(columns) - set(self.columns)
        if missing:
            raise ValueError(f"{model.__name__} has no columns {sorted(missing)}")
        self._converters = None  # (index, expression, converters) of the fields that have any: _prepare()
        self._plain = True

    def sql(self, alias: str) -> str:
        return ", ".join(f"{alias}.{name}" for name in self.columns)

    def build(self, values):
        """An instance from `values` (the row's slice for these columns); None if its id is NULL."""
        if values[0] is None:
            return None
        if self._converters is None:
            self._prepare()
        if self._converters:
            database = connections[DEFAULT_DB_ALIAS]
            values = list(values)
            for index, expression, converters in self._converters:
                for convert in converters:
                    values[index] = convert(values[index], expression, database)
        if not self._plain:
            return self.model.from_db(DEFAULT_DB_ALIAS, self.columns, values)
        # What from_db() ends with, without Model.__init__'s generic argument handling and its two
        # signals (no receiver listens to this model: checked in _prepare): the row's values as
        # the instance's attributes, the columns not read left deferred, as from_db leaves them.
        instance = self.model.__new__(self.model)
        instance.__dict__.update(zip(self.columns, values, strict=True))
        instance._state = ModelState()
        instance._state.adding = False
        instance._state.db = DEFAULT_DB_ALIAS
        return instance

    def _prepare(self) -> None:
        """Found on first use, when the database is known: the converters of the fields that have
        any, and whether an instance may skip Model.__init__."""
        database = connections[DEFAULT_DB_ALIAS]
        converters = []
        for index, field in enumerate(self.fields):
            expression = field.get_col(self.model._meta.db_table)
            found = database.ops.get_db_converters(expression) + expression.get_db_converters(database)
            if found:
                converters.append((index, expression, found))
        self._plain = not (pre_init.has_listeners(self.model) or post_init.has_listeners(self.model))
        self._converters = converters


_INSERTS: dict = {}  # (model, vendor, with_id) → (fields, "INSERT INTO … VALUES ", one row's marks)


def insert_sql(instances: list, *, with_id: bool = False) -> tuple[str, list]:
    """`INSERT INTO … VALUES …` for unsaved instances of one model (every column but a database-
    made id, unless `with_id`: an id reserved beforehand), each value prepared by its field
    exactly as `save()` would prepare it."""
    model = type(instances[0])
    database = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: the proxy costs a lookup per use
    shape = _INSERTS.get((model, database.vendor, with_id))
    if shape is None:
        fields = [field for field in model._meta.concrete_fields if with_id or not field.db_returning]
        columns = ", ".join(database.ops.quote_name(field.column) for field in fields)
        shape = (
            fields,
            f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ",
            f"({', '.join(['%s'] * len(fields))})",
        )
        _INSERTS[(model, database.vendor, with_id)] = shape
    fields, head, row = shape
    params = [field.get_db_prep_save(field.pre_save(obj, True), database) for obj in instances for field in fields]
    return head + ", ".join([row] * len(instances)), params


def run_together(statements: list[tuple[str, list]]) -> list[int]:
    """Run independent INSERT/UPDATE statements (none reads another's changes); returns the rows
    each one changed. PostgreSQL gets them in one round trip, as data-modifying WITH queries;
    SQLite, in process, one after the other."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            counts = []
            for sql, params in statements:
                cursor.execute(sql, params)
                counts.append(cursor.rowcount)
            return counts
        parts = ", ".join(f"s{index} AS ({sql} RETURNING 1)" for index, (sql, _) in enumerate(statements))
        totals = ", ".join(f"(SELECT COUNT(*) FROM s{index})" for index in range(len(statements)))
        cursor.execute(f"WITH {parts} SELECT {totals}", [value for _, params in statements for value in params])
        return list(cursor.fetchone())
