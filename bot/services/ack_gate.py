"""Work after an ack lets the Slack requests being answered go first (:class:`AckGate`).

Measured (/fw deploy, 50 senders, ack p50 and p99 ÷ bare Bolt's): 1.2–1.8× and 1.2–2.0× with
the gate; work started at once 3.8–3.9× and 7.5–11×; Bolt's lazy listeners 13–14× and 12–14×
(bench/README.md).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

# Work after an ack waits at most this long for the requests being acknowledged to be answered;
# after that it goes on one piece at a time until they are, and after the second limit anyway.
ACK_FIRST_MAX_S = 1.0
ACK_FIRST_HARD_MAX_S = 3.0


class AckGate:
    """Slack requests being answered right now, so work after an ack can let them go first.

    Slack drops a request not acknowledged within 3 seconds; the reply a person waits for after
    an ack can come a moment later. Python runs one thread at a time, so during a burst the work
    of earlier requests would otherwise take turns with the acks of later ones. Work starts once
    no request has been answered for ``quiet_s`` (a burst has gaps between its requests, shorter
    than that). Work that has waited its time limit starts anyway, but only one such piece at a
    time runs while requests keep coming: the replies trickle out and the acks stay on time.
    Past a second, hard limit a piece starts whatever runs, so no reply waits longer than that.
    """

    def __init__(self, quiet_s: float = 0.025) -> None:
        self.quiet_s = quiet_s
        self._cond = threading.Condition()
        self._acking = 0
        self._last_ack = float("-inf")
        self._overdue_running = False
        # One waiter watches the clock; the others queue on this lock, asleep, instead of all
        # waking at every ack of a burst to compete for the interpreter with the acks.
        self._watcher = threading.Lock()

    @contextlib.contextmanager
    def acking(self) -> Iterator[None]:
        with self._cond:
            self._acking += 1
        try:
            yield
        finally:
            with self._cond:
                self._acking -= 1
                self._last_ack = time.monotonic()
                if not self._acking:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def admitted(self, timeout_s: float, hard_timeout_s: float | None = None) -> Iterator[str]:
        """Hold a piece of work until it may run. Yields how it was let in: ``"quiet"``,
        ``"overdue"`` (the one overdue piece running while requests come) or ``"forced"`` (past
        ``hard_timeout_s``, 3 × ``timeout_s`` unless given)."""
        start = time.monotonic()
        hard = start + (hard_timeout_s if hard_timeout_s is not None else 3 * timeout_s)
        how = self._admit(start + timeout_s, hard)
        try:
            yield how
        finally:
            if how == "overdue":
                with self._cond:
                    self._overdue_running = False
                    self._cond.notify_all()

    def _admit(self, deadline: float, hard: float) -> str:
        if not self._watcher.acquire(timeout=max(0.0, hard - time.monotonic())):
            return "forced"
        try:
            with self._cond:
                while True:
                    now = time.monotonic()
                    quiet_left = 0.0 if self._acking else self.quiet_s - (now - self._last_ack)
                    if not self._acking and quiet_left <= 0:
                        return "quiet"
                    if now >= hard:
                        return "forced"
                    if now >= deadline and not self._overdue_running:
                        self._overdue_running = True
                        return "overdue"
                    # Until quiet, the deadline or (past it) the overdue piece's end, and the hard limit.
                    wake = hard if now >= deadline else deadline
                    self._cond.wait(min(wake - now, quiet_left) if not self._acking else wake - now)
        finally:
            self._watcher.release()
