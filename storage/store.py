"""Queries over fwbot's SQLite file, grouped by what they are about.

Everything the bot must not forget lives here: who owns each deployment and where it is
tracked, the audit trail, replica and traffic history (change points, not samples), warnings
sent, the bot's own scheduled actions, approvals, budgets and scheduled posts.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from storage.db import Database, iso, parse_iso


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
        data = {name: row.get(name) for name in _RECORD_FIELDS}
        data["wire"] = json.loads(row["wire"]) if row.get("wire") else None
        for flag in ("created_by_bot", "single_region", "ready_announced"):
            data[flag] = bool(row.get(flag))
        return cls(**data)

    @property
    def gone(self) -> bool:
        return self.gone_at is not None


# dataclasses.fields() walks the class each call; a sweep builds a record per deployment.
_RECORD_FIELDS = tuple(f.name for f in fields(DeploymentRecord))
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


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- deployments ---------------------------------------------------------------------------
    def deployment(self, deployment_id: str) -> DeploymentRecord | None:
        row = self.db.one("SELECT * FROM deployments WHERE id = ?", (deployment_id,))
        return DeploymentRecord.from_row(row) if row else None

    def deployments(
        self, *, owner: str | None = None, channel: str | None = None, include_gone: bool = False
    ) -> list[DeploymentRecord]:
        sql = "SELECT * FROM deployments WHERE 1=1"
        params: list[Any] = []
        if owner is not None:
            sql += " AND owner = ?"
            params.append(owner)
        if channel is not None:
            sql += " AND channel = ?"
            params.append(channel)
        if not include_gone:
            sql += " AND gone_at IS NULL"
        sql += " ORDER BY created_at, id"
        return [DeploymentRecord.from_row(r) for r in self.db.query(sql, tuple(params))]

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
        values["wire"] = json.dumps(values["wire"], sort_keys=True) if values["wire"] is not None else None
        values["single_region"] = int(bool(values["single_region"]))
        with self.db.write() as conn:
            before = self.deployment(deployment_id)
            if before is not None and before.last_seen_at and ts is not None and ts < before.last_seen_at:
                return before, before
            if before is None:
                conn.execute(
                    f"""INSERT INTO deployments (id, {", ".join(_MIRRORED)}, first_seen_at, last_seen_at,
                            created_at, updated_at)
                        VALUES (?, {", ".join("?" for _ in _MIRRORED)}, ?, ?, ?, ?)""",
                    (deployment_id, *values.values(), ts, ts, ts, ts),
                )
            else:
                cols = ", ".join(f"{k} = ?" for k in _MIRRORED)
                conn.execute(
                    f"UPDATE deployments SET {cols}, last_seen_at = ?, gone_at = NULL, updated_at = ? WHERE id = ?",
                    (*values.values(), ts, ts, deployment_id),
                )
            after = self.deployment(deployment_id)
        assert after is not None
        return before, after

    def live_deployment_states(self) -> dict[str, str | None]:
        """``{id: state}`` of every deployment not gone, oldest first, without loading the records."""
        return {r["id"]: r["state"] for r in self.db.query(
            "SELECT id, state FROM deployments WHERE gone_at IS NULL ORDER BY created_at, id")}

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
            last = {}
            ids = [p[0] for p in points]
            for i in range(0, len(ids), _IN_CHUNK):
                chunk = ids[i:i + _IN_CHUNK]
                last.update((r["deployment_id"], r) for r in conn.execute(
                    f"""SELECT h.* FROM replica_history h JOIN (
                            SELECT deployment_id, MAX(at) AS at FROM replica_history
                            WHERE deployment_id IN ({", ".join("?" for _ in chunk)}) GROUP BY deployment_id
                        ) m ON m.deployment_id = h.deployment_id AND m.at = h.at""", chunk))
            for deployment_id, replicas, accelerator_type, accelerator_count, single_region in points:
                prev = last.get(deployment_id)
                if prev and (
                    prev["replicas"] == replicas
                    and prev["accelerator_type"] == accelerator_type
                    and prev["accelerator_count"] == accelerator_count
                    and bool(prev["single_region"]) == single_region
                ):
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

    def record_traffic(self, deployment_id: str, at: datetime, request_rate: float) -> None:
        """Record one scrape: last traffic time and serving/idle change points."""
        self.record_traffic_many({deployment_id: request_rate}, at)

    def record_traffic_many(self, rates: dict[str, float], at: datetime) -> None:
        """:meth:`record_traffic` for a whole scrape (``{deployment_id: request_rate}``) in one
        transaction, reading the stored serving flags with one query per 500 deployments."""
        ts = iso(at)
        ids = list(rates)
        with self.db.write() as conn:
            was: dict[str, bool] = {}
            for i in range(0, len(ids), _IN_CHUNK):
                chunk = ids[i:i + _IN_CHUNK]
                was.update((r[0], bool(r[1])) for r in conn.execute(
                    f"SELECT deployment_id, serving FROM traffic WHERE deployment_id IN ({', '.join('?' for _ in chunk)})",
                    chunk))
            for deployment_id, request_rate in rates.items():
                serving = request_rate > 0
                conn.execute(
                    """INSERT INTO traffic (deployment_id, last_traffic_at, serving, request_rate, scraped_at)
                       VALUES (?, ?, ?, ?, ?)
                       ON CONFLICT(deployment_id) DO UPDATE SET
                         last_traffic_at = COALESCE(excluded.last_traffic_at, traffic.last_traffic_at),
                         serving = excluded.serving, request_rate = excluded.request_rate,
                         scraped_at = excluded.scraped_at""",
                    (deployment_id, ts if serving else None, int(serving), request_rate, ts),
                )
                if was.get(deployment_id) != serving:
                    conn.execute(
                        "INSERT OR REPLACE INTO traffic_history (deployment_id, at, serving) VALUES (?, ?, ?)",
                        (deployment_id, ts, int(serving)),
                    )

    def last_traffic(self, deployment_id: str) -> datetime | None:
        return parse_iso(self.db.scalar("SELECT last_traffic_at FROM traffic WHERE deployment_id = ?", (deployment_id,)))

    def traffic_rows(self) -> dict[str, dict]:
        return {r["deployment_id"]: r for r in self.db.query("SELECT * FROM traffic")}

    def traffic_history(self, deployment_id: str | None = None) -> list[dict]:
        if deployment_id:
            return self.db.query(
                "SELECT * FROM traffic_history WHERE deployment_id = ? ORDER BY at", (deployment_id,)
            )
        return self.db.query("SELECT * FROM traffic_history ORDER BY deployment_id, at")

    # -- key/value -----------------------------------------------------------------------------
    def get_kv(self, key: str) -> str | None:
        return self.db.scalar("SELECT value FROM kv WHERE key = ?", (key,))

    def set_kv(self, key: str, value: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, value, iso(now)),
        )


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
        sql, params = "SELECT * FROM approvals WHERE 1=1", []
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        if deployment_id is not None:
            sql += " AND deployment_id = ?"
            params.append(deployment_id)
        return [ApprovalRecord.from_row(r) for r in self.db.query(sql + " ORDER BY created_at, id", tuple(params))]

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
    def traffic_points(self, since: datetime | None = None) -> list[dict]:
        """Serving/idle change points from ``since`` on, plus the last one before it per deployment."""
        if since is None:
            return self.traffic_history()
        return self.db.query(
            """SELECT * FROM traffic_history WHERE at >= ? OR at = (SELECT MAX(at) FROM traffic_history h2
                   WHERE h2.deployment_id = traffic_history.deployment_id AND h2.at < ?)
               ORDER BY deployment_id, at""",
            (iso(since), iso(since)),
        )

    def set_budget(self, channel: str, usd_per_month: float, set_by: str, now: datetime) -> None:
        self.db.execute(
            """INSERT INTO budgets (channel, usd_per_month, set_by, set_at) VALUES (?, ?, ?, ?)
               ON CONFLICT(channel) DO UPDATE SET usd_per_month = excluded.usd_per_month,
                   set_by = excluded.set_by, set_at = excluded.set_at""",
            (channel, float(usd_per_month), set_by, iso(now)),
        )

    def delete_budget(self, channel: str) -> bool:
        return self.db.execute("DELETE FROM budgets WHERE channel = ?", (channel,)).rowcount > 0

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
        data = {f.name: row.get(f.name) for f in fields(cls)}
        data["request"] = json.loads(row["request"]) if row.get("request") else {}
        data["result"] = json.loads(row["result"]) if row.get("result") else None
        for key in ("decided_at", "executed_at", "created_at", "expires_at", "reminded_at"):
            data[key] = parse_iso(row.get(key))
        return cls(**data)
