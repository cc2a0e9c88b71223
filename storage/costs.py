"""The cost history's reads and the rollups cached from them, for :mod:`bot.services.costs`.

The reconcile loop stores replica change points and the metrics scraper serving/idle change
points (:mod:`storage.history`); a cost query reads, per deployment, the points of a span (plus the
one before it, which sets the state the span opens with) and the per-day rollups already cached
(``cost_rollups``), all in one read snapshot (:meth:`CostsRepo.cost_snapshot`), and caches the
whole days it integrated only if the history did not change meanwhile
(:meth:`CostsRepo.cache_rollups`). Which spans and days to read is the service's decision.

A change to the history drops the cached days it changes and bumps the generation: triggers in the
database do it (on both engines, :mod:`storage.alembic`'s baseline), whoever writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import operator
from collections.abc import Iterator, Mapping
from itertools import groupby
from typing import Any

from sqlalchemy import Table, Text, and_, bindparam, func, literal_column, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable, Select
from sqlalchemy.sql.elements import ColumnElement

from bot.core.costs import Tally, epoch_us, point_time
from storage.db import Database
from storage.rows import IN_CHUNK, Repository
from storage.schema import replica_history, traffic_history
from storage.sql import epoch_us as at_us
from storage.sql import json_object_rows

log = logging.getLogger("fwbot.costs")


# Stored times come back as integer microseconds since the epoch, computed by the database for the
# one format fwbot writes (storage.sql.epoch_us); any other text is parsed here, in Python.
def _span(table: Table, columns: str, *, raw_time: bool = False) -> Select:
    """Per deployment in ``:want`` (a JSON object ``{deployment_id: since}``): its rows in
    ``[since, :until)`` and the last one before ``since`` (it sets the state the span opens
    with), as tuples normalised the way ``ReplicaPoint`` and ``ServingPoint`` read a row. One
    range of the primary key (deployment_id, at) each, so a span of one day reads one day.

    ``raw_time``: the time as stored (text), for the rows :class:`storage.sql.epoch_us` left to
    Python (NULL on PostgreSQL)."""
    w = json_object_rows(bindparam("want", type_=Text)).table_valued("key", "value").alias("w")
    r, h = table.alias("r"), table.alias("h")
    before = select(func.max(h.c.at)).where(h.c.deployment_id == w.c.key, h.c.at < w.c.value).scalar_subquery()
    at: ColumnElement = r.c.at if raw_time else at_us(r.c.at)
    return select(r.c.deployment_id, at, literal_column(columns)).select_from(w.join(r, and_(
        r.c.deployment_id == w.c.key,
        r.c.at >= func.coalesce(before, w.c.value),
        r.c.at < bindparam("until", type_=Text))))


# Normalised the way ReplicaPoint reads a row: replicas at least 0, the accelerator type or None,
# the count at least 1, single-region as 0/1 (CASE in place of SQLite's two-argument MAX).
_REPLICA_COLUMNS = """CASE WHEN r.replicas > 0 THEN r.replicas ELSE 0 END, NULLIF(r.accelerator_type, ''),
    CASE WHEN r.accelerator_count > 1 THEN r.accelerator_count ELSE 1 END,
    CASE WHEN r.single_region != 0 THEN 1 ELSE 0 END"""
_REPLICA_SPAN = _span(replica_history, _REPLICA_COLUMNS)
_REPLICA_SPAN_RAW = _span(replica_history, _REPLICA_COLUMNS, raw_time=True)
# The serving/idle split, and the bound it honours. The metrics endpoint gives a request *rate
# over the minute before each scrape*, not when requests came, so the scraper records a serving
# stretch (storage.history.HistoryRepo.record_traffic_many with the rate window) from the earliest its
# first request can have come — the later of the previous scrape that saw none and the first scrape that
# saw one less the window — to the latest its last one can have come — the earlier of the last
# scrape that saw one and the first that saw none less the window. That is the shortest span the
# scrapes guarantee holds every request of the stretch; replica time in it counts as serving, the
# rest as idle. So idle is never claimed while a request may have been served, and serving is
# never placed after the requests. One 24 ms request counts as at most one scrape interval of
# serving when the minute is a whole number of intervals (10 s at 6 scrapes a minute, 60 s at the
# default one), under two otherwise; before, it counted at least the whole minute the rate window
# kept it visible, placed after the request. Finer than that the metrics cannot say.
_SERVING_COLUMNS = "CASE WHEN r.serving != 0 THEN 1 ELSE 0 END"
_SERVING_SPAN = _span(traffic_history, _SERVING_COLUMNS)
_SERVING_SPAN_RAW = _span(traffic_history, _SERVING_COLUMNS, raw_time=True)


def _first_points() -> Select:
    """Every deployment with a replica point, and the time of its first: one index seek each (a
    skip scan over the primary key) instead of a scan of the whole history."""
    a, b, c = (replica_history.alias(n) for n in "abc")
    ids = select(func.min(a.c.deployment_id).label("id")).cte("ids", recursive=True)
    ids = ids.union_all(
        select(select(func.min(b.c.deployment_id)).where(b.c.deployment_id > ids.c.id).scalar_subquery())
        .where(ids.c.id.is_not(None)))
    first = select(at_us(c.c.at)).where(c.c.deployment_id == ids.c.id).order_by(c.c.at).limit(1)
    return select(ids.c.id, first.scalar_subquery()).where(ids.c.id.is_not(None))


_FIRST_POINTS = _first_points()
# The first times epoch_us left to Python (NULL on PostgreSQL), as stored.
_FIRST_RAW = text("SELECT deployment_id, MIN(at) FROM replica_history WHERE deployment_id IN :ids "
                  "GROUP BY deployment_id").bindparams(bindparam("ids", expanding=True, type_=Text()))

_ROLLUPS = text("""SELECT deployment_id, day, NULLIF(accelerator_type, ''), single_region, serving_us, idle_us
                   FROM cost_rollups WHERE tz = :tz AND day >= :first AND day <= :last""")
# Every column replaced on a day already cached (the primary key's are equal).
_CACHE = """INSERT INTO cost_rollups (tz, deployment_id, day, day_end, accelerator_type, single_region,
                                      serving_us, idle_us)
            VALUES (:tz, :deployment_id, :day, :day_end, :accelerator_type, :single_region, :serving_us, :idle_us)
            ON CONFLICT (tz, day, deployment_id, accelerator_type, single_region) DO UPDATE SET
                day_end = excluded.day_end, serving_us = excluded.serving_us, idle_us = excluded.idle_us"""
_CACHE_COLUMNS = ("tz", "deployment_id", "day", "day_end", "accelerator_type", "single_region", "serving_us", "idle_us")


def _tuples(db: Database, sql: Executable, params: Mapping[str, Any] | None = None) -> list[tuple]:
    """Every row as the driver's plain tuple. A month of history is hundreds of thousands of
    points, and a SQLAlchemy ``Row`` each (:meth:`Database.rows`) made the read half again as
    slow, and the integration reading them slower too. These columns need no conversion by
    SQLAlchemy (text and integers), so the driver's rows are the values."""
    with db.connection() as conn:
        result = conn.execute(sql, dict(params) if params else {})
        try:
            return result.cursor.fetchall()
        finally:
            result.close()


