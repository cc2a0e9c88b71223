"""SQL the two engines write differently, as SQLAlchemy constructs compiled per dialect.

Everything else fwbot runs is SQL both engines accept as written; where they differ, the
difference lives here, one construct each, so the queries that use them read the same on both
(:mod:`storage.db`).

- :class:`epoch_us`: a stored time (RFC3339 text) as integer microseconds since the epoch.
- :class:`json_object_rows`: a JSON object, bound as text, as a table of ``(key, value)`` rows.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["epoch_us", "json_object_rows"]


# The one format fwbot writes its times in (bot.core.clock.iso): ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
def _standard_shape(col: str) -> str:
    return f"length({col}) = 27 AND substr({col}, 20, 1) = '.' AND substr({col}, 27) = 'Z'"


class epoch_us(FunctionElement):
    """``epoch_us(column)``: the time in a text column as integer microseconds since the epoch,
    computed by the database when the text has the shape fwbot writes
    (``YYYY-MM-DDTHH:MM:SS.ffffffZ``). A month of history is hundreds of thousands of points, and
    parsing each into a datetime in Python was most of a cost summary.

    Any other text is not computed here: on SQLite the text itself comes back (a row holds any
    type), on PostgreSQL NULL (a column has one type); the caller parses those in Python
    (:func:`bot.core.costs.epoch_us`) from the text, which it reads again on PostgreSQL.

    The whole seconds are taken from the text without its fraction and the microseconds added
    from the text: SQLite keeps times in milliseconds and rounds, so ``…:53.999950Z`` parsed
    whole would come back as 54 s.
    """

    type = BigInteger()
    name = "epoch_us"
    inherit_cache = True


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element: epoch_us, compiler, **kw) -> str:
    (column,) = element.clauses.clauses
    col = compiler.process(column, **kw)
    whole = f"substr({col}, 1, 19)"
    version = compiler.dialect.server_version_info or (0,)
    # unixepoch() (SQLite 3.38) is the cheaper of the two.
    seconds = f"unixepoch({whole})" if version >= (3, 38) else f"CAST(strftime('%s', {whole}) AS INTEGER)"
    return (f"CASE WHEN {_standard_shape(col)} "
            f"THEN {seconds} * 1000000 + CAST(substr({col}, 21, 6) AS INTEGER) ELSE {col} END")


@compiles(epoch_us, "postgresql")
def _epoch_us_postgresql(element: epoch_us, compiler, **kw) -> str:
    (column,) = element.clauses.clauses
    col = compiler.process(column, **kw)
    # A timestamp without a time zone: the text's own digits, read as UTC whatever the session's
    # TimeZone (its EXTRACT(EPOCH) counts from 1970-01-01 00:00:00 without regard to zones).
    seconds = f"CAST(EXTRACT(EPOCH FROM CAST(substr({col}, 1, 19) AS timestamp)) AS BIGINT)"
    return (f"CASE WHEN {_standard_shape(col)} "
            f"THEN {seconds} * 1000000 + CAST(substr({col}, 21, 6) AS BIGINT) END")


class json_object_rows(FunctionElement):
    """``json_object_rows(bindparam("want")).table_valued("key", "value")``: the JSON object
    bound as text (``json.dumps({...})``) as rows ``(key, value)``, each value as text (the
    objects given here map ids to times). One parameter however many entries, where a ``VALUES``
    list would take two per entry.

    SQLite: ``json_each(:want)``; PostgreSQL: ``json_each_text(CAST(:want AS json))``."""

    name = "json_object_rows"
    inherit_cache = True


@compiles(json_object_rows, "sqlite")
def _json_object_rows_sqlite(element: json_object_rows, compiler, **kw) -> str:
    (document,) = element.clauses.clauses
    return f"json_each({compiler.process(document, **kw)})"


@compiles(json_object_rows, "postgresql")
def _json_object_rows_postgresql(element: json_object_rows, compiler, **kw) -> str:
    (document,) = element.clauses.clauses
    return f"json_each_text(CAST({compiler.process(document, **kw)} AS json))"
