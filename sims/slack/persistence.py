"""The workspace on disk (``state_file``): people, channels, messages, files and Home tabs, saved
shortly after every change."""

from __future__ import annotations

import base64
import itertools
import json
import os
import sys
import threading
import time
from dataclasses import asdict

from .model import Channel, Message, UploadedFile, User, Usergroup, View
from .store import Store


class PersistenceMixin(Store):
    """Saving and loading the workspace (part of SlackWorkspace)."""

    STATE_VERSION = 1

    def save(self, path: str | os.PathLike) -> None:
        """Write the workspace (people, channels, messages, files, Home tabs) atomically."""
        with self._lock:
            n = next(self._ids)
            self._ids = itertools.count(n)
            data = {
                "version": self.STATE_VERSION,
                "team_id": self.team_id,
                "next_id": n,
                "last_ts_micros": self._last_ts_micros,
                "users": [asdict(u) for u in self._users.values()],
                "channels": [asdict(c) for c in self._channels.values()],
                "usergroups": [asdict(g) for g in self._usergroups.values()],
                "messages": {cid: [asdict(m) for m in items] for cid, items in self._messages.items()},
                "homes": [{"user": user, "id": vid, "view": self._views[vid].view}
                          for user, vid in self._homes.items() if vid in self._views],
                "files": [{**asdict(f), "content": base64.b64encode(f.content).decode() if f.content else None}
                          for f in self._files.values()],
            }
            text = json.dumps(data)
            version = self._version
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
        self._saved_version = max(self._saved_version, version)

    def load(self, path: str | os.PathLike) -> None:
        """Read what :meth:`save` wrote; the workspace then holds exactly that."""
        with open(path) as fh:
            data = json.load(fh)
        if data.get("version") != self.STATE_VERSION:
            raise ValueError(f"{os.fspath(path)}: not a workspace state file of version {self.STATE_VERSION}")
        with self._lock:
            self._users = {u["id"]: User(**u) for u in data.get("users", [])}
            self._channels = {c["id"]: Channel(**c) for c in data.get("channels", [])}
            self._usergroups = {g["id"]: Usergroup(**g) for g in data.get("usergroups", [])}
            self._messages = {
                cid: [Message(**{**m, "files": tuple(m.get("files") or ())}) for m in items]
                for cid, items in data.get("messages", {}).items()}
            for home in data.get("homes", []):
                self._views[home["id"]] = View(home["id"], home["user"], home["view"])
                self._homes[home["user"]] = home["id"]
            for f in data.get("files", []):
                content = base64.b64decode(f["content"]) if f.get("content") else None
                self._files[f["id"]] = UploadedFile(**{**f, "content": content})
            self._ids = itertools.count(int(data.get("next_id", 1)))
            self._last_ts_micros = int(data.get("last_ts_micros", 0))
            self.restored = True
            self._touch()

    def _keep_saved(self) -> None:
        """Save shortly after every change (at most a few times a second) until stopped."""
        assert self.state_file is not None
        while not self.stopping.is_set():
            with self._changed:
                self._changed.wait_for(lambda: self._version != self._saved_version or self.stopping.is_set(),
                                       timeout=5)
            if self.stopping.is_set():
                return
            time.sleep(0.25)  # one write for a burst of changes
            try:
                self.save(self.state_file)
            except OSError as exc:
                print(f"slack workspace: could not save {self.state_file}: {exc}", file=sys.stderr, flush=True)
                self.stopping.wait(5)
