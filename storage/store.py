"""Queries over fwbot's SQLite file, grouped by what they are about.

Everything the bot must not forget lives here: who owns each deployment and where it is
tracked, the audit trail, replica and traffic history (change points, not samples), warnings
sent, the bot's own scheduled actions, approvals, budgets and scheduled posts.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import secrets
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bot.core.clock import iso, parse_iso
from storage.db import Database
from storage.effects import Effects


@dataclass
class DeploymentRecord:
    id: str
    name: str
    owner: str | None
    channel: str | None
    thread_ts: str | None
    created_by_bot: bool
    unused_delete_s: float | None
    state: str | None
    replicas: int | None
    desired_replicas: int | None
    min_replicas: int | None
    max_replicas: int | None
    accelerator_type: str | None
    accelerator_count: int | None
    base_model: str | None
    display_name: str | None
    scale_to_zero_s: float | None
    delete_time: str | None
    single_region: bool
    create_time: str | None
    wire: dict | None
    first_seen_at: str
    last_seen_at: str | None
    ready_at: str | None
    ready_announced: bool
    gone_at: str | None
    adoption_offered_at: str | None
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: dict) -> DeploymentRecord:
        """A stored row as a mapping; see :meth:`from_values`."""
        return cls.from_values(tuple(row.get(name) for name in _RECORD_FIELDS))

    @classmethod
    def from_values(cls, values: tuple) -> DeploymentRecord:
        """The columns ``_RECORD_COLUMNS`` of a stored row, in that order. Its ``wire`` JSON is
        parsed on first use, not here: most readers of a full listing (timers, lists, the sweep)
        never look at it, and parsing 10k of them was a large part of a sweep."""
        data = dict(zip(_RECORD_FIELDS, values, strict=True))
        data["_wire_text"] = data.pop("wire")
        data["created_by_bot"] = bool(data["created_by_bot"])
        data["single_region"] = bool(data["single_region"])
        data["ready_announced"] = bool(data["ready_announced"])
        record = cls.__new__(cls)
        record.__dict__ = data
        return record

    @property
    def gone(self) -> bool:
        return self.gone_at is not None


class _LazyWire:
    """``DeploymentRecord.wire`` of a record read from SQLite: the stored JSON text, parsed the
    first time it is read and kept. A record built with ``DeploymentRecord(wire=...)`` holds its
    value in the instance dict, which this (non-data) descriptor never overrides."""

    def __get__(self, record: Any, owner: type | None = None) -> dict | None:
        if record is None:
            return None
        text = record.__dict__.get("_wire_text")
        value = json.loads(text) if text else None
        record.__dict__["wire"] = value
        return value


# Set after the dataclass is made, so ``wire`` stays a required field of ``__init__``.
DeploymentRecord.wire = _LazyWire()  # type: ignore[assignment]


class TimerFields(NamedTuple):
    """The columns of a deployment that bound when its timers can next need anything (see
    ``bot.core.lifecycle.quiet_until``): a sweep reads these for every deployment and whole records
    only for the few that may have something due."""

    id: str
    state: str | None
    gone_at: str | None
    min_replicas: int | None
    replicas: int | None
    unused_delete_s: float | None
    scale_to_zero_s: float | None
    delete_time: str | None
    ready_at: str | None
    create_time: str | None
    first_seen_at: str


# dataclasses.fields() walks the class each call; a sweep builds a record per deployment.
_RECORD_FIELDS = tuple(f.name for f in fields(DeploymentRecord))
_RECORD_COLUMNS = ", ".join(_RECORD_FIELDS)
# Ids per ``IN (...)`` query: well under SQLite's limit on bound parameters.
_IN_CHUNK = 500

# Columns mirrored from the API object on every sync.
_MIRRORED = (
    "name",
    "state",
    "replicas",
    "desired_replicas",
    "min_replicas",
    "max_replicas",
    "accelerator_type",
    "accelerator_count",
    "base_model",
    "display_name",
    "scale_to_zero_s",
    "delete_time",
    "single_region",
    "create_time",
    "wire",
)

# What a sync compares with the stored row to tell an unchanged deployment: the mirrored
# columns, and the API object by its signature (re-encoding 10k objects as JSON to compare the
# text was a third of a large account's sync).
_COMPARED = tuple(k for k in _MIRRORED if k != "wire") + ("wire_sig",)


_STATE = _COMPARED.index("state")


def compared_values(mirrored: dict[str, Any]) -> tuple:
    """The ``_COMPARED`` columns of a deployment as :meth:`Store.mirror` would store them."""
    return tuple(
        wire_signature(mirrored.get("wire")) if key == "wire_sig"
        else int(bool(mirrored.get(key))) if key == "single_region"
        else mirrored.get(key)
        for key in _COMPARED
    )


def wire_signature(wire: dict | None) -> bytes | None:
    """A digest of an API object that is equal for equal objects (same keys in the same order).

    ``marshal`` version 2 writes no back-references, so the bytes depend only on the value, and
    it is several times faster than ``json.dumps``. Objects equal but for key order get
    different signatures: that only costs a full compare, never a missed change.
    """
    if wire is None:
        return None
    return hashlib.blake2b(marshal.dumps(wire, 2), digest_size=16).digest()


# States from which READY means the deployment came up (again), not that an update finished.
_COMING_UP = ("CREATING", "DELETING", "DELETED")


def _where(**columns: Any) -> tuple[str, tuple]:
    """A WHERE clause matching every column given a value (a tuple means any of its values)."""
    clauses, params = ["1=1"], []
    for column, value in columns.items():
        if value is None:
            continue
        if isinstance(value, tuple):
            clauses.append(f"{column} IN ({', '.join('?' for _ in value)})")
            params += list(value)
        else:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses), tuple(params)


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.effects = Effects(db)

    # -- deployments ---------------------------------------------------------------------------
    def _records(self, where: str, params: tuple) -> list[DeploymentRecord]:
        # Plain tuples straight into records: a dict per row first cost as much as the query.
        cursor = self.db.tuples()
        cursor.execute(f"SELECT {_RECORD_COLUMNS} FROM deployments WHERE {where}", params)
        return [DeploymentRecord.from_values(row) for row in cursor]

    def deployment(self, deployment_id: str) -> DeploymentRecord | None:
        found = self._records("id = ?", (deployment_id,))
        return found[0] if found else None

    def deployments_with_ids(self, ids: list[str]) -> list[DeploymentRecord]:
        """These deployments' records, in the order of ``ids`` (unknown ids left out)."""
        found: dict[str, DeploymentRecord] = {}
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i:i + _IN_CHUNK]
            found.update((r.id, r) for r in self._records(f"id IN ({', '.join('?' for _ in chunk)})", tuple(chunk)))
        return [found[i] for i in ids if i in found]

    def timer_fields(self) -> list[TimerFields]:
        """:class:`TimerFields` of every deployment not gone, in the order of :meth:`deployments`."""
        cursor = self.db.tuples()
        cursor.execute(f"SELECT {', '.join(TimerFields._fields)} FROM deployments WHERE gone_at IS NULL "
                       "ORDER BY created_at, id")
        make = TimerFields._make
        return [make(row) for row in cursor]

    def live_owners(self) -> list[str]:
        """Everyone who owns a deployment not gone, sorted."""
        return [r[0] for r in self.db.conn.execute(
            "SELECT DISTINCT owner FROM deployments WHERE gone_at IS NULL AND owner IS NOT NULL ORDER BY owner")]

    def deployments(
        self, *, owner: str | None = None, channel: str | None = None, include_gone: bool = False
    ) -> list[DeploymentRecord]:
        where, params = _where(owner=owner, channel=channel)
        if not include_gone:
            where += " AND gone_at IS NULL"
        return self._records(f"{where} ORDER BY created_at, id", params)

    def claim_deployment(
        self,
        deployment_id: str,
        name: str,
        *,
        owner: str | None,
        channel: str | None,
        now: datetime,
        created_by_bot: bool,
        unused_delete_s: float | None = None,
        thread_ts: str | None = None,
    ) -> None:
        """Record who owns a deployment and where it is tracked (before or after it exists)."""
        ts = iso(now)
        with self.db.write() as conn:
            conn.execute(
                """INSERT INTO deployments (id, name, owner, channel, thread_ts, created_by_bot,
                       unused_delete_s, first_seen_at, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET owner = excluded.owner, channel = excluded.channel,
                       thread_ts = COALESCE(excluded.thread_ts, deployments.thread_ts),
                       created_by_bot = MAX(deployments.created_by_bot, excluded.created_by_bot),
                       unused_delete_s = COALESCE(excluded.unused_delete_s, deployments.unused_delete_s),
                       gone_at = NULL, updated_at = excluded.updated_at""",
                (deployment_id, name, owner, channel, thread_ts, int(created_by_bot), unused_delete_s, ts, ts, ts),
            )

    def forget_deployment(self, deployment_id: str) -> None:
        """Drop a record the bot made for a create that never happened."""
        self.db.execute("DELETE FROM deployments WHERE id = ? AND state IS NULL", (deployment_id,))

    def set_deployment_fields(self, deployment_id: str, now: datetime, **values: Any) -> None:
        if not values:
            return
        values["updated_at"] = iso(now)
        cols = ", ".join(f"{k} = ?" for k in values)
        self.db.execute(f"UPDATE deployments SET {cols} WHERE id = ?", (*values.values(), deployment_id))

    def mirror(self, deployment_id: str, mirrored: dict[str, Any], now: datetime,
               observed_at: datetime | None = None) -> tuple[DeploymentRecord | None, DeploymentRecord]:
        """Upsert the API's view of a deployment; returns (before, after).

        ``observed_at`` is when the API was asked. A view older than the one stored (a slow
        create response arriving after the reconcile loop saw the deployment READY) is ignored.
        """
        ts = iso(observed_at or now)
        values = {k: mirrored.get(k) for k in _MIRRORED}
        values["wire_sig"] = wire_signature(values["wire"])
        values["wire"] = json.dumps(values["wire"], sort_keys=True) if values["wire"] is not None else None
        values["single_region"] = int(bool(values["single_region"]))
        with self.db.write() as conn:
            before = self.deployment(deployment_id)
            seen = max(before.last_seen_at or "", self._sighted(deployment_id) or "") if before else ""
            if seen and ts is not None and ts < seen:
                return before, before
            if before is None:
                conn.execute(
                    f"""INSERT INTO deployments (id, {", ".join(values)}, first_seen_at, last_seen_at,
                            created_at, updated_at)
                        VALUES (?, {", ".join("?" for _ in values)}, ?, ?, ?, ?)""",
                    (deployment_id, *values.values(), ts, ts, ts, ts),
                )
            else:
                cols = ", ".join(f"{k} = ?" for k in values)
                conn.execute(
                    f"UPDATE deployments SET {cols}, last_seen_at = ?, gone_at = NULL, updated_at = ? WHERE id = ?",
                    (*values.values(), ts, ts, deployment_id),
                )
                if values["state"] == "READY" and before.state in _COMING_UP:
                    # Up again (e.g. after an undelete): its idle time starts now, not at its first READY.
                    conn.execute("UPDATE deployments SET ready_at = ? WHERE id = ?", (ts, deployment_id))
            after = self.deployment(deployment_id)
        assert after is not None
        return before, after

    def mirror_many(self, items: list[tuple[str, dict[str, Any]]], now: datetime,
                    observed_at: datetime | None = None) -> list[tuple[DeploymentRecord | None, DeploymentRecord]]:
        """:meth:`mirror` for a page of deployments in one transaction, reading them with one query.

        A deployment Fireworks shows exactly as stored (same wire JSON and columns), not gone,
        not older than what is stored, and with nothing left to do about it (READY already
        recorded and announced, adoption offered or owned) only has its sighting bumped, in
        one statement for the page; it is left out of the returned transitions, since the
        reconcile loop would find nothing to do for it. Every other deployment takes
        :meth:`mirror`, so its ``(before, after)`` is returned as before.
        """
        ts = iso(observed_at or now)
        with self.db.write() as conn:
            stored = self._compared_rows([dep_id for dep_id, _ in items])
            unchanged: list[str] = []
            changed: list[tuple[str, dict[str, Any]]] = []
            for dep_id, mirrored in items:
                row = stored.get(dep_id)
                if row is None or not self._settled(row, compared_values(mirrored), ts):
                    changed.append((dep_id, mirrored))
                else:
                    unchanged.append(dep_id)
            conn.executemany("INSERT OR REPLACE INTO deployment_sightings (deployment_id, seen_at) VALUES (?, ?)",
                             [(dep_id, ts) for dep_id in unchanged])
            return [self.mirror(dep_id, mirrored, now, observed_at=observed_at) for dep_id, mirrored in changed]

    def _compared_rows(self, ids: list[str]) -> dict[str, tuple]:
        """What :meth:`_settled` reads of each stored deployment, by id."""
        stored: dict[str, tuple] = {}
        cursor = self.db.tuples()  # compared as they come
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i:i + _IN_CHUNK]
            for row in cursor.execute(
                f"""SELECT id, {", ".join(_COMPARED)}, MAX(COALESCE(last_seen_at, ''), COALESCE(s.seen_at, '')),
                           gone_at, ready_at, ready_announced, owner, created_by_bot, adoption_offered_at
                    FROM deployments LEFT JOIN deployment_sightings s ON s.deployment_id = id
                    WHERE id IN ({", ".join("?" for _ in chunk)})""", chunk):
                stored[row[0]] = row
        return stored

    def confirm_unchanged(self, digest: bytes, entries: list[tuple[str, tuple]], now: datetime) -> bool:
        """Record that Fireworks showed the page ``digest`` again, with these deployments exactly
        as :meth:`page_entries` remembered them, if each is still stored that way with nothing
        left to do about it (as :meth:`mirror_many` would find); else change nothing and return
        False."""
        ts = iso(now)
        with self.db.write() as conn:
            stored = self._compared_rows([dep_id for dep_id, _ in entries])
            for dep_id, values in entries:
                row = stored.get(dep_id)
                if row is None or not self._settled(row, values, ts):
                    return False
            conn.execute("UPDATE sync_pages SET seen_at = ? WHERE digest = ?", (ts, digest))
            conn.executemany("INSERT OR REPLACE INTO deployment_sightings (deployment_id, seen_at) VALUES (?, ?)",
                             [(dep_id, ts) for dep_id, _ in entries])
            at = _COMPARED.index
            self.record_replicas_many(now, [
                (dep_id, v[at("replicas")], v[at("accelerator_type")], v[at("accelerator_count")],
                 bool(v[at("single_region")])) for dep_id, v in entries])
        return True

    # -- listing pages seen before ----------------------------------------------------------------
    def known_pages(self) -> dict[bytes, str | None]:
        """``{digest: next page token}`` of the listing pages remembered from earlier syncs."""
        return {bytes(r[0]): r[1] for r in self.db.conn.execute("SELECT digest, next_token FROM sync_pages")}

    def page_entries(self, digest: bytes) -> list[tuple[str, tuple]] | None:
        """The deployments a remembered page showed, as ``(id, compared values)``."""
        row = self.db.conn.execute("SELECT entries FROM sync_pages WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            return None
        sig = _COMPARED.index("wire_sig")
        out = []
        for dep_id, *values in json.loads(row[0]):
            values[sig] = bytes.fromhex(values[sig]) if values[sig] is not None else None
            out.append((dep_id, tuple(values)))
        return out

    def remember_page(self, digest: bytes, next_token: str | None, items: list[tuple[str, dict[str, Any]]],
                      now: datetime) -> None:
        """Remember a page just mirrored: its token and how it showed each deployment."""
        sig = _COMPARED.index("wire_sig")
        entries = []
        for dep_id, mirrored in items:
            values = list(compared_values(mirrored))
            values[sig] = values[sig].hex() if values[sig] is not None else None
            entries.append([dep_id, *values])
        self.db.execute("INSERT OR REPLACE INTO sync_pages (digest, next_token, entries, seen_at) VALUES (?, ?, ?, ?)",
                        (digest, next_token, json.dumps(entries, separators=(",", ":")), iso(now)))

    def forget_pages_before(self, now: datetime) -> None:
        """Drop the pages a complete listing at ``now`` no longer showed."""
        self.db.execute("DELETE FROM sync_pages WHERE seen_at < ?", (iso(now),))

    def _sighted(self, deployment_id: str) -> str | None:
        return self.db.scalar("SELECT seen_at FROM deployment_sightings WHERE deployment_id = ?", (deployment_id,))

    @staticmethod
    def _settled(row: tuple, values: tuple, ts: str) -> bool:
        """Whether ``row`` (as read by :meth:`_compared_rows`) already holds ``values`` (see
        :func:`compared_values`) and asks for nothing more from the reconcile loop."""
        n = len(_COMPARED)
        last_seen_at, gone_at, ready_at, ready_announced, owner, created_by_bot, adoption_offered_at = row[1 + n:]
        if gone_at is not None or (last_seen_at and ts < last_seen_at):
            return False
        if values[_STATE] == "READY" and not (ready_at and ready_announced):
            return False
        if owner is None and not created_by_bot and adoption_offered_at is None:
            return False
        return row[1:1 + n] == values

    def known_live_ids(self) -> list[str]:
        """Ids of the deployments not gone that Fireworks has shown (state known), in no order."""
        return [r[0] for r in self.db.conn.execute(
            "SELECT id FROM deployments WHERE gone_at IS NULL AND state IS NOT NULL").fetchall()]

    def live_deployment_states(self) -> dict[str, str | None]:
        """``{id: state}`` of every deployment not gone, oldest first, without loading the records."""
        return dict(self.db.conn.execute(
            "SELECT id, state FROM deployments WHERE gone_at IS NULL ORDER BY created_at, id").fetchall())

    def mark_gone(self, deployment_id: str, now: datetime) -> None:
        self.db.execute(
            "UPDATE deployments SET gone_at = ?, updated_at = ? WHERE id = ? AND gone_at IS NULL",
            (iso(now), iso(now), deployment_id),
        )

    # -- audit ---------------------------------------------------------------------------------
    def audit(
        self,
        *,
        actor: str,
        action: str,
        result: str,
        now: datetime,
        deployment_id: str | None = None,
        channel: str | None = None,
        request: Any = None,
        detail: str | None = None,
    ) -> int:
        cur = self.db.execute(
            """INSERT INTO audit (at, actor, action, deployment_id, channel, request, result, detail)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                iso(now),
                actor,
                action,
                deployment_id,
                channel,
                json.dumps(request, sort_keys=True, default=str) if request is not None else None,
                result,
                detail,
            ),
        )
        return int(cur.lastrowid or 0)

    def audit_trail(self, deployment_id: str | None = None, limit: int = 50) -> list[dict]:
        if deployment_id:
            return self.db.query(
                "SELECT * FROM audit WHERE deployment_id = ? ORDER BY id DESC LIMIT ?", (deployment_id, limit)
            )
        return self.db.query("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))

    # -- replica and traffic history (change points) -------------------------------------------
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
            for i in range(0, len(ids), _IN_CHUNK):
                chunk = ids[i:i + _IN_CHUNK]
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

    # -- lifecycle: warnings and the bot's own actions -------------------------------------------
    # A warning is claimed (INSERT OR IGNORE on its unique key) before it is posted and marked sent
    # with its message afterwards, so a restart re-posts what was claimed but never sent and never
    # sends a key twice. It is resolved at most once (compare-and-set on ``status``). A bot action
    # is keyed by its idempotency key and moves scheduled → running → done | cancelled | failed.
    def claim_warning(self, deployment_id: str, timer: str, due: str, lead_s: float, *, channel: str | None,
                      snapshot: dict, now: datetime) -> WarningRow | None:
        """Claim one warning before posting it; ``None`` when its key was claimed before."""
        with self.db.write() as conn:
            cur = conn.execute(
                """INSERT OR IGNORE INTO warnings (deployment_id, timer, due, lead_s, status, channel, token, claimed_at)
                   VALUES (?, ?, ?, ?, 'claimed', ?, ?, ?)""",
                (deployment_id, timer, due, float(lead_s), channel, new_token(), iso(now)),
            )
            if cur.rowcount != 1:
                return None
            conn.execute("INSERT INTO warning_snapshots (warning_id, body) VALUES (?, ?)",
                         (cur.lastrowid, json.dumps(snapshot, sort_keys=True)))
            return self.warning(int(cur.lastrowid or 0))

    def _warnings(self, where: str, params: tuple) -> list[WarningRow]:
        rows = self.db.query(
            f"""SELECT w.*, s.body AS snapshot FROM warnings w
                LEFT JOIN warning_snapshots s ON s.warning_id = w.id WHERE {where} ORDER BY w.id""",
            params,
        )
        return [WarningRow.from_row(r) for r in rows]

    def warning(self, warning_id: int) -> WarningRow | None:
        found = self._warnings("w.id = ?", (warning_id,))
        return found[0] if found else None

    def warning_by_token(self, token: str) -> WarningRow | None:
        found = self._warnings("w.token = ?", (token,))
        return found[0] if found else None

    def warnings(self, *, deployment_id: str | None = None, statuses: tuple[str, ...] = ()) -> list[WarningRow]:
        where, params = "1=1", []
        if deployment_id is not None:
            where += " AND w.deployment_id = ?"
            params.append(deployment_id)
        if statuses:
            where += f" AND w.status IN ({', '.join('?' for _ in statuses)})"
            params += list(statuses)
        return self._warnings(where, tuple(params))

    def deployments_with_open_warnings(self) -> set[str]:
        """Ids of the deployments with a warning claimed or sent and not yet resolved."""
        return {r[0] for r in self.db.conn.execute(
            "SELECT DISTINCT deployment_id FROM warnings WHERE status IN ('claimed', 'sent')").fetchall()}

    def warnings_in_message(self, channel: str, ts: str) -> list[WarningRow]:
        return self._warnings("w.channel = ? AND w.ts = ?", (channel, ts))

    def warnings_about(self, dues: list[tuple[str, str, str]]) -> list[WarningRow]:
        """Every warning (any lead, any status) about these ``(deployment, timer, due)`` triples."""
        out: list[WarningRow] = []
        step = _IN_CHUNK // 3  # three parameters per triple
        for i in range(0, len(dues), step):
            chunk = dues[i:i + step]
            where = " OR ".join("(w.deployment_id = ? AND w.timer = ? AND w.due = ?)" for _ in chunk)
            out += self._warnings(where, tuple(x for triple in chunk for x in triple))
        return out

    def mark_warning_sent(self, warning_id: int, channel: str, ts: str, now: datetime,
                          snapshot: dict | None = None) -> None:
        """Record the message a claimed warning went out in (and what it said, when re-decided)."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE warnings SET status = 'sent', channel = ?, ts = ?, sent_at = ? WHERE id = ? AND status = 'claimed'",
                (channel, ts, iso(now), warning_id),
            )
            if snapshot is not None:
                conn.execute("INSERT OR REPLACE INTO warning_snapshots (warning_id, body) VALUES (?, ?)",
                             (warning_id, json.dumps(snapshot, sort_keys=True)))

    def resolve_warning(self, warning_id: int, resolution: str, now: datetime, *, status: str = "resolved") -> bool:
        """Close an open warning; True only for the one call that closed it (the first decision wins)."""
        cur = self.db.execute(
            """UPDATE warnings SET status = ?, resolution = ?, resolved_at = ?
               WHERE id = ? AND status IN ('claimed', 'sent')""",
            (status, resolution, iso(now), warning_id),
        )
        return cur.rowcount == 1

    def schedule_action(self, key: str, kind: str, deployment_id: str, due_at: datetime, now: datetime,
                        payload: dict | None = None) -> bool:
        """Record an action the bot will carry out; False when ``key`` was scheduled before."""
        cur = self.db.execute(
            """INSERT OR IGNORE INTO bot_actions (key, kind, deployment_id, due_at, payload, status, created_at,
                   updated_at) VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?)""",
            (key, kind, deployment_id, iso(due_at), json.dumps(payload or {}, sort_keys=True), iso(now), iso(now)),
        )
        return cur.rowcount == 1

    def bot_action(self, key: str) -> BotActionRow | None:
        row = self.db.one("SELECT * FROM bot_actions WHERE key = ?", (key,))
        return BotActionRow.from_row(row) if row else None

    def bot_actions(self, *, deployment_id: str | None = None, kind: str | None = None,
                    statuses: tuple[str, ...] = ()) -> list[BotActionRow]:
        where, params = _where(deployment_id=deployment_id, kind=kind, status=statuses or None)
        sql = f"SELECT * FROM bot_actions WHERE {where} ORDER BY due_at, id"
        return [BotActionRow.from_row(r) for r in self.db.query(sql, params)]

    def action_statuses(self, keys: list[str]) -> dict[str, str]:
        """The status of each of these action keys that was ever scheduled."""
        out: dict[str, str] = {}
        for i in range(0, len(keys), _IN_CHUNK):
            chunk = keys[i:i + _IN_CHUNK]
            out.update((r["key"], r["status"]) for r in self.db.query(
                f"SELECT key, status FROM bot_actions WHERE key IN ({', '.join('?' for _ in chunk)})", tuple(chunk)))
        return out

    def postponements(self, deployment_id: str | None = None) -> dict[tuple[str, str], datetime]:
        """``(deployment, kind) → until`` of the latest snooze and keep-warm (cancelled ones aside)."""
        where, params = ("AND deployment_id = ?", (deployment_id,)) if deployment_id else ("", ())
        rows = self.db.query(
            f"""SELECT deployment_id, kind, MAX(due_at) AS until FROM bot_actions
                WHERE kind IN ('snooze', 'keep_warm_revert') AND status != 'cancelled' {where}
                GROUP BY deployment_id, kind""",
            params,
        )
        return {(r["deployment_id"], r["kind"]): parse_iso(r["until"]) for r in rows}  # type: ignore[misc]

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

    def runnable_actions(self, now: datetime) -> list[BotActionRow]:
        """Scheduled actions that are due, and running ones a crash interrupted."""
        rows = self.db.query(
            "SELECT * FROM bot_actions WHERE status IN ('scheduled', 'running') AND due_at <= ? ORDER BY due_at, id",
            (iso(now),),
        )
        return [BotActionRow.from_row(r) for r in rows]

    def start_action(self, key: str, now: datetime) -> bool:
        """Mark an action running (again, after a crash) and count the attempt."""
        cur = self.db.execute(
            """UPDATE bot_actions SET status = 'running', attempts = attempts + 1, updated_at = ?
               WHERE key = ? AND status IN ('scheduled', 'running')""",
            (iso(now), key),
        )
        return cur.rowcount == 1

    def note_action_progress(self, key: str, now: datetime, **progress: Any) -> None:
        """Merge what a running action has done so far into its payload, so a re-run skips it."""
        with self.db.write() as conn:
            row = conn.execute("SELECT payload FROM bot_actions WHERE key = ?", (key,)).fetchone()
            if row is None:
                return
            payload = {**json.loads(row[0] or "{}"), **progress}
            conn.execute("UPDATE bot_actions SET payload = ?, updated_at = ? WHERE key = ?",
                         (json.dumps(payload, sort_keys=True, default=str), iso(now), key))

    def finish_action(self, key: str, status: str, result: str, now: datetime) -> bool:
        """Close an action (done, cancelled or failed); False when it was closed before."""
        cur = self.db.execute(
            """UPDATE bot_actions SET status = ?, result = ?, updated_at = ?
               WHERE key = ? AND status IN ('scheduled', 'running')""",
            (status, result, iso(now), key),
        )
        return cur.rowcount == 1

    # -- key/value -----------------------------------------------------------------------------
    def get_kv(self, key: str) -> str | None:
        return self.db.scalar("SELECT value FROM kv WHERE key = ?", (key,))

    def set_kv(self, key: str, value: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, value, iso(now)),
        )

    # -- people (what Slack said of them) -------------------------------------------------------
    def person(self, user_id: str) -> tuple[datetime, dict] | None:
        """When Slack last described ``user_id``, and what it said (see :meth:`remember_person`)."""
        row = self.db.conn.execute("SELECT fetched_at, profile FROM slack_people WHERE user_id = ?",
                                   (user_id,)).fetchone()
        if row is None:
            return None
        at = parse_iso(row[0])
        assert at is not None
        return at, json.loads(row[1])

    def remember_person(self, user_id: str, profile: dict, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO slack_people (user_id, profile, fetched_at) VALUES (?, ?, ?) ON CONFLICT(user_id) "
            "DO UPDATE SET profile = excluded.profile, fetched_at = excluded.fetched_at",
            (user_id, json.dumps(profile, separators=(",", ":"), sort_keys=True), iso(now)))

    # -- approvals -----------------------------------------------------------------------------
    # One row per request; ``id`` is the opaque token its buttons carry. ``status`` moves from
    # pending to exactly one final state by compare-and-set (``UPDATE ... WHERE status =
    # 'pending'``), so the first decision wins. For approved rows, ``executed_at`` is when the run
    # started (set in the same statement as the approval, so the deciding click owns the run) and
    # ``result`` is set once it finished. ``reason`` is the reason given for a rejection.
    def create_approval(self, *, token: str, kind: str, requester: str, channel: str,
                        deployment_id: str | None, request: dict, usd_per_hour: float | None,
                        now: datetime, expires_at: datetime) -> ApprovalRecord:
        self.db.execute(
            """INSERT INTO approvals (id, kind, requester, channel, deployment_id, request, usd_per_hour,
                   status, created_at, expires_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)""",
            (token, kind, requester, channel, deployment_id, json.dumps(request, sort_keys=True, default=str),
             usd_per_hour, iso(now), iso(expires_at)),
        )
        record = self.approval(token)
        assert record is not None
        return record

    def approval(self, token: str) -> ApprovalRecord | None:
        row = self.db.one("SELECT * FROM approvals WHERE id = ?", (token,))
        return ApprovalRecord.from_row(row) if row else None

    def approvals(self, *, status: str | None = None, deployment_id: str | None = None) -> list[ApprovalRecord]:
        where, params = _where(status=status, deployment_id=deployment_id)
        sql = f"SELECT * FROM approvals WHERE {where} ORDER BY created_at, id"
        return [ApprovalRecord.from_row(r) for r in self.db.query(sql, params)]

    def set_approval_message(self, token: str, channel: str, ts: str) -> None:
        self.db.execute("UPDATE approvals SET message_channel = ?, message_ts = ? WHERE id = ?", (channel, ts, token))

    def decide_approval(self, token: str, *, status: str, by: str, now: datetime, reason: str | None = None,
                        check_expiry: bool = True) -> bool:
        """Compare-and-set pending → ``status``; True only for the one call that made the change.

        An approval also starts the run (``executed_at``) in the same statement. With
        ``check_expiry`` a request past its expiry cannot be decided any more.
        """
        ts = iso(now)
        sql = """UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, reason = ?,
                     executed_at = CASE WHEN ? = 'approved' THEN ? ELSE executed_at END
                 WHERE id = ? AND status = 'pending'"""
        params: list[Any] = [status, by, ts, reason, status, ts, token]
        if check_expiry:
            sql += " AND expires_at > ?"
            params.append(ts)
        return self.db.execute(sql, tuple(params)).rowcount == 1

    def restart_approved_run(self, token: str, *, started: datetime | None, now: datetime) -> bool:
        """Compare-and-set the run start of an approved, unfinished request (the recovery claim):
        only the caller that still sees the start time ``started`` takes it over."""
        cur = self.db.execute(
            """UPDATE approvals SET executed_at = ? WHERE id = ? AND status = 'approved' AND result IS NULL
                   AND executed_at IS ?""",
            (iso(now), token, iso(started)),
        )
        return cur.rowcount == 1

    def finish_approval(self, token: str, result: dict, now: datetime) -> bool:
        """Record what an approved run did; only the first result counts."""
        cur = self.db.execute(
            """UPDATE approvals SET result = ?, executed_at = COALESCE(executed_at, ?)
               WHERE id = ? AND status = 'approved' AND result IS NULL""",
            (json.dumps(result, sort_keys=True), iso(now), token),
        )
        return cur.rowcount == 1

    def mark_approval_reminded(self, token: str, now: datetime) -> bool:
        """Claim the one reminder of a pending request."""
        cur = self.db.execute(
            "UPDATE approvals SET reminded_at = ? WHERE id = ? AND status = 'pending' AND reminded_at IS NULL",
            (iso(now), token),
        )
        return cur.rowcount == 1

    # -- costs ---------------------------------------------------------------------------------
    def set_budget(self, channel: str, usd_per_month: float, set_by: str, now: datetime) -> None:
        self.db.execute(
            """INSERT INTO budgets (channel, usd_per_month, set_by, set_at) VALUES (?, ?, ?, ?)
               ON CONFLICT(channel) DO UPDATE SET usd_per_month = excluded.usd_per_month,
                   set_by = excluded.set_by, set_at = excluded.set_at""",
            (channel, float(usd_per_month), set_by, iso(now)),
        )

    def budget(self, channel: str) -> dict | None:
        return self.db.one("SELECT * FROM budgets WHERE channel = ?", (channel,))

    def budgets(self) -> list[dict]:
        return self.db.query("SELECT * FROM budgets ORDER BY channel")

    def claim_post(self, key: str, now: datetime, channel: str | None = None) -> bool:
        """Claim a scheduled post before sending it; False if it was claimed (or sent) before.

        The claim is a single ``INSERT OR IGNORE``, so two runs of the same schedule slot (a
        restart, or two jobs at once) cannot both win.
        """
        cur = self.db.execute(
            "INSERT OR IGNORE INTO scheduled_posts (key, status, channel, claimed_at) VALUES (?, 'claimed', ?, ?)",
            (key, channel, iso(now)),
        )
        return cur.rowcount == 1

    def mark_posted(self, key: str, now: datetime, *, channel: str | None = None, ts: str | None = None) -> None:
        self.db.execute(
            """UPDATE scheduled_posts SET status = 'posted', channel = COALESCE(?, channel), ts = ?,
                   posted_at = ? WHERE key = ?""",
            (channel, ts, iso(now), key),
        )

    def release_post(self, key: str) -> None:
        """Drop a claim whose post certainly failed, so the next run tries again."""
        self.db.execute("DELETE FROM scheduled_posts WHERE key = ? AND status = 'claimed'", (key,))

    def scheduled_post(self, key: str) -> dict | None:
        return self.db.one("SELECT * FROM scheduled_posts WHERE key = ?", (key,))

    def scheduled_post_keys(self, prefix: str) -> list[str]:
        return [r["key"] for r in self.db.query(
            "SELECT key FROM scheduled_posts WHERE substr(key, 1, ?) = ? ORDER BY key", (len(prefix), prefix))]

