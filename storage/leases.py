"""Leases (``leases``): which replica holds a role, until when, under which fencing token.

A lease is one row, taken and renewed by one statement (:meth:`LeasesRepo.acquire_or_renew`, an
``INSERT … ON CONFLICT DO UPDATE … WHERE``): the holder renews it, anyone takes it once it has
expired, and when two replicas race for it the database lets exactly one win. Every take-over
adds one to ``token``, the fencing token, and a token never goes back: work begun under a token
that is no longer the lease's is refused at its next fenced write (:func:`hold_fence`), so a
holder that was paused past its expiry, and wakes up believing it still leads, changes nothing.

The same table holds each running replica's presence (``replica:<id>``, see
:func:`presence_name`), renewed with the leader lease: work a replica claimed (an effect it is
posting) is left to it while it is present, and taken over once it is gone.

The SQL is the same on SQLite and PostgreSQL (``ON CONFLICT``, ``RETURNING``, ``CASE``). Times
are RFC3339 UTC text, compared as text, like every time in the store; each replica passes its own
clock's ``now``, so replicas sharing a lease must share a clock (SQLite: one machine;
PostgreSQL: replicas whose clocks are kept in sync).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.clock import Clock, iso, parse_iso
from storage.db import Database
from storage.rows import Repository

LEADER = "scheduler"  # the lease whose holder runs every scheduled job
PRESENCE = "replica:"  # + a replica id: that replica is running


def new_replica_id() -> str:
    """This process's name as a lease holder: ``hostname-pid-random`` (unique across restarts)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def presence_name(replica: str) -> str:
    return PRESENCE + replica


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    token: int
    expires_at: datetime
    renewed_at: datetime
    acquired_at: datetime

    @classmethod
    def from_row(cls, row: dict) -> Lease:
        times = {k: parse_iso(row[k]) for k in ("expires_at", "renewed_at", "acquired_at")}
        return cls(name=row["name"], holder=row["holder"], token=int(row["token"]), **times)  # type: ignore[arg-type]


class LeaseLost(Exception):
    """Scheduled work found that its replica no longer holds the lease it began under."""


@dataclass(frozen=True)
class Fence:
    """The lease a piece of scheduled work runs under: its name, the token it was granted, and the
    clock that says whether it has expired."""

    name: str
    token: int
    clock: Clock


_running_under: ContextVar[Fence | None] = ContextVar("fwbot_fence", default=None)


@contextlib.contextmanager
def fenced(fence: Fence | None) -> Iterator[None]:
    """Run the body (on this thread) as scheduled work under ``fence``: :func:`hold_fence` checks it."""
    reset = _running_under.set(fence)
    try:
        yield
    finally:
        _running_under.reset(reset)


def current_fence() -> Fence | None:
    return _running_under.get()


_HOLDS = "SELECT 1 FROM leases WHERE name = :name AND token = :token AND expires_at > :now"


def _holds(db: Database, name: str, token: int, now: datetime, *, lock: bool = False) -> bool:
    """Whether ``name`` is held under ``token`` at ``now``; with ``lock`` (inside a write, on
    PostgreSQL) the row is read ``FOR SHARE``, so no other transaction changes it until ours ends."""
    sql = _HOLDS + " FOR SHARE" if lock and db.is_postgres else _HOLDS
    return db.scalar(sql, {"name": name, "token": int(token), "now": iso(now)}) is not None


def hold_fence(db: Database) -> None:
    """Go on only if the scheduled work running on this thread still holds its lease, with the
    token it began under; else raise :class:`LeaseLost`. Called inside the write transaction it
    guards (``with db.write():``), it is atomic with that transaction's writes: write transactions
    are serialised on both engines (:mod:`storage.db`: SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's
    transaction-level advisory lock), so a take-over, itself a write, waits for the commit. On
    PostgreSQL the lease row is also read ``FOR SHARE``, so it stays as read until the commit even
    against a writer outside :meth:`Database.write` (one that takes no advisory lock). Work that is
    not scheduled (a Slack request) has no fence: nothing to check."""
    fence = _running_under.get()
    if fence is None:
        return
    with db.write():
        if not _holds(db, fence.name, fence.token, fence.clock.now(), lock=True):
            raise LeaseLost(f"the {fence.name} lease (token {fence.token}) is no longer held by this replica")


