"""The Web API's record of calls (with chat.postMessage posts closer together than Slack allows) and
the failures a test scripts for it."""

from __future__ import annotations

from .model import ApiCall, RateViolation, Script
from .store import Store


class ScriptingMixin(Store):
    """Recorded and scripted Web API calls (part of SlackWorkspace)."""

    @property
    def calls(self) -> list[ApiCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def record_call(self, call: ApiCall) -> None:
        with self._lock:
            self._calls.append(call)
            if call.method == "chat.postMessage" and call.response and call.response.get("ok"):
                channel = call.response["channel"]
                previous = self._last_post.get(channel)
                if previous is not None and (call.at - previous).total_seconds() < 1:
                    self.rate_violations.append(RateViolation(call.method, channel, call.at,
                                                              (call.at - previous).total_seconds()))
                self._last_post[channel] = call.at

    def script(self, method: str, status: int | None = None, retry_after: float | None = None,
               error: str | None = None, times: int | None = 1) -> None:
        """Make the next ``times`` calls to ``method`` fail: an HTTP status (429 with Retry-After)
        or an ``{"ok": false, "error": ...}`` answer. ``times=None`` fails forever."""
        if status is None and error is None:
            raise ValueError("script needs a status or an error")
        with self._lock:
            self._scripts.append(Script(method, status, retry_after, error, times))

    def take_script(self, method: str) -> Script | None:
        with self._lock:
            for script in self._scripts:
                if script.method == method and (script.remaining is None or script.remaining > 0):
                    if script.remaining is not None:
                        script.remaining -= 1
                    return script
            return None
