"""Waiting in tests: ``wait_for`` polls until something holds and, on a timeout, reports what the
workspace and the app in this process were doing."""

from __future__ import annotations

import inspect
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from .store import Store

T = TypeVar("T")


class WaitingMixin(Store):
    """Waiting helpers for tests (part of SlackWorkspace)."""

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
        """Poll ``predicate`` until it returns something truthy; return that.

        Lookup errors raised by the predicate count as "not yet". On timeout, raises
        AssertionError showing the predicate and the workspace's recent activity.
        """
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
                last_error = None
            except (LookupError, AttributeError, AssertionError) as exc:
                value, last_error = None, exc
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_report(predicate, timeout, value, last_error))
            time.sleep(interval)

    def _timeout_report(self, predicate: Callable[[], Any], timeout: float, value: Any,
                        error: Exception | None) -> str:
        try:
            source = inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            source = repr(predicate)
        lines = [f"wait_for timed out after {timeout}s: {source}",
                 f"  last result: {error!r}" if error else f"  last result: {value!r}",
                 "  recent Web API calls:"]
        for call in self.calls[-8:]:
            outcome = (call.response or {}).get("error") or ("ok" if call.status == 200 else call.status)
            lines.append(f"    {call.method} {json.dumps(call.params, default=str)[:160]} -> {outcome}")
        lines.append("  recent deliveries to the app:")
        for kind, delivery in self.deliveries[-5:]:
            lines.append(f"    {kind}: {delivery.status} {delivery.error or ''} {delivery.body[:120]!r}")
        lines += _busy_threads()
        return "\n".join(lines)


def _busy_threads(limit: int = 12) -> list[str]:
    """Where this process's named worker threads are now (the app runs in-process in tests), so a
    wait that timed out shows what the app was stuck on."""
    names = {t.ident: t.name for t in threading.enumerate()}
    out = ["  threads of the app in this process (innermost frames):"]
    for ident, frame in sys._current_frames().items():
        name = names.get(ident, "?")
        if not name.startswith(("fwbot", "Thread")) or len(out) > limit:
            continue
        stack = traceback.extract_stack(frame)[-4:]
        out.append(f"    {name}: " + " <- ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})"
                                                for f in reversed(stack)))
    return out
