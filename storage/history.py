"""Replica and traffic history: change points, not samples (``replica_history``, ``traffic``,
``traffic_history``), and when a deployment's scale-to-zero clock last restarted."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from bot.core.clock import iso, parse_iso
from storage.rows import IN_CHUNK, Repository


class HistoryRepo(Repository):
    def record_replicas(
        self,
        deployment_id: str,
        at: datetime,
        replicas: int,
        accelerator_type: str | None,
        accelerator_count: int | None,
        single_region: bool = False,
    ) -> bool:
        """Append a change point if anything changed since the last one; True if appended."""
        return bool(self.record_replicas_many(
            at, [(deployment_id, replicas, accelerator_type, accelerator_count, single_region)]))

    def record_replicas_many(
        self, at: datetime, points: list[tuple[str, int, str | None, int | None, bool]]
    ) -> list[str]:
        """:meth:`record_replicas` for many deployments in one transaction, reading their last
        points with one query. ``points`` are ``(deployment_id, replicas, accelerator_type,
        accelerator_count, single_region)``; returns the ids whose point was appended."""
        ts = iso(at)
        appended = []
        with self.db.write() as conn:
            # Each deployment's last point by an index seek (a scan of every point of the page's
            # deployments grew with their history).
            last = {r[0]: r[1:] for r in self.db.tuples().execute(
                """SELECT w.value, h.replicas, h.accelerator_type, h.accelerator_count, h.single_region
                   FROM json_each(?) w JOIN replica_history h ON h.deployment_id = w.value
                    AND h.at = (SELECT MAX(at) FROM replica_history WHERE deployment_id = w.value)""",
                (json.dumps([p[0] for p in points]),))}
            for deployment_id, replicas, accelerator_type, accelerator_count, single_region in points:
                if last.get(deployment_id) == (replicas, accelerator_type, accelerator_count, int(single_region)):
                    continue
                conn.execute(
                    """INSERT OR REPLACE INTO replica_history
                       (deployment_id, at, replicas, accelerator_type, accelerator_count, single_region)
                       VALUES (?, ?, ?, ?, ?, ?)""",
                    (deployment_id, ts, replicas, accelerator_type, accelerator_count, int(single_region)),
                )
                appended.append(deployment_id)
        return appended

    def replica_history(self, deployment_id: str | None = None, since: datetime | None = None) -> list[dict]:
        sql = "SELECT * FROM replica_history WHERE 1=1"
        params: list[Any] = []
        if deployment_id:
            sql += " AND deployment_id = ?"
            params.append(deployment_id)
        if since:
            # include the last point before `since`, which sets the state at `since`
            sql += """ AND (at >= ? OR at = (SELECT MAX(at) FROM replica_history h2
                         WHERE h2.deployment_id = replica_history.deployment_id AND h2.at < ?))"""
            params += [iso(since), iso(since)]
        sql += " ORDER BY deployment_id, at"
        return self.db.query(sql, tuple(params))

    def record_traffic(self, deployment_id: str, at: datetime, request_rate: float, *,
                       rate_window_s: float = 0.0) -> None:
        """Record one scrape: last traffic time and serving/idle change points."""
        self.record_traffic_many({deployment_id: request_rate}, at, rate_window_s=rate_window_s)

    def record_traffic_many(self, rates: dict[str, float], at: datetime, *, rate_window_s: float = 0.0) -> None:
        """:meth:`record_traffic` for a whole scrape (``{deployment_id: request_rate}``) in one
        transaction, reading the stored state with one query per 500 deployments.

        ``last_traffic_at`` is the scrape that last saw requests. ``rate_window_s`` is the window
        the rates are measured over (the metrics endpoint's is a minute): a positive rate says a
        request came within it, not at the scrape. A serving stretch is then recorded from the
        earliest its first request can have come — the later of the previous scrape that saw none
        and this scrape less the window — to the latest its last one can have come — the earlier of
        the last scrape that saw one and the first scrape that saw none less the window — and never
        ends before it began. ``0`` takes a rate as traffic at the scrape itself.
        """
        ts = iso(at)
        window = timedelta(seconds=max(0.0, rate_window_s))
        ids = list(rates)
        with self.db.write() as conn:
            was: dict[str, tuple] = {}
            for i in range(0, len(ids), IN_CHUNK):
                chunk = ids[i:i + IN_CHUNK]
                was.update((r[0], r[1:]) for r in conn.execute(
                    f"""SELECT t.deployment_id, t.serving, t.scraped_at, t.last_traffic_at,
                               (SELECT MAX(h.at) FROM traffic_history h WHERE h.deployment_id = t.deployment_id)
                        FROM traffic t WHERE t.deployment_id IN ({', '.join('?' for _ in chunk)})""",
                    chunk))
            rows = [(deployment_id, ts if request_rate > 0 else None, int(request_rate > 0), request_rate, ts)
                    for deployment_id, request_rate in rates.items()]
            conn.executemany(
                """INSERT INTO traffic (deployment_id, last_traffic_at, serving, request_rate, scraped_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(deployment_id) DO UPDATE SET
                     last_traffic_at = COALESCE(excluded.last_traffic_at, traffic.last_traffic_at),
                     serving = excluded.serving, request_rate = excluded.request_rate,
                     scraped_at = excluded.scraped_at""",
                rows,
            )
            points = []
            for deployment_id, _, serving, _, _ in rows:
                before = was.get(deployment_id)
                if before is not None and bool(before[0]) == bool(serving):
                    continue
                when = at
                if window and before is not None:
                    previous_scrape, last_seen, last_point = (parse_iso(v) for v in before[1:])
                    if serving:
                        when = at - window
                        if previous_scrape is not None:
                            when = max(when, previous_scrape)
                    else:
                        when = at - window
                        if last_seen is not None:
                            when = min(when, last_seen)
                    if last_point is not None and when <= last_point:
                        # Never at or before the last change point: the stretch keeps its order.
                        when = last_point + timedelta(microseconds=1)
                elif window and serving:
                    when = at - window
                points.append((deployment_id, iso(when), serving))
            conn.executemany("INSERT OR REPLACE INTO traffic_history (deployment_id, at, serving) VALUES (?, ?, ?)",
                             points)

    def last_traffic(self, deployment_id: str) -> datetime | None:
        return parse_iso(self.db.scalar("SELECT last_traffic_at FROM traffic WHERE deployment_id = ?", (deployment_id,)))

    def traffic_seen(self, deployment_id: str | None = None) -> dict[str, tuple[datetime | None, datetime | None]]:
        """Per deployment: when the metrics last showed requests, and when the serving stretch
        that scrape belongs to began as recorded (its latest serving change point), from which
        ``bot.core.lifecycle.earliest_last_request`` bounds the last request from below."""
        sql = """SELECT t.deployment_id, t.last_traffic_at,
                        (SELECT h.at FROM traffic_history h WHERE h.deployment_id = t.deployment_id AND h.serving = 1
                         ORDER BY h.at DESC LIMIT 1)
                 FROM traffic t"""
        if deployment_id is not None:
            rows = self.db.tuples().execute(sql + " WHERE t.deployment_id = ?", (deployment_id,))
        else:
            rows = self.db.tuples().execute(sql)
        return {r[0]: (parse_iso(r[1]), parse_iso(r[2])) for r in rows}

    def traffic_rows(self) -> dict[str, dict]:
        return {r["deployment_id"]: r for r in self.db.query("SELECT * FROM traffic")}

    def traffic_history(self, deployment_id: str | None = None) -> list[dict]:
        if deployment_id:
            return self.db.query(
                "SELECT * FROM traffic_history WHERE deployment_id = ? ORDER BY at", (deployment_id,)
            )
        return self.db.query("SELECT * FROM traffic_history ORDER BY deployment_id, at")

    def scale_clock_restarts(self, deployment_id: str | None = None) -> dict[str, datetime]:
        """When each deployment's replicas last went from 0 up (as the reconcile loop saw), or its
        scaling last changed (a manual scale, an update of its replica range or autoscaling policy)."""
        where, params = ("WHERE deployment_id = ?", (deployment_id,)) if deployment_id else ("", ())
        also = "AND deployment_id = ?" if deployment_id else ""
        rows = self.db.query(
            f"""SELECT deployment_id, MAX(at) AS at FROM (
                    SELECT deployment_id, at FROM (
                        SELECT deployment_id, at, replicas,
                               LAG(replicas) OVER (PARTITION BY deployment_id ORDER BY at) AS before
                        FROM replica_history {where})
                    WHERE before = 0 AND replicas > 0
                    UNION ALL
                    SELECT deployment_id, at FROM audit
                    WHERE result = 'ok' AND deployment_id IS NOT NULL {also}
                      AND (action = 'scale' OR (action = 'update' AND (
                           json_extract(request, '$.mask') LIKE '%replica_count%'
                           OR json_extract(request, '$.mask') LIKE '%autoscaling_policy%'))))
                GROUP BY deployment_id""",
            params * 2,
        )
        return {r["deployment_id"]: parse_iso(r["at"]) for r in rows}  # type: ignore[misc]
