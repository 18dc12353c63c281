"""Helpers of the hand-written SQL of the hot paths (the `hot_sql.py` modules, docs/decisions.md).

Raw statements get their datetimes adapted exactly as the ORM would store them, and read back
as aware UTC datetimes on both databases.
"""

from datetime import UTC, datetime

from django.db import connection
from django.utils.dateparse import parse_datetime


def to_db(moment: datetime | None):
    return connection.ops.adapt_datetimefield_value(moment)


def from_db(value) -> datetime | None:
    """A datetime read by a raw statement: PostgreSQL gives an aware one; SQLite gives a naive
    UTC one for a column it knows as datetime, and text for a computed column."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else parse_datetime(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class RowReader:
    """Builds model instances from the columns of a raw row, converted exactly as the ORM
    converts them (SQLite's 0/1 booleans and naive datetimes, JSON text…). Made once per model
    and column list; `columns` are the attnames read, in the row's order."""

    def __init__(self, model, columns: list[str]):
        self.model, self.columns = model, columns
        self.fields = [next(f for f in model._meta.concrete_fields if f.attname == name) for name in columns]
        self._converters = None  # per field, found on first use (the database is known then)

    def sql(self, alias: str) -> str:
        return ", ".join(f"{alias}.{name}" for name in self.columns)

    def build(self, values):
        """An instance from `values` (the row's slice for these columns); None if its id is NULL."""
        if values[0] is None:
            return None
        if self._converters is None:
            self._converters = []
            for field in self.fields:
                expression = field.get_col(self.model._meta.db_table)
                found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
                self._converters.append((expression, found))
        converted = []
        for (expression, converters), value in zip(self._converters, values, strict=True):
            for convert in converters:
                value = convert(value, expression, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, self.columns, converted)
