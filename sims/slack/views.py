"""Views: each user's stack of modals (at most three) and their App Home tab."""

from __future__ import annotations

import copy
import hashlib
import time
from typing import Any

from . import blocks as bk
from .model import APP_ID, BOT_ID, View
from .store import Store

VIEW_STACK_LIMIT = 3


class ViewsMixin(Store):
    """Modals and Home tabs (part of SlackWorkspace)."""

    def views_for(self, user: str) -> list[View]:
        """The user's open modals, bottom of the stack first."""
        with self._lock:
            return [self._views[v] for v in self._stacks.get(user, [])]

    def view(self, view_id: str) -> View:
        with self._lock:
            if view_id not in self._views:
                raise LookupError(f"no view {view_id}")
            return self._views[view_id]

    def home(self, user: str) -> View | None:
        with self._lock:
            view_id = self._homes.get(user)
            return self._views[view_id] if view_id else None

    def new_view(self, user: str, view: dict[str, Any]) -> View:
        with self._lock:
            view_id = self.next_id("V")
            stored = self._view_json(view_id, view, root_view_id=view_id, previous_view_id=None)
            record = View(view_id, user, stored)
            self._views[view_id] = record
            self._touch()
            return record

    def open_modal(self, user: str, view: dict[str, Any]) -> View:
        with self._lock:
            record = self.new_view(user, view)
            self._stacks[user] = [record.id]
            self._touch()
            return record

    def push_modal(self, user: str, view: dict[str, Any]) -> View | None:
        with self._lock:
            stack = self._stacks.get(user, [])
            if not stack or len(stack) >= VIEW_STACK_LIMIT:
                return None
            record = self.new_view(user, view)
            record.view["root_view_id"] = stack[0]
            record.view["previous_view_id"] = stack[-1]
            stack.append(record.id)
            self._touch()
            return record

    def update_view(self, record: View, view: dict[str, Any]) -> View:
        with self._lock:
            record.view = self._view_json(record.id, view, root_view_id=record.view.get("root_view_id"),
                                          previous_view_id=record.view.get("previous_view_id"))
            record.errors = {}
            self._touch()
            return record

    def publish_home(self, user: str, view: dict[str, Any]) -> View:
        with self._lock:
            if user in self._homes:
                return self.update_view(self._views[self._homes[user]], view)
            record = self.new_view(user, view)
            self._homes[user] = record.id
            return record

    def view_by_external_id(self, external_id: str) -> View | None:
        for record in self._views.values():
            if record.view.get("external_id") == external_id:
                return record
        return None

    def is_open(self, view_id: str) -> bool:
        return any(view_id in s for s in self._stacks.values()) or view_id in self._homes.values()

    def _open_view(self, view_id: str, user: str) -> View:
        view = self._views.get(view_id)
        if view is None or view.user != user or not self.is_open(view_id):
            open_ids = self._stacks.get(user, []) + ([self._homes[user]] if user in self._homes else [])
            raise LookupError(f"view {view_id} is not open for {user}; open: {open_ids}")
        return view

    def _current_state(self, view: View, values: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
        """State values: what the user gave now over what the view held before."""
        held = (view.view.get("state") or {}).get("values") or {}
        merged: dict[str, dict[str, Any]] = {b: dict(a) for b, a in held.items()}
        for block_id, actions in (values or {}).items():
            merged.setdefault(block_id, {}).update(actions)
        return bk.view_state(view.blocks, merged)

    def _view_json(self, view_id: str, view: dict[str, Any], root_view_id: str | None,
                   previous_view_id: str | None) -> dict[str, Any]:
        body = copy.deepcopy(view)
        blocks = bk.with_ids(body.get("blocks") or [], view_id) or []
        state = bk.view_state(blocks)
        view_hash = hashlib.sha1(f"{view_id}{time.monotonic_ns()}".encode()).hexdigest()[:20]
        return {
            "id": view_id, "team_id": self.team_id, "type": body.get("type", "modal"),
            "blocks": blocks, "private_metadata": body.get("private_metadata", ""),
            "callback_id": body.get("callback_id", ""), "state": {"values": state},
            "hash": f"{int(self.clock.now().timestamp())}.{view_hash}",
            "title": body.get("title"), "clear_on_close": bool(body.get("clear_on_close", False)),
            "notify_on_close": bool(body.get("notify_on_close", False)), "close": body.get("close"),
            "submit": body.get("submit"), "previous_view_id": previous_view_id, "root_view_id": root_view_id,
            "app_id": APP_ID, "external_id": body.get("external_id", ""), "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }

    def _pop_view(self, user: str, view_id: str) -> None:
        stack = self._stacks.get(user, [])
        if view_id in stack:
            del stack[stack.index(view_id):]
        self._touch()

    def _close_all(self, user: str) -> None:
        self._stacks[user] = []
        self._touch()