def _points(db: Database, sql: Select, raw_sql: Select, want: Mapping[str, str], until: str) -> dict[str, list[tuple]]:
    by: dict[str, list[tuple]] = {}
    if not want:
        return by
    rows = _tuples(db, sql, {"want": json.dumps(want), "until": until})
    if any(row[1].__class__ is not int for row in rows):
        rows = _parsed(db, rows, raw_sql, want, until)
    for dep_id, points in groupby(rows, _deployment):
        got = by.get(dep_id)
        if got is None:
            by[dep_id] = list(points)
        else:
            got.extend(points)
    for points in by.values():
        points.sort(key=point_time)
    return by


def _parsed(db: Database, rows: list[tuple], raw_sql: Select, want: Mapping[str, str], until: str) -> list:
    """``rows`` with the times the database left as text (SQLite) parsed here; the deployments
    with a time it left NULL (PostgreSQL) are read again with their times as stored."""
    unread = {row[0] for row in rows if row[1] is None}
    fixed = [row if row[1].__class__ is int else (row[0], epoch_us(row[1]), *row[2:])
             for row in rows if row[0] not in unread]
    if unread:
        again = _tuples(db, raw_sql, {"want": json.dumps({d: want[d] for d in unread}), "until": until})
        fixed += [(row[0], epoch_us(row[1]), *row[2:]) for row in again]
    return fixed


