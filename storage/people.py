"""What Slack said of each person (``slack_people``), kept across restarts."""

from __future__ import annotations

import json
from datetime import datetime

from bot.core.clock import iso, parse_iso
from storage.rows import Repository


class PeopleRepo(Repository):
    def person(self, user_id: str) -> tuple[datetime, dict] | None:
        """When Slack last described ``user_id``, and what it said (see :meth:`remember_person`)."""
        row = self.db.one("SELECT fetched_at, profile FROM slack_people WHERE user_id = :user_id",
                          {"user_id": user_id})
        if row is None:
            return None
        at = parse_iso(row["fetched_at"])
        assert at is not None
        return at, json.loads(row["profile"])

    def remember_person(self, user_id: str, profile: dict, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO slack_people (user_id, profile, fetched_at) VALUES (:user_id, :profile, :at) "
            "ON CONFLICT(user_id) DO UPDATE SET profile = excluded.profile, fetched_at = excluded.fetched_at",
            {"user_id": user_id, "profile": json.dumps(profile, separators=(",", ":"), sort_keys=True),
             "at": iso(now)})
