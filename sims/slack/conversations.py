"""Conversations: channels (public, private, the bot's DMs), who is in them, and their messages."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from . import blocks as bk
from .model import BOT_USER_ID, Channel, Message
from .store import Store


class ConversationsMixin(Store):
    """Channels and messages (part of SlackWorkspace)."""

    def add_channel(self, channel_id: str, name: str, members: list[str] | None = None) -> Channel:
        """A public channel. ``members=None`` makes every user (and the bot) a member."""
        with self._lock:
            channel = Channel(channel_id, name.lstrip("#"), members=list(members) if members is not None else None,
                              created=int(self.clock.now().timestamp()))
            self._channels[channel_id] = channel
            self._messages.setdefault(channel_id, [])
            self._touch()
            return channel

    def set_channel(self, channel_id: str, *, archived: bool | None = None, bot_member: bool | None = None,
                    private: bool | None = None) -> Channel:
        """Archive a channel, or take the bot out of it (a private channel then refuses its posts
        with ``not_in_channel``), as a workspace admin or member would."""
        with self._lock:
            channel = self._channel_or_raise(channel_id)
            if archived is not None:
                channel.is_archived = archived
            if bot_member is not None:
                channel.bot_member = bot_member
            if private is not None:
                channel.is_private = private
            self._touch()
            return channel

    def dm_channel(self, user: str) -> str:
        """The id of the bot's DM with ``user``, opened on first use."""
        with self._lock:
            for channel in self._channels.values():
                if channel.is_im and channel.im_user == user:
                    return channel.id
            self._user(user)
            channel_id = f"D{next(self._ids):08d}"
            self._channels[channel_id] = Channel(channel_id, user, members=[user, BOT_USER_ID], is_im=True,
                                                 im_user=user, created=int(self.clock.now().timestamp()))
            self._messages[channel_id] = []
            self._touch()
            return channel_id

    @property
    def channels(self) -> list[Channel]:
        with self._lock:
            return list(self._channels.values())

    def resolve_channel(self, ref: str) -> Channel | None:
        """A channel id, ``#name``/``name``, or a user id (their DM with the bot)."""
        ref = (ref or "").strip()
        if ref in self._channels:
            return self._channels[ref]
        if ref in self._users and not self._users[ref].is_bot:
            return self._channels[self.dm_channel(ref)]
        name = ref.lstrip("#")
        for channel in self._channels.values():
            if not channel.is_im and channel.name == name:
                return channel
        return None

    def members(self, channel: Channel) -> list[str]:
        if channel.members is not None:
            return list(channel.members)
        return [u.id for u in self._users.values() if not u.deleted]

    def channel_json(self, channel: Channel) -> dict[str, Any]:
        if channel.is_im:
            return {"id": channel.id, "created": channel.created, "is_im": True, "is_org_shared": False,
                    "user": channel.im_user, "is_user_deleted": self._users[channel.im_user].deleted,
                    "priority": 0}
        return {"id": channel.id, "name": channel.name, "name_normalized": channel.name, "is_channel": True,
                "is_group": False, "is_im": False, "is_mpim": False, "is_private": channel.is_private,
                "is_archived": channel.is_archived,
                "is_general": False, "is_member": BOT_USER_ID in self.members(channel), "created": channel.created,
                "creator": "", "is_shared": False, "is_org_shared": False, "context_team_id": self.team_id,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0}}

    def messages(self, channel: str) -> list[Message]:
        """Every message in a channel (or the bot DM of a user id), in posting order.

        Thread replies (``thread_ts`` set), ephemeral ones (``ephemeral_to`` set) and deleted ones
        (``deleted``) are included; filter as needed.
        """
        with self._lock:
            where = self._channel_or_raise(channel)
            return list(self._messages.get(where.id, []))

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            where = self._channel_or_raise(channel)
            for m in self._messages.get(where.id, []):
                if m.ts == ts:
                    return m
            raise LookupError(f"no message {ts} in {channel}; have {[m.ts for m in self._messages.get(where.id, [])]}")

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The parent message followed by its replies."""
        parent = self.message(channel, ts)
        replies = [m for m in self.messages(channel) if m.thread_ts == ts and m.ts != ts]
        return [parent, *replies]

    def add_message(self, channel: str, user: str, *, text: str = "", blocks: list[dict] | None = None,
                    thread_ts: str | None = None, ephemeral_to: str | None = None, files: tuple[dict, ...] = (),
                    reply_broadcast: bool = False, command_echo: str | None = None,
                    metadata: dict | None = None) -> Message:
        with self._lock:
            ts = self.next_ts()
            message = Message(ts=ts, channel=channel, user=user, text=text, blocks=bk.with_ids(blocks, ts),
                              thread_ts=thread_ts, ephemeral_to=ephemeral_to, files=files,
                              reply_broadcast=reply_broadcast, command_echo=command_echo, metadata=metadata)
            self._messages.setdefault(channel, []).append(message)
            if thread_ts and ephemeral_to is None:
                self._bump_reply_count(channel, thread_ts)
            self._touch()
            return message

    def find_message(self, channel: str, ts: str, include_ephemeral: bool = False) -> Message | None:
        for m in self._messages.get(channel, []):
            if m.ts == ts and not m.deleted and (include_ephemeral or m.ephemeral_to is None):
                return m
        return None

    def replace_message(self, old: Message, **changes: Any) -> Message:
        with self._lock:
            if "blocks" in changes:
                changes["blocks"] = bk.with_ids(changes["blocks"], f"{old.ts}/{self.next_ts()}")
            new = replace(old, **changes)
            items = self._messages[old.channel]
            items[items.index(old)] = new
            self._touch()
            return new

    def visible_to(self, message: Message, user: str) -> bool:
        return not message.deleted and (message.ephemeral_to is None or message.ephemeral_to == user)

    def _channel_or_raise(self, ref: str) -> Channel:
        channel = self.resolve_channel(ref)
        if channel is None:
            raise LookupError(f"no channel {ref!r}; have {[(c.id, c.name) for c in self._channels.values()]}")
        return channel

    def _visible_message(self, channel: str, ts: str, user: str) -> Message:
        for m in self._messages.get(channel, []):
            if m.ts == ts and self.visible_to(m, user):
                return m
        raise LookupError(f"no message {ts} visible to {user} in {channel}")

    def _bump_reply_count(self, channel: str, thread_ts: str) -> None:
        parent = self.find_message(channel, thread_ts)
        if parent is not None:
            items = self._messages[channel]
            items[items.index(parent)] = replace(parent, reply_count=parent.reply_count + 1, thread_ts=thread_ts)
