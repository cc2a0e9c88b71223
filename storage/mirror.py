"""What a sync writes: Fireworks' view of each deployment mirrored into ``deployments``, when each
was last seen unchanged (``deployment_sightings``), and the listing pages it read (``sync_pages``)."""

from __future__ import annotations

import hashlib
import json
import marshal
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, text

from bot.core.clock import iso
from storage.deployments import DeploymentRecord, DeploymentsRepo
from storage.history import HistoryRepo
from storage.rows import IN_CHUNK

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
    """The ``_COMPARED`` columns of a deployment as :meth:`MirrorRepo.mirror` would store them."""
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


_SIGHTED = """INSERT INTO deployment_sightings (deployment_id, seen_at) VALUES (:id, :ts)
               ON CONFLICT (deployment_id) DO UPDATE SET seen_at = excluded.seen_at"""

# The later of the two sightings, as text ('' for none): two-argument MAX() is SQLite's only.
_COMPARED_ROWS = text(
    f"""SELECT id, {", ".join(_COMPARED)},
               CASE WHEN COALESCE(last_seen_at, '') > COALESCE(s.seen_at, '') THEN COALESCE(last_seen_at, '')
                    ELSE COALESCE(s.seen_at, '') END,
               gone_at, ready_at, ready_announced, owner, created_by_bot, adoption_offered_at
        FROM deployments LEFT JOIN deployment_sightings s ON s.deployment_id = id
        WHERE id IN :ids""").bindparams(bindparam("ids", expanding=True, type_=Text()))


class MirrorRepo(DeploymentsRepo, HistoryRepo):
    """Mirroring reads and writes deployment rows and records replica change points as it confirms them."""

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
        with self.db.write():
            before = self.deployment(deployment_id)
            seen = max(before.last_seen_at or "", self._sighted(deployment_id) or "") if before else ""
            if seen and ts is not None and ts < seen:
                return before, before
            if before is None:
                self.db.execute(
                    f"""INSERT INTO deployments (id, {", ".join(values)}, first_seen_at, last_seen_at,
                            created_at, updated_at)
                        VALUES (:id, {", ".join(f":v_{k}" for k in values)}, :ts, :ts, :ts, :ts)""",
                    {"id": deployment_id, "ts": ts, **{f"v_{k}": v for k, v in values.items()}},
                )
            else:
                cols = ", ".join(f"{k} = :v_{k}" for k in values)
                self.db.execute(
                    f"UPDATE deployments SET {cols}, last_seen_at = :ts, gone_at = NULL, updated_at = :ts WHERE id = :id",
                    {"id": deployment_id, "ts": ts, **{f"v_{k}": v for k, v in values.items()}},
                )
                if values["state"] == "READY" and before.state in _COMING_UP:
                    # Up again (e.g. after an undelete): its idle time starts now, not at its first READY.
                    self.db.execute("UPDATE deployments SET ready_at = :ts WHERE id = :id", {"ts": ts, "id": deployment_id})
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
        with self.db.write():
            stored = self._compared_rows([dep_id for dep_id, _ in items])
            unchanged: list[str] = []
            changed: list[tuple[str, dict[str, Any]]] = []
            for dep_id, mirrored in items:
                row = stored.get(dep_id)
                if row is None or not self._settled(row, compared_values(mirrored), ts):
                    changed.append((dep_id, mirrored))
                else:
                    unchanged.append(dep_id)
            self.db.executemany(_SIGHTED, [{"id": dep_id, "ts": ts} for dep_id in unchanged])
            return [self.mirror(dep_id, mirrored, now, observed_at=observed_at) for dep_id, mirrored in changed]

    def _compared_rows(self, ids: list[str]) -> dict[str, tuple]:
        """What :meth:`_settled` reads of each stored deployment, by id."""
        stored: dict[str, tuple] = {}
        for i in range(0, len(ids), IN_CHUNK):
            for row in self.db.rows(_COMPARED_ROWS, {"ids": ids[i:i + IN_CHUNK]}):  # compared as they come
                stored[row[0]] = row
        return stored

    def confirm_unchanged(self, digest: bytes, entries: list[tuple[str, tuple]], now: datetime) -> bool:
        """Record that Fireworks showed the page ``digest`` again, with these deployments exactly
        as :meth:`page_entries` remembered them, if each is still stored that way with nothing
        left to do about it (as :meth:`mirror_many` would find); else change nothing and return
        False."""
        ts = iso(now)
        with self.db.write():
            stored = self._compared_rows([dep_id for dep_id, _ in entries])
            for dep_id, values in entries:
                row = stored.get(dep_id)
                if row is None or not self._settled(row, values, ts):
                    return False
            self.db.execute("UPDATE sync_pages SET seen_at = :ts WHERE digest = :digest", {"ts": ts, "digest": digest})
            self.db.executemany(_SIGHTED, [{"id": dep_id, "ts": ts} for dep_id, _ in entries])
            at = _COMPARED.index
            self.record_replicas_many(now, [
                (dep_id, v[at("replicas")], v[at("accelerator_type")], v[at("accelerator_count")],
                 bool(v[at("single_region")])) for dep_id, v in entries])
        return True

    # -- listing pages seen before ----------------------------------------------------------------
    def known_pages(self) -> dict[bytes, str | None]:
        """``{digest: next page token}`` of the listing pages remembered from earlier syncs."""
        return {bytes(r[0]): r[1] for r in self.db.rows("SELECT digest, next_token FROM sync_pages")}

    def page_entries(self, digest: bytes) -> list[tuple[str, tuple]] | None:
        """The deployments a remembered page showed, as ``(id, compared values)``."""
        entries = self.db.scalar("SELECT entries FROM sync_pages WHERE digest = :digest", {"digest": digest})
        if entries is None:
            return None
        sig = _COMPARED.index("wire_sig")
        out = []
        for dep_id, *values in json.loads(entries):
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
        self.db.execute(
            """INSERT INTO sync_pages (digest, next_token, entries, seen_at) VALUES (:digest, :next, :entries, :at)
               ON CONFLICT (digest) DO UPDATE SET next_token = excluded.next_token, entries = excluded.entries,
                   seen_at = excluded.seen_at""",
            {"digest": digest, "next": next_token, "entries": json.dumps(entries, separators=(",", ":")),
             "at": iso(now)})

    def forget_pages_before(self, now: datetime) -> None:
        """Drop the pages a complete listing at ``now`` no longer showed."""
        self.db.execute("DELETE FROM sync_pages WHERE seen_at < :at", {"at": iso(now)})

    def _sighted(self, deployment_id: str) -> str | None:
        return self.db.scalar("SELECT seen_at FROM deployment_sightings WHERE deployment_id = :id", {"id": deployment_id})

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
