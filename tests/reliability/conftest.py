"""Shared pieces of the reliability suite: a long-lived stack per module and a log watcher."""

from __future__ import annotations

import logging
import threading

import pytest

from tests.harness import start_stack


class ErrorWatcher(logging.Handler):
    """Collects every ERROR (or worse) record of fwbot's and Bolt's loggers.

    An exception that reaches the central error handler, a listener Bolt could not run, or a
    request the front door could not dispatch all log at ERROR, so an empty list after a run
    means nothing went unhandled.
    """

    NAMES = ("fwbot", "slack_bolt", "slack_sdk")

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_:
            self.records.append(record)

    def take(self) -> list[str]:
        with self._lock_:
            out = [f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else f"{r.name}: {r.getMessage()}"
                   for r in self.records]
            self.records.clear()
        return out

    def __enter__(self) -> ErrorWatcher:
        for name in self.NAMES:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.NAMES:
            logging.getLogger(name).removeHandler(self)


class LogCapture(logging.Handler):
    """Every record of every logger, formatted with tracebacks, as an operator would read them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []
        self._lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a record that cannot format is itself worth seeing
            line = repr(record.__dict__)
        with self._lock_:
            self.lines.append(line)

    @property
    def text(self) -> str:
        with self._lock_:
            return "\n".join(self.lines)


@pytest.fixture
def errors():
    with ErrorWatcher() as watcher:
        yield watcher


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory):
    """One bot, stand-in and simulator for a whole module: fuzz cases must be cheap."""
    from tests.harness import clean_env

    clean_env()
    s = start_stack(tmp_path_factory.mktemp("stack"), sim_config={"create_seconds": 1.0})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def fuzz(module_stack):
    """A fuzzer over the module's stack; at the end, nothing may have been logged at ERROR."""
    import time

    from tests.reliability.fuzzing import FIGURES, Fuzzer

    with ErrorWatcher() as watcher:
        fuzzer = Fuzzer(module_stack, watcher)
        yield fuzzer
        time.sleep(0.5)  # let work started by the last cases finish before the stack goes away
        fuzzer.pool.shutdown()
        assert watcher.take() == []
    print(f"\nfuzz cases run: {FIGURES}")
