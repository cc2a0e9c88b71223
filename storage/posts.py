"""Scheduled posts (``scheduled_posts``): each summary, digest or alert claimed once before it is
posted, so two runs of one schedule slot never both post it."""

from __future__ import annotations

from datetime import datetime

from bot.core.clock import iso
from storage.rows import Repository


class PostsRepo(Repository):
    def claim_post(self, key: str, now: datetime, channel: str | None = None) -> bool:
        """Claim a scheduled post before sending it; False if it was claimed (or sent) before.

        The claim is a single ``INSERT … ON CONFLICT DO NOTHING`` on the key, so two runs of the same schedule slot (a
        restart, or two jobs at once) cannot both win.
        """
        cur = self.db.execute(
            "INSERT INTO scheduled_posts (key, status, channel, claimed_at) VALUES (:key, 'claimed', :channel, :at) "
            "ON CONFLICT (key) DO NOTHING",
            {"key": key, "channel": channel, "at": iso(now)},
        )
        return cur.rowcount == 1

    def mark_posted(self, key: str, now: datetime, *, channel: str | None = None, ts: str | None = None) -> None:
        self.db.execute(
            """UPDATE scheduled_posts SET status = 'posted', channel = COALESCE(:channel, channel), ts = :ts,
                   posted_at = :at WHERE key = :key""",
            {"channel": channel, "ts": ts, "at": iso(now), "key": key},
        )

    def release_post(self, key: str) -> None:
        """Drop a claim whose post certainly failed, so the next run tries again."""
        self.db.execute("DELETE FROM scheduled_posts WHERE key = :key AND status = 'claimed'", {"key": key})

    def scheduled_post(self, key: str) -> dict | None:
        return self.db.one("SELECT * FROM scheduled_posts WHERE key = :key", {"key": key})

    def scheduled_post_keys(self, prefix: str) -> list[str]:
        return [r["key"] for r in self.db.query(
            "SELECT key FROM scheduled_posts WHERE substr(key, 1, :n) = :prefix ORDER BY key",
            {"n": len(prefix), "prefix": prefix})]
