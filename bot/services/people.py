"""People in Slack: who they are (timezone, still active, a bot or not; asked once per TTL and kept in
SQLite) and who is in a user group (asked at most once a minute, kept in memory). The one place
fwbot asks Slack about people."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot.services.container import Services

log = logging.getLogger("fwbot.people")

PROFILE_TTL_S = 3600.0
GROUP_TTL_S = 60.0
PROFILE_FIELDS = ("id", "name", "tz", "deleted", "is_bot")


class SlackDirectory:
    """Who people are in Slack (timezone, still active), asked at most once per TTL per person.

    What Slack said is kept in SQLite (``slack_people``), so a restart does not ask again about
    every owner; a ``user_change`` event replaces it at once (:meth:`learn`).
    """

    def __init__(self, services: Services, ttl_s: float = PROFILE_TTL_S) -> None:
        self.s = services
        self.ttl_s = ttl_s

    def profile(self, user_id: str) -> dict | None:
        """``users.info`` of a person (kept ``ttl_s``); ``None`` when Slack could not say."""
        now = self.s.clock.now()
        stored = self.s.store.person(user_id)
        if stored is not None and 0 <= (now - stored[0]).total_seconds() < self.ttl_s:
            return stored[1]
        try:
            user = self.s.poster.client.users_info(user=user_id)["user"]
        except SlackApiError as e:
            if e.response.get("error") != "user_not_found":
                log.warning("users.info %s failed: %s", user_id, e.response.get("error"))
                return None
            user = {"id": user_id, "deleted": True}
        return self.learn(user, now)

    def learn(self, user: dict, now: datetime | None = None) -> dict:
        """Keep what Slack says of a person (from ``users.info`` or a ``user_change`` event)."""
        now = now or self.s.clock.now()
        kept = {k: user[k] for k in PROFILE_FIELDS if k in user}
        self.s.store.remember_person(str(user["id"]), kept, now)
        return kept

    def tz(self, user_id: str | None) -> str | None:
        if not user_id:
            return None
        profile = self.profile(user_id)
        return (profile or {}).get("tz") or self.s.settings.timezone

    def has_left(self, user_id: str) -> bool:
        """True when the person was deactivated (or removed) in Slack."""
        return bool((self.profile(user_id) or {}).get("deleted"))

    def handle(self, user_id: str) -> str:
        """``@name`` as plain text, for text that is escaped (a resolved warning's reason)."""
        name = (self.profile(user_id) or {}).get("name")
        return f"@{name}" if name else user_id

    def is_bot(self, user_id: str) -> bool:
        return bool((self.profile(user_id) or {}).get("is_bot"))


class GroupMembers:
    """Members of Slack user groups (``usergroups.users.list``), kept ``ttl_s`` on the services'
    clock. A failed lookup is ``None`` (the caller decides what that means) and is not kept."""

    def __init__(self, services: Services, ttl_s: float = GROUP_TTL_S) -> None:
        self.s = services
        self.ttl_s = ttl_s
        self._kept: dict[str, tuple[datetime, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, group_id: str) -> frozenset[str] | None:
        now = self.s.clock.now()
        with self._lock:
            hit = self._kept.get(group_id)
            if hit and 0 <= (now - hit[0]).total_seconds() < self.ttl_s:
                return hit[1]
        try:
            resp = self.s.poster.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as e:
            log.warning("cannot list user group %s: %s", group_id, e.response.get("error"))
            return None
        found = frozenset(str(u) for u in resp.get("users") or [])
        with self._lock:
            self._kept[group_id] = (now, found)
        return found


def groups_for(services: Services) -> GroupMembers:
    """The one user-group cache of these services."""
    return services.shared(GroupMembers)