def _decoded(cls: type, row: dict, *, json_columns: dict[str, Any], times: tuple[str, ...]) -> dict[str, Any]:
    """A row as keyword arguments of the dataclass ``cls``: JSON columns decoded (an empty one
    becomes the default given), time columns parsed."""
    data = {f.name: row.get(f.name) for f in fields(cls)}
    for name, empty in json_columns.items():
        data[name] = json.loads(row[name]) if row.get(name) else empty
    for name in times:
        data[name] = parse_iso(row.get(name))
    return data


def new_token() -> str:
    """An opaque, unguessable id for buttons and approvals."""
    return secrets.token_urlsafe(16)


# -- approvals -------------------------------------------------------------------------------------
@dataclass
class ApprovalRecord:
    """One approval request as stored; times parsed, ``request``/``result`` decoded."""

    id: str
    kind: str
    requester: str
    channel: str
    deployment_id: str | None
    request: dict
    usd_per_hour: float | None
    status: str
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    executed_at: datetime | None
    result: dict | None
    message_channel: str | None
    message_ts: str | None
    requester_ts: str | None
    created_at: datetime
    expires_at: datetime
    reminded_at: datetime | None

    @classmethod
    def from_row(cls, row: dict) -> ApprovalRecord:
        return cls(**_decoded(cls, row, json_columns={"request": {}, "result": None},
                              times=("decided_at", "executed_at", "created_at", "expires_at", "reminded_at")))


