"""Fixtures for the Fireworks simulator tests: a started simulator on a FakeClock and a raw client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.core.clock import FakeClock
from sims.fireworks import FireworksSimulator, SimConfig

MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"


class Api:
    """Plain HTTP against the simulator, for tests that need status codes and raw bodies."""

    def __init__(self, url: str, key: str = "sim-key", account: str = "demo") -> None:
        self.account = account
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)

    def call(self, method: str, path: str, json: Any = None, **params: Any) -> httpx.Response:
        """``path`` is relative to ``/v1/accounts/<account>`` unless it starts with ``/``."""
        if not path.startswith("/"):
            path = f"/v1/accounts/{self.account}/{path}"
        query = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()}
        return self.http.request(method, path, json=json, params=query)

    def create(self, dep_id: str, **body: Any) -> dict[str, Any]:
        """Create a shaped deployment of ``MODEL`` (overridable) and return it; asserts 200."""
        body = {"baseModel": MODEL, "deploymentShape": "default", **body}
        r = self.call("POST", "deployments", json=body, deploymentId=dep_id)
        assert r.status_code == 200, r.text
        return r.json()

    def dep(self, dep_id: str) -> dict[str, Any]:
        r = self.call("GET", f"deployments/{dep_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def infer(self, model: str) -> httpx.Response:
        return self.http.post("/inference/v1/completions", json={"model": model, "prompt": "hi there"})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_sim(clock):
    """Start simulators on the FakeClock (``make_sim(**SimConfig fields)``); all stopped at teardown."""
    started: list[FireworksSimulator] = []

    def make(**overrides: Any) -> tuple[FireworksSimulator, Api]:
        cfg = SimConfig(**{"create_seconds": 5.0, **overrides})
        sim = FireworksSimulator(cfg, clock=clock)
        sim.start()
        started.append(sim)
        return sim, Api(sim.url, cfg.api_key, cfg.account_id)

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def fw(make_sim) -> tuple[FireworksSimulator, Api]:
    return make_sim()
