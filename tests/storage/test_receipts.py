"""storage/receipts.py on a real database (a SQLite file, and PostgreSQL when a server is given):
one claim per key, durably, a prune by age, and memory when the database cannot take a claim."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.receipts import BUSY_TIMEOUT_MS, Receipts

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


def test_a_key_is_claimed_once_and_the_claim_survives_a_restart(db):
    receipts = Receipts(db, prune_every_s=10**9)
    try:
        assert receipts.first_time("event:Ev1")
        assert not receipts.first_time("event:Ev1")
        assert receipts.first_time("trigger:T1")
    finally:
        receipts.close()
    again = Receipts(db, prune_every_s=10**9)  # a new process on the same database
    try:
        assert not again.first_time("event:Ev1") and again.first_time("event:Ev2")
    finally:
        again.close()
    assert sorted(r["key"] for r in db.query("SELECT key FROM request_receipts")) == [
        "event:Ev1", "event:Ev2", "trigger:T1"]


def test_prune_forgets_receipts_older_than_the_retention(db):
    clock = Clock()
    receipts = Receipts(db, retention_s=3600, prune_every_s=10**9, now=clock)
    try:
        assert receipts.first_time("old")
        clock.at = T0 + timedelta(minutes=50)
        assert receipts.first_time("new")
        clock.at = T0 + timedelta(minutes=70)
        assert receipts.prune() == 1
        assert db.query("SELECT key, seen_at FROM request_receipts") == [
            {"key": "new", "seen_at": "2026-11-02T09:50:00.000000Z"}]
        assert receipts.first_time("old")  # forgotten: a re-delivery this late is not Slack's
    finally:
        receipts.close()


def test_a_busy_database_falls_back_to_memory(db, caplog):
    receipts = Receipts(db, prune_every_s=10**9)
    locked, release = threading.Event(), threading.Event()

    def another_writer() -> None:  # holds the table (PostgreSQL) or the file's write lock (SQLite)
        with db.write():
            if db.is_postgres:
                db.execute("LOCK TABLE request_receipts IN EXCLUSIVE MODE")
            else:
                db.execute("DELETE FROM request_receipts WHERE key = 'none'")
            locked.set()
            release.wait(10)

    writer = threading.Thread(target=another_writer)
    writer.start()
    try:
        assert locked.wait(5)
        with caplog.at_level(logging.WARNING, logger="fwbot"):
            started = datetime.now(UTC)
            assert receipts.first_time("k")
            assert not receipts.first_time("k")  # remembered in memory
            waited = datetime.now(UTC) - started
        assert "remembering it in memory only" in caplog.text
        assert waited < timedelta(milliseconds=2 * BUSY_TIMEOUT_MS + 2000)  # not the main 10 s timeout
    finally:
        release.set()
        writer.join()
    try:
        assert not receipts.first_time("k")  # the database has it now, and memory did too
        assert db.scalar("SELECT count(*) FROM request_receipts WHERE key = 'k'") == 1
        assert receipts.first_time("k2")
    finally:
        receipts.close()


def test_closed_receipts_remember_in_memory(db):
    receipts = Receipts(db, prune_every_s=10**9)
    receipts.close()
    assert receipts.first_time("k") and not receipts.first_time("k")
    assert db.scalar("SELECT count(*) FROM request_receipts") == 0


def test_an_in_memory_database_is_claimed_in_through_the_callers_connection():
    db = Database(":memory:")
    db.migrate()
    receipts = Receipts(db, prune_every_s=10**9)
    try:
        assert receipts.first_time("k") and not receipts.first_time("k")
        assert db.scalar("SELECT count(*) FROM request_receipts") == 1
    finally:
        receipts.close()
        db.close()


def test_concurrent_deliveries_of_one_key_run_once(db):
    n = 8
    receipts = Receipts(db, prune_every_s=10**9)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(receipts.first_time("same"))) for _ in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        receipts.close()
    assert sorted(results) == [False] * (n - 1) + [True]