class LeasesRepo(Repository):
    def acquire_or_renew(self, name: str, holder: str, now: datetime, ttl: timedelta | float) -> int | None:
        """Take the lease ``name`` for ``holder`` until ``now + ttl``, or renew it; returns the
        fencing token while ``holder`` has it, ``None`` when someone else does.

        One statement, so the database arbitrates a race: a free (missing or expired) lease goes
        to one caller with the token increased, a held one is renewed only by its holder (same
        token). A holder whose own lease expired gets it back only with a new token: what it began
        under the old one is fenced off."""
        ttl = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
        at, until = iso(now), iso(now + ttl)
        with self.db.write():
            token = self.db.scalar(
                """INSERT INTO leases (name, holder, token, expires_at, renewed_at, acquired_at)
                   VALUES (:name, :holder, 1, :until, :at, :at)
                   ON CONFLICT (name) DO UPDATE SET
                       token = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > excluded.renewed_at
                                    THEN leases.token ELSE leases.token + 1 END,
                       acquired_at = CASE WHEN leases.holder = excluded.holder
                                               AND leases.expires_at > excluded.renewed_at
                                          THEN leases.acquired_at ELSE excluded.acquired_at END,
                       holder = excluded.holder,
                       expires_at = excluded.expires_at,
                       renewed_at = excluded.renewed_at
                   WHERE leases.holder = excluded.holder OR leases.expires_at <= excluded.renewed_at
                   RETURNING token""",
                {"name": name, "holder": holder, "until": until, "at": at},
            )
        return int(token) if token is not None else None

    def take_over_silent(self, name: str, holder: str, *, token: int, silent_since: datetime, now: datetime,
                         ttl: timedelta) -> int | None:
        """Take the lease ``name`` from a holder that is gone (storage/liveness.py): only if it is still
        under ``token`` (what the caller saw) and has not been renewed since ``silent_since``. One
        conditional ``UPDATE … RETURNING``, so of several replicas trying, one wins; the token goes
        up, fencing off anything the old holder began. The new token, or ``None`` if the lease moved on."""
        with self.db.write():
            row = self.db.one(
                """UPDATE leases SET holder = :holder, token = token + 1, expires_at = :until, renewed_at = :at,
                                     acquired_at = :at
                   WHERE name = :name AND token = :token AND renewed_at < :silent AND holder != :holder
                   RETURNING token""",
                {"holder": holder, "until": iso(now + ttl), "at": iso(now), "name": name, "token": token,
                 "silent": iso(silent_since)})
        return int(row["token"]) if row else None

    def release(self, name: str, holder: str, token: int) -> bool:
        """Give the lease up (a replica stopping): it expires at once, so another takes it without
        waiting out the rest of its time. The token stays, so the next holder's is higher."""
        cur = self.db.execute(
            """UPDATE leases SET expires_at = CASE WHEN renewed_at < expires_at THEN renewed_at ELSE expires_at END
               WHERE name = :name AND holder = :holder AND token = :token""",
            {"name": name, "holder": holder, "token": int(token)})
        return cur.rowcount == 1

    def holder_of(self, name: str, now: datetime) -> Lease | None:
        """The lease ``name`` while someone holds it (not expired at ``now``)."""
        row = self.db.one("SELECT * FROM leases WHERE name = :name AND expires_at > :now",
                          {"name": name, "now": iso(now)})
        return Lease.from_row(row) if row else None

    def lease(self, name: str) -> Lease | None:
        """The lease's row as it is, expired or not."""
        row = self.db.one("SELECT * FROM leases WHERE name = :name", {"name": name})
        return Lease.from_row(row) if row else None

    def check_fence(self, name: str, token: int, now: datetime) -> bool:
        """Whether the lease ``name`` is held, unexpired at ``now``, under ``token`` (call it
        inside the write transaction it guards; see :func:`hold_fence`)."""
        return _holds(self.db, name, token, now)

    def hold_fence(self) -> None:
        """:func:`hold_fence` on this store's database."""
        hold_fence(self.db)

    def present_replicas(self, now: datetime) -> list[str]:
        """The replicas whose presence has not expired, by id."""
        rows = self.db.query("SELECT holder FROM leases WHERE substr(name, 1, :n) = :prefix AND expires_at > :now "
                             "ORDER BY holder", {"n": len(PRESENCE), "prefix": PRESENCE, "now": iso(now)})
        return [r["holder"] for r in rows]

    def forget_absent_replicas(self, before: datetime) -> int:
        """Drop the presence of replicas gone since before ``before`` (the leader lease stays)."""
        cur = self.db.execute("DELETE FROM leases WHERE substr(name, 1, :n) = :prefix AND expires_at < :before",
                              {"n": len(PRESENCE), "prefix": PRESENCE, "before": iso(before)})
        return cur.rowcount
