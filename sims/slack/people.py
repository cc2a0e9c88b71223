"""People: the workspace's users and user groups, and a user as users.info shows them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .model import APP_ID, BOT_ID, Delivery, User, Usergroup
from .store import Store


class PeopleMixin(Store):
    """Users and user groups (part of SlackWorkspace)."""

    def add_user(self, user_id: str, name: str, real_name: str = "", tz: str = "UTC", is_admin: bool = False,
                 deleted: bool = False, display_name: str = "") -> User:
        with self._lock:
            user = User(user_id, name, real_name=real_name or name, tz=tz, is_admin=is_admin, deleted=deleted,
                        display_name=display_name)
            self._users[user_id] = user
            self._touch()
            return user

    def add_usergroup(self, group_id: str, handle: str, users: list[str] | None = None, name: str = "",
                      description: str = "") -> Usergroup:
        with self._lock:
            group = Usergroup(group_id, handle, name or handle, list(users or []), description)
            self._usergroups[group_id] = group
            self._touch()
            return group

    def deactivate_user(self, user_id: str) -> Delivery | None:
        """Mark the user deleted, as an admin deactivating them does, and send ``user_change``."""
        with self._lock:
            user = self._user(user_id)
            user.deleted = True
            self._touch()
            event = {"type": "user_change", "user": self.user_json(user),
                     "cache_ts": int(self.clock.now().timestamp()), "event_ts": self.next_ts()}
        return self.send_event(event)

    def user(self, user_id: str) -> User:
        with self._lock:
            return self._user(user_id)

    @property
    def users(self) -> list[User]:
        with self._lock:
            return list(self._users.values())

    def user_json(self, user: User) -> dict[str, Any]:
        """A user object as users.info returns it."""
        from zoneinfo import ZoneInfo

        offset = self.clock.now().astimezone(ZoneInfo(user.tz)).utcoffset() or timedelta(0)
        display = user.display_name or user.name
        return {
            "id": user.id, "team_id": self.team_id, "name": user.name, "deleted": user.deleted,
            "real_name": user.real_name, "tz": user.tz, "tz_label": user.tz, "tz_offset": int(offset.total_seconds()),
            "is_admin": user.is_admin, "is_owner": False, "is_bot": user.is_bot, "is_app_user": False,
            "updated": int(self.clock.now().timestamp()),
            "profile": {"display_name": display, "display_name_normalized": display, "real_name": user.real_name,
                        "real_name_normalized": user.real_name, "team": self.team_id,
                        **({"bot_id": BOT_ID, "api_app_id": APP_ID} if user.is_bot else {})},
        }

    def _user(self, user_id: str) -> User:
        if user_id not in self._users:
            raise LookupError(f"no user {user_id}; seeded: {sorted(self._users)}")
        return self._users[user_id]

    def _active_user(self, user_id: str) -> User:
        user = self._user(user_id)
        if user.deleted:
            raise LookupError(f"user {user_id} is deactivated and cannot act")
        return user
