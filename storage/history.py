"""Replica and traffic history: change points, not samples (``replica_history``, ``traffic``,
``traffic_history``), and when a deployment's scale-to-zero clock last restarted."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, bindparam, text

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
        rows = []
        with self.db.write():
            # Each deployment's last point by an index seek (a scan of every point of the page's
            # deployments grew with their history).
            ids = [p[0] for p in points]
            last: dict[str, tuple] = {}
            for i in range(0, len(ids), IN_CHUNK):
                last.update((r[0], tuple(r[1:])) for r in self.db.rows(_LAST_POINTS, {"ids": ids[i:i + IN_CHUNK]}))
            for deployment_id, replicas, accelerator_type, accelerator_count, single_region in points:
                if last.get(deployment_id) == (replicas, accelerator_type, accelerator_count, int(single_region)):
                    continue
                rows.append({"id": deployment_id, "at": ts, "replicas": replicas, "type": accelerator_type,
                             "count": accelerator_count, "single": int(single_region)})
                appended.append(deployment_id)
            self.db.executemany(
                """INSERT INTO replica_history
                   (deployment_id, at, replicas, accelerator_type, accelerator_count, single_region)
                   VALUES (:id, :at, :replicas, :type, :count, :single)
                   ON CONFLICT (deployment_id, at) DO UPDATE SET replicas = excluded.replicas,
                       accelerator_type = excluded.accelerator_type, accelerator_count = excluded.accelerator_count,
                       single_region = excluded.single_region""", rows)
        return appended

    def replica_history(self, deployment_id: str | None = None, since: datetime | None = None) -> list[dict]:
        sql = "SELECT * FROM replica_history WHERE 1=1"
        params: dict[str, Any] = {}
        if deployment_id:
            sql += " AND deployment_id = :id"
            params["id"] = deployment_id
        if since:
            # include the last point before `since`, which sets the state at `since`
            sql += """ AND (at >= :since OR at = (SELECT MAX(at) FROM replica_history h2
                         WHERE h2.deployment_id = replica_history.deployment_id AND h2.at < :since))"""
            params["since"] = iso(since)
        sql += " ORDER BY deployment_id, at"
        return self.db.query(sql, params)

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
        with self.db.write():
            was: dict[str, tuple] = {}
            if len(ids) > IN_CHUNK:
                # A whole scrape: one read of the table. PostgreSQL scanned it once per chunk.
                wanted = set(ids)
                was.update((r[0], tuple(r[1:])) for r in self.db.rows(_TRAFFIC_ALL) if r[0] in wanted)
            elif ids:
                was.update((r[0], tuple(r[1:])) for r in self.db.rows(_TRAFFIC_STATE, {"ids": ids}))
            rows = [(deployment_id, ts if request_rate > 0 else None, int(request_rate > 0), float(request_rate), ts)
                    for deployment_id, request_rate in rates.items()]
            self.db.executemany(
                """INSERT INTO traffic (deployment_id, last_traffic_at, serving, request_rate, scraped_at)
                   VALUES (:id, :last, :serving, :rate, :at)
                   ON CONFLICT(deployment_id) DO UPDATE SET
                     last_traffic_at = COALESCE(excluded.last_traffic_at, traffic.last_traffic_at),
                     serving = excluded.serving, request_rate = excluded.request_rate,
                     scraped_at = excluded.scraped_at""",
                [{"id": r[0], "last": r[1], "serving": r[2], "rate": r[3], "at": r[4]} for r in rows],
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
            self.db.executemany(
                """INSERT INTO traffic_history (deployment_id, at, serving) VALUES (:id, :at, :serving)
                   ON CONFLICT (deployment_id, at) DO UPDATE SET serving = excluded.serving""",
                [{"id": d, "at": when, "serving": serving} for d, when, serving in points])

    def last_traffic(self, deployment_id: str) -> datetime | None:
        return parse_iso(self.db.scalar("SELECT last_traffic_at FROM traffic WHERE deployment_id = :id",
                                        {"id": deployment_id}))

    def traffic_seen(self, deployment_id: str | None = None) -> dict[str, tuple[datetime | None, datetime | None]]:
        """Per deployment: when the metrics last showed requests, and when the serving stretch
        that scrape belongs to began as recorded (its latest serving change point), from which
        ``bot.core.lifecycle.earliest_last_request`` bounds the last request from below."""
        sql = """SELECT t.deployment_id, t.last_traffic_at,
                        (SELECT h.at FROM traffic_history h WHERE h.deployment_id = t.deployment_id AND h.serving = 1
                         ORDER BY h.at DESC LIMIT 1)
                 FROM traffic t"""
        if deployment_id is not None:
            rows = self.db.rows(sql + " WHERE t.deployment_id = :id", {"id": deployment_id})
        else:
            rows = self.db.rows(sql)
        return {r[0]: (parse_iso(r[1]), parse_iso(r[2])) for r in rows}

    def traffic_rows(self) -> dict[str, dict]:
        return {r["deployment_id"]: r for r in self.db.query("SELECT * FROM traffic")}

    def traffic_history(self, deployment_id: str | None = None) -> list[dict]:
        if deployment_id:
            return self.db.query(
                "SELECT * FROM traffic_history WHERE deployment_id = :id ORDER BY at", {"id": deployment_id}
            )
        return self.db.query("SELECT * FROM traffic_history ORDER BY deployment_id, at")

    def scale_clock_restarts(self, deployment_id: str | None = None) -> dict[str, datetime]:
        """When each deployment's replicas last went from 0 up (as the reconcile loop saw), or its
        scaling last changed (a manual scale, an update of its replica range or autoscaling policy)."""
        where, params = ("WHERE deployment_id = :id", {"id": deployment_id}) if deployment_id else ("", {})
        also = "AND deployment_id = :id" if deployment_id else ""
        restarts: dict[str, str] = {}

        def note(dep_id: str, at: str) -> None:
            if at > restarts.get(dep_id, ""):
                restarts[dep_id] = at

        for r in self.db.rows(
                f"""SELECT deployment_id, MAX(at) FROM (
                        SELECT deployment_id, at, replicas,
                               LAG(replicas) OVER (PARTITION BY deployment_id ORDER BY at) AS before
                        FROM replica_history {where}) AS points
                    WHERE before = 0 AND replicas > 0
                    GROUP BY deployment_id""", params):
            note(r[0], r[1])
        # A scale, or an update whose field mask touched the replica range or the autoscaling
        # policy (the mask is read here, from the stored request: JSON in SQL differs per engine).
        for dep_id, at, action, request in self.db.rows(
                f"""SELECT deployment_id, at, action, request FROM audit
                    WHERE result = 'ok' AND deployment_id IS NOT NULL {also}
                      AND (action = 'scale' OR (action = 'update' AND request LIKE '%mask%'))""", params):
            if action == "update":
                mask = str((json.loads(request or "{}") or {}).get("mask") or "")
                if "replica_count" not in mask and "autoscaling_policy" not in mask:
                    continue
            note(dep_id, at)
        return {d: parse_iso(at) for d, at in restarts.items()}  # type: ignore[misc]


# The ids first, then each one's last point by an index seek: filtering every point by
# ``deployment_id IN`` and comparing each with its MAX read every point of the page's deployments
# (3-7x slower on SQLite at 60 points each).
_LAST_POINTS = text(
    """SELECT h.deployment_id, h.replicas, h.accelerator_type, h.accelerator_count, h.single_region
       FROM (SELECT DISTINCT deployment_id FROM replica_history WHERE deployment_id IN :ids) w
       JOIN replica_history h ON h.deployment_id = w.deployment_id
        AND h.at = (SELECT MAX(m.at) FROM replica_history m WHERE m.deployment_id = w.deployment_id)"""
).bindparams(bindparam("ids", expanding=True, type_=Text()))

_TRAFFIC_ALL = """SELECT t.deployment_id, t.serving, t.scraped_at, t.last_traffic_at,
                         (SELECT MAX(h.at) FROM traffic_history h WHERE h.deployment_id = t.deployment_id)
                  FROM traffic t"""

_TRAFFIC_STATE = text(
    """SELECT t.deployment_id, t.serving, t.scraped_at, t.last_traffic_at,
              (SELECT MAX(h.at) FROM traffic_history h WHERE h.deployment_id = t.deployment_id)
       FROM traffic t WHERE t.deployment_id IN :ids"""
).bindparams(bindparam("ids", expanding=True, type_=Text()))
