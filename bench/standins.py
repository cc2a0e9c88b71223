"""The outside world of a sweep benchmark, in a process of its own: a seeded Fireworks simulator
and a Slack stand-in.

Kept out of the measured process so that the simulator's memory and CPU are not charged to
fwbot. Driven over stdin/stdout, one JSON object per line:

    {"cmd": "freeze"}   build the memoised listing and metrics (see FrozenSimState)
    {"cmd": "thaw"}     back to the plain simulator
    {"cmd": "mark"}     start counting Fireworks requests and Slack calls from here
    {"cmd": "stats"}    what was counted since the mark
    {"cmd": "stop"}

Started as ``python bench/standins.py N``; the first line it prints is
``{"fireworks": url, "slack_api": url, "now": iso}``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleet import BOT_TOKEN, CHANNELS, SIGNING_SECRET, T0, USERS, fleet  # noqa: E402
from bot.core.clock import FakeClock  # noqa: E402
from sims.fireworks import FireworksSimulator, SimConfig  # noqa: E402
from sims.fireworks.state import SimState  # noqa: E402
from sims.slack import SlackWorkspace  # noqa: E402

LIST_PAGE_SIZE = 200


class FrozenSimState(SimState):
    """The simulator with its clock stopped and its answers to the sweep's reads memoised.

    The simulator renders every deployment on every page it serves (O(N) per page, O(N²/200)
    per listing) and re-scans every deployment for due events on every request. At 10k
    deployments that is tens of seconds of simulator time per sweep, which would swamp what is
    measured here: fwbot's own cost. While frozen the clock does not move and nothing changes,
    so the exact pages and metrics text the plain simulator produced at freeze time are served
    again. A request that was not memoised falls through to the plain simulator.
    """

    frozen = False
    pages: dict[tuple, dict[str, Any]]
    metrics: str | None = None
    hits = 0
    misses = 0

    def freeze(self) -> None:
        self.advance(self.now_fn() if self.now_fn else self.now)
        self.pages = {}
        token = ""
        for _ in range(100_000):
            query = {"pageSize": [str(LIST_PAGE_SIZE)], "showDeleted": ["true"]}
            if token:
                query["pageToken"] = [token]
            page = super().list_deployments(query)
            self.pages[_key(query)] = page
            token = page.get("nextPageToken") or ""
            if not token:
                break
        self.metrics = super().metrics_text(self.now)
        self.frozen = True

    def thaw(self) -> None:
        self.frozen = False
        self.pages, self.metrics = {}, None

    def advance(self, now: float) -> None:
        if not self.frozen:
            super().advance(now)

    def list_deployments(self, query: dict[str, list[str]]) -> dict[str, Any]:
        if self.frozen and (page := self.pages.get(_key(query))) is not None:
            self.hits += 1
            return page
        self.misses += 1
        return super().list_deployments(query)

    def metrics_text(self, now: float) -> str:
        if self.frozen and self.metrics is not None:
            self.hits += 1
            return self.metrics
        self.misses += 1
        return super().metrics_text(now)


def _key(query: dict[str, list[str]]) -> tuple:
    return tuple(sorted((k, tuple(v)) for k, v in query.items()))


def start(n: int) -> tuple[FireworksSimulator, SlackWorkspace]:
    clock = FakeClock(T0)
    config = SimConfig(account_id="demo", api_key="sim-key", seed=1)
    sim = FireworksSimulator(config, clock=clock)
    state = FrozenSimState(config)
    state.now_fn = sim.now
    sim.state = state
    created = (T0 - timedelta(hours=3)).timestamp()
    with state.lock:
        for i, dep in enumerate(fleet(n)):
            body = {"baseModel": "accounts/fireworks/models/llama-v3p1-8b-instruct",
                    "minReplicaCount": dep.min_replicas, "maxReplicaCount": 2,
                    "acceleratorType": "NVIDIA_H100_80GB", "acceleratorCount": 1}
            # Creation order is the listing order; a millisecond apart keeps createTime distinct.
            state.create_deployment(body, {"deploymentId": [dep.id], "disableAutoDeploy": ["true"]},
                                    created + i / 1000)
        state.advance(sim.now())
    sim.start(host="127.0.0.1", port=0)

    ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    ws.start(host="127.0.0.1", port=0)
    for uid in USERS:
        ws.add_user(uid, uid.lower(), real_name=uid, tz="UTC")
    for channel in CHANNELS:
        ws.add_channel(channel, channel.lower(), members=list(USERS))
    return sim, ws


def main() -> int:
    n = int(sys.argv[1])
    sim, ws = start(n)
    state = sim.state
    assert isinstance(state, FrozenSimState)
    print(json.dumps({"fireworks": sim.url, "slack_api": ws.api_url, "now": T0.isoformat()}), flush=True)
    requests_mark, calls_mark = 0, 0
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg.get("cmd")
        reply: dict[str, Any] = {"ok": True}
        if cmd == "freeze":
            with state.lock:
                state.freeze()
            reply["pages"] = len(state.pages)
        elif cmd == "thaw":
            with state.lock:
                state.thaw()
        elif cmd == "mark":
            with state.lock:
                requests_mark = len(state.requests)
                state.hits = state.misses = 0
            calls_mark = len(ws.calls)
        elif cmd == "stats":
            with state.lock:
                requests = state.requests[requests_mark:]
                reply["memo_hits"], reply["memo_misses"] = state.hits, state.misses
            calls = ws.calls[calls_mark:]
            reply["fireworks"] = dict(Counter(f"{r.method} {_route(r.path)}" for r in requests))
            reply["fireworks_failed"] = sum(1 for r in requests if r.status >= 400 or r.status <= 0)
            reply["slack"] = dict(Counter(c.method for c in calls))
            reply["slack_channels"] = sorted({str(c.params.get("channel")) for c in calls if c.params.get("channel")})
        elif cmd == "stop":
            print(json.dumps(reply), flush=True)
            break
        else:
            reply = {"ok": False, "error": f"unknown command {cmd!r}"}
        print(json.dumps(reply), flush=True)
    sim.stop()
    ws.stop()
    return 0


def _route(path: str) -> str:
    """The path with the account and resource ids taken out, so calls group by endpoint."""
    parts = path.split("/")
    if len(parts) > 4 and parts[1] == "v1" and parts[2] == "accounts":
        parts[3] = "{account}"
        if len(parts) > 5:
            parts[5] = "{id}" + (":" + parts[5].split(":", 1)[1] if ":" in parts[5] else "")
    return "/".join(parts)


if __name__ == "__main__":
    sys.exit(main())