# -- lifecycle ---------------------------------------------------------------------------------
@dataclass
class WarningRow:
    """One claimed or sent warning; ``key`` is its unique (deployment, timer, due, lead)."""

    id: int
    deployment_id: str
    timer: str
    due: str
    lead_s: float
    status: str
    channel: str | None
    ts: str | None
    token: str
    claimed_at: datetime
    sent_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    snapshot: dict | None

    @classmethod
    def from_row(cls, row: dict) -> WarningRow:
        return cls(**_decoded(cls, row, json_columns={"snapshot": None}, times=("claimed_at", "sent_at", "resolved_at")))

    @property
    def key(self) -> tuple[str, str, str, float]:
        return (self.deployment_id, self.timer, self.due, float(self.lead_s))

    @property
    def is_open(self) -> bool:
        return self.status in ("claimed", "sent")


@dataclass
class BotActionRow:
    """Something the bot does itself (a keep-warm revert, an auto-delete, a snooze's end)."""

    id: int
    key: str
    kind: str
    deployment_id: str
    due_at: datetime
    payload: dict
    status: str
    attempts: int
    created_at: datetime
    updated_at: datetime
    result: str | None

    @classmethod
    def from_row(cls, row: dict) -> BotActionRow:
        return cls(**_decoded(cls, row, json_columns={"payload": {}}, times=("due_at", "created_at", "updated_at")))
