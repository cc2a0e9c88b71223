"""Runtime fault injection: random failures, added latency, scripted failures, lost responses."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class InjectedFailure:
    """One failure to answer instead of doing the work."""

    status: int
    retry_after: float | None = None


class Faults:
    """Thread-safe knobs read by the HTTP layer before every control-plane call."""

    def __init__(self, fail_rate: float = 0.0, latency_ms: int = 0, seed: int | None = None) -> None:
        self.fail_rate = fail_rate
        self.latency_ms = latency_ms
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._scripted: list[InjectedFailure] = []
        self._lose_creates = 0
        self.lose_mode = "close"
        self._matching: list[list] = []

    def fail_next(self, n: int = 1, status: int = 503, retry_after: float | None = None) -> None:
        """The next ``n`` control-plane calls fail with ``status`` (503, 500, 429, ...)."""
        with self._lock:
            self._scripted.extend(InjectedFailure(status, retry_after) for _ in range(n))

    def lose_next_create_response(self, mode: str = "close") -> None:
        """The next deployment create is committed but its response never arrives.

        ``mode="close"`` drops the connection without an answer; ``mode="503"`` answers 503
        UNAVAILABLE. Either way the SDK retries and then sees 409 ALREADY_EXISTS.
        """
        if mode not in ("close", "503"):
            raise ValueError("mode must be 'close' or '503'")
        with self._lock:
            self._lose_creates += 1
            self.lose_mode = mode

    def fail_matching(self, method: str, path_pattern: str, n: int | None = 1, status: int = 503,
                      after_commit: bool = False) -> None:
        """The next ``n`` calls (``None``: all, until :meth:`clear_matching`) whose HTTP method and
        path match fail with ``status``. ``after_commit``: the call takes effect first and only its
        answer is the failure (a response lost on the way back)."""
        import re

        with self._lock:
            self._matching.append([method.upper(), re.compile(path_pattern), n, InjectedFailure(status), after_commit])

    def clear_matching(self) -> None:
        with self._lock:
            self._matching.clear()

    def take_matching(self, method: str, path: str, *, after_commit: bool) -> InjectedFailure | None:
        with self._lock:
            for rule in self._matching:
                m, pattern, left, failure, late = rule
                if m == method and late == after_commit and pattern.fullmatch(path) and (left is None or left > 0):
                    if left is not None:
                        rule[2] = left - 1
                    return failure
        return None

    def take_failure(self) -> InjectedFailure | None:
        """The failure to inject into the current call, if any (scripted first, then random)."""
        with self._lock:
            if self._scripted:
                return self._scripted.pop(0)
            if self.fail_rate > 0 and self._rng.random() < self.fail_rate:
                return InjectedFailure(503)
        return None

    def take_lost_create(self) -> str | None:
        """``"close"`` or ``"503"`` when this create's response must be lost, else ``None``."""
        with self._lock:
            if self._lose_creates:
                self._lose_creates -= 1
                return self.lose_mode
        return None

    def reset(self) -> None:
        """Forget scripted faults and zero the knobs."""
        with self._lock:
            self._scripted.clear()
            self._lose_creates = 0
            self.fail_rate = 0.0
            self.latency_ms = 0