_deployment = operator.itemgetter(0)


def rollup_rows(tz_name: str, dep_id: str, day: str, day_end: str, tally: Tally) -> list[tuple]:
    """``cost_rollups`` rows of one deployment's day: serving and idle GPU time per accelerator
    type and placement, or one marker row when nothing ran."""
    split: dict[tuple[str, int], list[int]] = {}
    for (acc_type, single, is_serving), gpu_us in tally.items():
        pair = split.setdefault((acc_type or "", int(single)), [0, 0])
        pair[0 if is_serving else 1] += gpu_us
    if not split:
        return [(tz_name, dep_id, day, day_end, "", 0, 0, 0)]
    return [(tz_name, dep_id, day, day_end, acc_type, single, s_us, i_us)
            for (acc_type, single), (s_us, i_us) in split.items()]


class CostSnapshot:
    """The cost history as of one read transaction: every read here sees the same history (the
    reads run inside :meth:`CostsRepo.cost_snapshot`'s block, on its thread)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def generation(self) -> int:
        """The history's generation (``cost_rollup_state``), which every change to it bumps."""
        return self._db.scalar(_GENERATION)

    def first_points(self) -> dict[str, int]:
        """Every deployment with a replica point, and the time of its first (µs since the epoch)."""
        first = {dep_id: at if at.__class__ is int or at is None else epoch_us(at)
                 for dep_id, at in _tuples(self._db, _FIRST_POINTS)}
        unread = [dep_id for dep_id, at in first.items() if at is None]
        for i in range(0, len(unread), IN_CHUNK):
            for dep_id, at in self._db.rows(_FIRST_RAW, {"ids": unread[i:i + IN_CHUNK]}):
                first[dep_id] = epoch_us(at)
        return first

    def rollups(self, tz_name: str, first_day: str, last_day: str) -> list[tuple]:
        """The cached days ``first_day`` … ``last_day`` (local dates in ``tz_name``), as rows
        ``(deployment_id, day, accelerator_type or None, single_region, serving_us, idle_us)``."""
        return _tuples(self._db, _ROLLUPS, {"tz": tz_name, "first": first_day, "last": last_day})

    def replica_points(self, want: Mapping[str, str], until: str) -> dict[str, list[tuple]]:
        """Per deployment in ``want`` (``{deployment_id: since}``): its replica points in ``[since,
        until)`` and the one before, as ``ReplicaPoint`` reads them, in time order."""
        return _points(self._db, _REPLICA_SPAN, _REPLICA_SPAN_RAW, want, until)

    def serving_points(self, want: Mapping[str, str], until: str) -> dict[str, list[tuple]]:
        """:meth:`replica_points` for the serving/idle change points."""
        return _points(self._db, _SERVING_SPAN, _SERVING_SPAN_RAW, want, until)


_GENERATION = "SELECT gen FROM cost_rollup_state WHERE id = 1"


class CostsRepo(Repository):
    @contextlib.contextmanager
    def cost_snapshot(self) -> Iterator[CostSnapshot]:
        """One read snapshot for the generation, the rollups and the points (the caller's
        transaction, when it is in one already)."""
        with self.db.snapshot():
            yield CostSnapshot(self.db)

    def cache_rollups(self, generation: int, rows: list[tuple]) -> bool:
        """Store these :func:`rollup_rows` if the history is still at ``generation`` (what they were
        computed from may be stale otherwise); whether they were stored. A failed write is logged,
        not raised: the figures computed stand, and the next query computes them again."""
        try:
            with self.db.write():  # no history write between the comparison and the rows
                if self.db.scalar(_GENERATION) != generation:
                    return False
                self.db.executemany(_CACHE, [dict(zip(_CACHE_COLUMNS, row, strict=True)) for row in rows])
                return True
        except DBAPIError as e:
            log.warning("cost rollups not cached: %s", e)
            return False
