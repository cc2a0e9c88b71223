"""A whole fwbot on an injected clock, with the lifecycle jobs driven by the test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.core.clock import FakeClock
from bot.services.lifecycle import LifecycleEngine, SweepReport, TrafficScraper
from tests.harness import CHANNEL, Stack, message_text, start_stack

MODEL = "llama-v3p1-8b-instruct"
CREATE_S = 5.0
LIFECYCLE_ENV = {
    "FWBOT_WARN_BEFORE_SCALE_TO_ZERO": "20s",
    "FWBOT_WARN_BEFORE_DELETE": "24h,1h",
    "FWBOT_IDLE_PAYING_AFTER": "2h",
}


@dataclass
class Life:
    """The stack plus the two lifecycle jobs, run when the test says, on the test's clock."""

    stack: Stack
    clock: FakeClock
    tmp_path: Path
    env: dict
    engine: LifecycleEngine | None = None
    scraper: TrafficScraper | None = None

    def __post_init__(self) -> None:
        self.t0 = self.clock.now()
        self._wire_engine()

    def _wire_engine(self) -> None:
        self.scraper = TrafficScraper(self.stack.services)
        self.engine = LifecycleEngine(self.stack.services, scraper=self.scraper)

    @property
    def store(self):
        return self.stack.services.store

    @property
    def ws(self):
        return self.stack.ws

    def sdk(self):
        return self.stack.sdk()

    def deploy(self, dep_id: str, flags: str = "", user: str = "U_DEV", channel: str = CHANNEL) -> str:
        """Deploy and let it become READY (the bot sees it READY one second after Fireworks)."""
        self.stack.fw(f"deploy {MODEL} --deployment-id {dep_id} --accelerator-type h100 {flags}".strip(),
                      user=user, channel=channel)
        self.ws.wait_for(lambda: (r := self.store.deployment(dep_id)) is not None and r.thread_ts and r.state)
        self.clock.advance(CREATE_S + 1)
        self.stack.sync()
        assert self.store.deployment(dep_id).state == "READY"
        return dep_id

    def tick(self, seconds: float = 0) -> SweepReport:
        """Time passes; then the reconcile loop, a metrics scrape and a lifecycle sweep run."""
        self.clock.advance(seconds)
        self.stack.sync()
        self.scraper.scrape()
        return self.engine.sweep()

    def request(self, dep_id: str) -> None:
        """One inference request (traffic) to the deployment."""
        self.stack.services.gateway.complete(dep_id, "hello")

    def thread(self, dep_id: str) -> list:
        record = self.store.deployment(dep_id)
        return [m for m in self.ws.thread(record.channel, record.thread_ts) if m.ts != record.thread_ts]

    def warnings_in(self, dep_id: str) -> list:
        """Messages in the deployment's thread that are (or were) lifecycle warnings."""
        return [m for m in self.thread(dep_id) if is_warning(m)]

    def settle(self) -> None:
        """Let the listeners still at work (a click's last post) finish, so none outlives its bot."""
        self.stack.bot.app.listener_runner.listener_executor.shutdown(wait=True)

    def restart(self) -> None:
        """Stop the bot (its process is gone) and start a new one on the same file, Slack and Fireworks."""
        self.settle()
        self.stack.bot.stop()
        self.stack = start_stack(self.tmp_path, clock=self.clock, env=self.env, db_path=self.stack.db_path,
                                 sim=self.stack.sim, ws=self.stack.ws)
        self._wire_engine()

    def click(self, message, action_id: str, user: str = "U_DEV"):
        return self.ws.click(user, message.channel, message.ts, action_id)

    def latest(self, message):
        return self.ws.message(message.channel, message.ts)

    def ephemeral(self, needle: str, user: str = "U_DEV", channel: str = CHANNEL) -> str:
        return self.stack.wait_ephemeral(needle, user=user, channel=channel)


WARNING_ACTIONS = {"lc_keep_warm_1h", "lc_snooze", "lc_delete", "lc_transfer"}


def action_ids(message) -> set[str]:
    return {e.get("action_id") for b in (message.blocks or []) if b.get("type") == "actions"
            for e in b.get("elements", [])}


def is_warning(message) -> bool:
    """A warning, or a warning that was resolved (averted ones struck through; the others lead
    with what happened and quote the warning)."""
    text = message_text(message)
    return (bool(action_ids(message) & WARNING_ACTIONS) or ":white_check_mark: ~" in text
            or "The warning was:" in text)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_life(tmp_path, clock):
    lives: list[Life] = []

    def make(env: dict | None = None, sim_config: dict | None = None) -> Life:
        merged = {**LIFECYCLE_ENV, **(env or {})}
        stack = start_stack(tmp_path, clock=clock, env=merged,
                            sim_config={"relaxed": True, "create_seconds": CREATE_S, **(sim_config or {})})
        life = Life(stack, clock, tmp_path, merged)
        lives.append(life)
        return life

    yield make
    for life in lives:
        life.settle()
        life.stack.stop()


@pytest.fixture
def life(make_life) -> Life:
    return make_life()
