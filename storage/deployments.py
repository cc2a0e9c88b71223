"""The ``deployments`` table: who owns each deployment and where it is tracked, and reads of it.

What a sync mirrors from Fireworks into the same rows is :mod:`storage.mirror`.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Text, bindparam, text

from bot.core.clock import iso
from storage.rows import IN_CHUNK, Repository, where_matching


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
    def worst_case_gpus(self) -> int:
        """GPUs it could run at once, as quotas count them (:meth:`DeploymentsRepo.gpus_committed`)."""
        return (self.max_replicas or 1) * (self.accelerator_count or 1)

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


class DeploymentsRepo(Repository):
    def _records(self, where: str, params: dict, *, expanding: tuple[str, ...] = ()) -> list[DeploymentRecord]:
        # Plain tuples straight into records: a dict per row first cost as much as the query.
        sql: Any = f"SELECT {_RECORD_COLUMNS} FROM deployments WHERE {where}"
        if expanding:
            sql = text(sql).bindparams(*(bindparam(name, expanding=True, type_=Text()) for name in expanding))
        return [DeploymentRecord.from_values(row) for row in self.db.rows(sql, params)]

    def deployment(self, deployment_id: str) -> DeploymentRecord | None:
        found = self._records("id = :id", {"id": deployment_id})
        return found[0] if found else None

    def deployments_with_ids(self, ids: list[str]) -> list[DeploymentRecord]:
        """These deployments' records, in the order of ``ids`` (unknown ids left out)."""
        found: dict[str, DeploymentRecord] = {}
        for i in range(0, len(ids), IN_CHUNK):
            chunk = ids[i:i + IN_CHUNK]
            found.update((r.id, r) for r in self._records("id IN :ids", {"ids": chunk}, expanding=("ids",)))
        return [found[i] for i in ids if i in found]

    def timer_fields(self) -> list[TimerFields]:
        """:class:`TimerFields` of every deployment not gone, in the order of :meth:`deployments`."""
        rows = self.db.rows(f"SELECT {', '.join(TimerFields._fields)} FROM deployments WHERE gone_at IS NULL "
                            "ORDER BY created_at, id")
        make = TimerFields._make
        return [make(row) for row in rows]

    def live_owners(self) -> list[str]:
        """Everyone who owns a deployment not gone, sorted."""
        return [r[0] for r in self.db.rows(
            "SELECT DISTINCT owner FROM deployments WHERE gone_at IS NULL AND owner IS NOT NULL ORDER BY owner")]

    def deployments(
        self, *, owner: str | None = None, channel: str | None = None, include_gone: bool = False
    ) -> list[DeploymentRecord]:
        where, params = where_matching(owner=owner, channel=channel)
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
        creator: str | None = None,
        max_replicas: int | None = None,
        accelerator_count: int | None = None,
    ) -> None:
        """Record who owns a deployment and where it is tracked (before or after it exists).
        ``creator``: the replica about to send its create (see :meth:`pending_creates`).
        ``max_replicas`` and ``accelerator_count``: what a create about to be sent asks for, so its
        GPUs count against quotas (:meth:`gpus_committed`) before Fireworks confirms it; a row
        Fireworks has confirmed keeps what Fireworks says."""
        ts = iso(now)
        self.db.execute(
            """INSERT INTO deployments (id, name, owner, channel, thread_ts, created_by_bot,
                   unused_delete_s, first_seen_at, created_at, updated_at, creator, max_replicas,
                   accelerator_count)
               VALUES (:id, :name, :owner, :channel, :thread_ts, :by_bot, :unused, :ts, :ts, :ts, :creator,
                       :max_replicas, :accelerator_count)
               ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, channel = excluded.channel,
                   thread_ts = COALESCE(excluded.thread_ts, deployments.thread_ts),
                   created_by_bot = CASE WHEN excluded.created_by_bot > deployments.created_by_bot
                                         THEN excluded.created_by_bot ELSE deployments.created_by_bot END,
                   unused_delete_s = COALESCE(excluded.unused_delete_s, deployments.unused_delete_s),
                   max_replicas = CASE WHEN deployments.state IS NULL OR deployments.gone_at IS NOT NULL
                                       THEN COALESCE(excluded.max_replicas, deployments.max_replicas)
                                       ELSE deployments.max_replicas END,
                   accelerator_count = CASE WHEN deployments.state IS NULL OR deployments.gone_at IS NOT NULL
                                            THEN COALESCE(excluded.accelerator_count, deployments.accelerator_count)
                                            ELSE deployments.accelerator_count END,
                   gone_at = NULL, updated_at = excluded.updated_at, creator = excluded.creator""",
            {"id": deployment_id, "name": name, "owner": owner, "channel": channel, "thread_ts": thread_ts,
             "by_bot": int(created_by_bot), "unused": None if unused_delete_s is None else float(unused_delete_s),
             "ts": ts, "creator": creator, "max_replicas": max_replicas, "accelerator_count": accelerator_count},
        )

    def gpus_committed(self, *, owners: Collection[str] | None = None, channel: str | None = None) -> int:
        """GPUs the live deployments could run at once (max replicas × GPUs per replica), of
        ``owners`` (any of them), or tracked in ``channel``, or (neither) of the whole account.

        A create fwbot is about to send counts from its owner claim on, so quota checks made in the
        same write transaction as the claim (:meth:`Database.write`) never let two requests
        through that together exceed a limit. Deleted and deleting deployments do not count.
        """
        where = ["gone_at IS NULL", "(state IS NULL OR state NOT IN ('DELETED', 'DELETING'))"]
        params: dict[str, Any] = {}
        if owners is not None:
            if not owners:
                return 0
            where.append("owner IN :owners")
            params["owners"] = sorted(owners)
        if channel is not None:
            where.append("channel = :channel")
            params["channel"] = channel
        sql = text("SELECT COALESCE(SUM(COALESCE(max_replicas, 1) * COALESCE(accelerator_count, 1)), 0) "
                   f"FROM deployments WHERE {' AND '.join(where)}")
        if owners is not None:
            sql = sql.bindparams(bindparam("owners", expanding=True, type_=Text()))
        return int(self.db.scalar(sql, params) or 0)

    def reserve_gpus(self, deployment_id: str, *, max_replicas: int, accelerator_count: int | None,
                     now: datetime) -> None:
        """Count an update's new worst case against quotas before Fireworks is asked (in the same
        write transaction as the quota check); the next mirror of the deployment replaces it with
        what Fireworks says."""
        self.db.execute("UPDATE deployments SET max_replicas = :max_replicas, "
                        "accelerator_count = COALESCE(:count, accelerator_count), updated_at = :ts WHERE id = :id",
                        {"id": deployment_id, "max_replicas": max_replicas, "count": accelerator_count,
                         "ts": iso(now)})

    def pending_creates(self) -> dict[str, str | None]:
        """``{id: creator}`` of owner claims Fireworks has not confirmed yet (no state): each a
        create in flight, or one whose sender stopped before the answer."""
        return {r[0]: r[1] for r in self.db.rows(
            "SELECT id, creator FROM deployments WHERE gone_at IS NULL AND state IS NULL ORDER BY created_at, id")}

    def forget_deployment(self, deployment_id: str) -> bool:
        """Drop a record the bot made for a create that never happened; False if it is not there
        any more, or Fireworks confirmed it meanwhile."""
        return self.db.execute("DELETE FROM deployments WHERE id = :id AND state IS NULL",
                               {"id": deployment_id}).rowcount == 1

    def set_deployment_fields(self, deployment_id: str, now: datetime, **values: Any) -> None:
        if not values:
            return
        values["updated_at"] = iso(now)
        cols = ", ".join(f"{k} = :v_{k}" for k in values)  # column names are fwbot's own, never input
        params = {f"v_{k}": int(v) if isinstance(v, bool) else v for k, v in values.items()}
        self.db.execute(f"UPDATE deployments SET {cols} WHERE id = :id", {**params, "id": deployment_id})

    def known_live_ids(self) -> list[str]:
        """Ids of the deployments not gone that Fireworks has shown (state known), in no order."""
        return [r[0] for r in self.db.rows("SELECT id FROM deployments WHERE gone_at IS NULL AND state IS NOT NULL")]

    def live_deployment_states(self) -> dict[str, str | None]:
        """``{id: state}`` of every deployment not gone, oldest first, without loading the records."""
        return {r[0]: r[1] for r in self.db.rows(
            "SELECT id, state FROM deployments WHERE gone_at IS NULL ORDER BY created_at, id")}

    def mark_gone(self, deployment_id: str, now: datetime) -> None:
        self.db.execute(
            "UPDATE deployments SET gone_at = :at, updated_at = :at WHERE id = :id AND gone_at IS NULL",
            {"at": iso(now), "id": deployment_id},
        )
