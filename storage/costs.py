"""The cost history's reads and the rollups cached from them, for :mod:`bot.services.costs`.

The reconcile loop stores replica change points and the metrics scraper serving/idle change
points (:mod:`storage.history`); a cost query reads, per deployment, the points of a span (plus the
one before it, which sets the state the span opens with) and the per-day rollups already cached
(``cost_rollups``), all in one read snapshot (:meth:`CostsRepo.cost_snapshot`), and caches the
whole days it integrated only if the history did not change meanwhile
(:meth:`CostsRepo.cache_rollups`). Which spans and days to read is the service's decision.
"""

from __future__ import annotations

import contextlib
import json
import logging
import operator
import sqlite3
from collections.abc import Iterator, Mapping
from itertools import groupby

from bot.core.costs import Tally, epoch_us, point_time
from storage.rows import Repository

log = logging.getLogger("fwbot.costs")


# A stored time as integer microseconds since the epoch, computed by SQLite for the one format
# fwbot writes (``iso``: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``); any other text comes back as is and
# is parsed in Python. A month of history is hundreds of thousands of points: parsing each into
# a datetime was most of a cost summary.
def _at_us(col: str) -> str:
    # The whole seconds from the text without its fraction: SQLite keeps times in milliseconds
    # and rounds, so ``…:53.999950Z`` would come back as 54 s. unixepoch() (SQLite 3.38) is the
    # cheaper of the two.
    whole = f"substr({col}, 1, 19)"
    seconds = f"unixepoch({whole})" if sqlite3.sqlite_version_info >= (3, 38) else f"CAST(strftime('%s', {whole}) AS INTEGER)"
    return f"""CASE WHEN length({col}) = 27 AND substr({col}, 20, 1) = '.' AND substr({col}, 27) = 'Z'
                 THEN {seconds} * 1000000 + CAST(substr({col}, 21, 6) AS INTEGER)
                 ELSE {col} END"""


def _span_sql(table: str, columns: str) -> str:
    """Per deployment in ``:want`` (a JSON object ``{deployment_id: since}``): its rows in
    ``[since, :until)`` and the last one before ``since`` (it sets the state the span opens
    with), as tuples normalised the way ``ReplicaPoint`` and ``ServingPoint`` read a row. One
    range of the primary key (deployment_id, at) each, so a span of one day reads one day."""
    return f"""
    SELECT r.deployment_id, {_at_us("r.at")}, {columns} FROM json_each(:want) w JOIN {table} r
        ON r.deployment_id = w.key
       AND r.at >= COALESCE((SELECT MAX(h.at) FROM {table} h WHERE h.deployment_id = w.key AND h.at < w.value),
                            w.value)
       AND r.at < :until"""


_REPLICA_SPAN = _span_sql("replica_history", """MAX(0, COALESCE(r.replicas, 0)), NULLIF(r.accelerator_type, ''),
    CASE WHEN r.accelerator_count THEN MAX(1, r.accelerator_count) ELSE 1 END, r.single_region != 0""")
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
_SERVING_SPAN = _span_sql("traffic_history", "COALESCE(r.serving, 0) != 0")

# Every deployment with a replica point, and the time of its first: one index seek each (a skip
# scan over the primary key) instead of a scan of the whole history.
_FIRST_POINTS = f"""
    WITH RECURSIVE ids(id) AS (
        SELECT MIN(deployment_id) FROM replica_history
        UNION ALL
        SELECT (SELECT MIN(deployment_id) FROM replica_history WHERE deployment_id > ids.id)
        FROM ids WHERE ids.id IS NOT NULL)
    SELECT id, (SELECT {_at_us("at")} FROM replica_history WHERE deployment_id = ids.id ORDER BY at LIMIT 1)
    FROM ids WHERE id IS NOT NULL"""

_ROLLUPS = """SELECT deployment_id, day, NULLIF(accelerator_type, ''), single_region, serving_us, idle_us
              FROM cost_rollups WHERE tz = ? AND day >= ? AND day <= ?"""
_CACHE = """INSERT OR REPLACE INTO cost_rollups (tz, deployment_id, day, day_end, accelerator_type, single_region,
                                               serving_us, idle_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""


def _points(cursor: sqlite3.Cursor, sql: str, want: Mapping[str, str], until: str) -> dict[str, list[tuple]]:
    by: dict[str, list[tuple]] = {}
    if not want:
        return by
    rows = cursor.execute(sql, {"want": json.dumps(want), "until": until}).fetchall()
    if any(row[1].__class__ is not int for row in rows):
        rows = [row if row[1].__class__ is int else (row[0], epoch_us(row[1]), *row[2:]) for row in rows]
    for dep_id, points in groupby(rows, _deployment):
        got = by.get(dep_id)
        if got is None:
            by[dep_id] = list(points)
        else:
            got.extend(points)
    for points in by.values():
        points.sort(key=point_time)
    return by


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
    """The cost history as of one read transaction: every read here sees the same history."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def generation(self) -> int:
        """The history's generation (``cost_rollup_state``), which every change to it bumps."""
        return self._cursor.execute("SELECT gen FROM cost_rollup_state WHERE id = 1").fetchone()[0]

    def first_points(self) -> dict[str, int]:
        """Every deployment with a replica point, and the time of its first (µs since the epoch)."""
        return {dep_id: at if at.__class__ is int else epoch_us(at)
                for dep_id, at in self._cursor.execute(_FIRST_POINTS)}

    def rollups(self, tz_name: str, first_day: str, last_day: str) -> sqlite3.Cursor:
        """The cached days ``first_day`` … ``last_day`` (local dates in ``tz_name``), as rows
        ``(deployment_id, day, accelerator_type or None, single_region, serving_us, idle_us)``."""
        return self._cursor.execute(_ROLLUPS, (tz_name, first_day, last_day))

    def replica_points(self, want: Mapping[str, str], until: str) -> dict[str, list[tuple]]:
        """Per deployment in ``want`` (``{deployment_id: since}``): its replica points in ``[since,
        until)`` and the one before, as ``ReplicaPoint`` reads them, in time order."""
        return _points(self._cursor, _REPLICA_SPAN, want, until)

    def serving_points(self, want: Mapping[str, str], until: str) -> dict[str, list[tuple]]:
        """:meth:`replica_points` for the serving/idle change points."""
        return _points(self._cursor, _SERVING_SPAN, want, until)


class CostsRepo(Repository):
    @contextlib.contextmanager
    def cost_snapshot(self) -> Iterator[CostSnapshot]:
        """One read transaction for the generation, the rollups and the points (joined, when the
        caller is in a transaction already)."""
        conn = self.db.conn
        cursor = self.db.tuples()  # a Row per point would cost more than the point
        own_txn = not conn.in_transaction
        if own_txn:
            cursor.execute("BEGIN")  # one snapshot for the generation, the rollups and the points
        try:
            yield CostSnapshot(cursor)
        finally:
            if own_txn:
                conn.commit()

    def cache_rollups(self, generation: int, rows: list[tuple]) -> bool:
        """Store these :func:`rollup_rows` if the history is still at ``generation`` (what they were
        computed from may be stale otherwise); whether they were stored. A failed write is logged,
        not raised: the figures computed stand, and the next query computes them again."""
        try:
            with self.db.write() as conn:
                if conn.execute("SELECT gen FROM cost_rollup_state WHERE id = 1").fetchone()[0] != generation:
                    return False
                conn.executemany(_CACHE, rows)
                return True
        except sqlite3.Error as e:
            log.warning("cost rollups not cached: %s", e)
            return False
