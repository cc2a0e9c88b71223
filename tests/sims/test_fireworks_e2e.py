"""End to end on the real clock: relaxed windows, a 5 s scale-to-zero, and the `fwbot sim` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fireworks
import httpx
import pytest

from sims.fireworks import FireworksSimulator, SimConfig
from tests.sims.conftest import MODEL, Api

REPO = Path(__file__).resolve().parents[2]


def _wait_for(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.mark.slow
def test_scale_to_zero_cold_start_metrics_and_billing_on_the_real_clock():
    sim = FireworksSimulator(SimConfig(relaxed=True, create_seconds=1.0))
    sim.start()
    try:
        client = fireworks.Fireworks(api_key="sim-key", account_id="demo", base_url=sim.url, max_retries=0)
        api = Api(sim.url)
        created = time.monotonic()
        client.deployments.create(base_model=MODEL, deployment_id="e2e", deployment_shape="default",
                                  autoscaling_policy={"scale_to_zero_window": "5s"})
        _wait_for(lambda: client.deployments.get("e2e").state == "READY", 3)
        ready = time.monotonic()
        assert ready - created < 2.5
        assert client.deployments.get("e2e").replica_count == 1
        _wait_for(lambda: client.deployments.get("e2e").replica_count == 0, 7)
        assert 4.0 <= time.monotonic() - ready <= 6.5
        assert client.deployments.get("e2e").state == "READY"

        # One request wakes it: 503 while it starts, served once the replica is up.
        first = api.infer("accounts/demo/deployments/e2e")
        assert first.status_code == 503 and first.json()["error"]["code"] == "DEPLOYMENT_SCALING_UP"
        _wait_for(lambda: client.deployments.get("e2e").replica_count == 1, 3)
        for _ in range(3):
            assert api.infer("accounts/demo/deployments/e2e").status_code == 200

        text = api.call("GET", "metrics").text
        line = next(x for x in text.splitlines()
                    if x.startswith("request_counter_total:sum_by_deployment{") and 'deployment_id="e2e"' in x)
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(4 / 60)  # 1 cold + 3 served, per second

        now = datetime.now(UTC)
        usage = api.call("GET", "billingUsage", startTime=(now - timedelta(days=1)).isoformat(),
                         endTime=(now + timedelta(days=1)).isoformat()).json()
        seconds = sum(int(r["acceleratorSeconds"]) for r in usage["dedicatedCosts"])
        ledger = sim.state.ledgers["accounts/demo/deployments/e2e"].points
        # Charged: ~5 s before scaling to zero plus the time since the cold start, not start-up.
        up = sum((b[0] - a[0]) * a[1] for a, b in zip(ledger, ledger[1:], strict=False)) + \
            (sim.now() - ledger[-1][0]) * ledger[-1][1]
        assert seconds == round(up)
        assert 4 <= seconds <= 8
        wall = time.monotonic() - created
        assert seconds < wall - 1.5  # the two start-ups (1 s each) were not charged
    finally:
        sim.stop()


@pytest.mark.slow
def test_fwbot_sim_command_serves_until_sigterm(tmp_path):
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.app.cli", "sim", "--port", "0", "--relaxed", "--create-seconds", "0.2",
         "--auto-delete-after", "1h", "--state-file", str(state)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("fireworks simulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        api = Api(url)
        created = api.create("cli", autoscalingPolicy={"scaleToZeroWindow": "2s"})
        assert created["state"] == "CREATING"
        deadline = datetime.fromisoformat(created["createTime"].replace("Z", "+00:00")) + timedelta(hours=1)
        assert datetime.fromisoformat(created["deleteTime"].replace("Z", "+00:00")) == deadline
        _wait_for(lambda: api.dep("cli")["state"] == "READY", 3)
        r = httpx.post(url + "/_sim/clock", json={"advanceSeconds": 1}, headers={"Authorization": "Bearer sim-key"})
        assert r.status_code == 400  # no FakeClock in a real process
        assert state.is_file()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
