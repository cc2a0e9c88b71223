"""Done-when: after a known replica timeline, /fw cost agrees with the simulator's billingUsage.

The simulator and the bot share one FakeClock. The test syncs exactly at the simulator's change
times (creation done, scale-up done, scale-down, scale-to-zero, cold start), scrapes the metrics
endpoint as the lifecycle scraper does, and sends real inference requests over HTTP to create
serving time. Everything is in H100 GPU-seconds: 2 GPUs per replica.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.core.clock import FakeClock
from bot.core.costs import local_midnight
from bot.services import costs as cost_data
from sims.fireworks.metrics import WINDOW
from tests.harness import start_stack

DEP = "cost-e2e"
T0 = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)  # a Wednesday
GPUS = 2
PRICE = 8.0  # H100 list price, $/GPU-hour


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def stack(tmp_path, clock):
    s = start_stack(tmp_path, clock=clock, sim_config={"create_seconds": 60.0})
    yield s
    s.stop()


def infer(stack) -> int:
    r = httpx.post(f"{stack.sim.url}/inference/v1/completions",
                   json={"model": f"accounts/demo/deployments/{DEP}", "prompt": "how much", "max_tokens": 8},
                   headers={"Authorization": "Bearer sim-key"}, timeout=10)
    return r.status_code


def sync_and_scrape(stack) -> None:
    """One reconcile pass and one metrics scrape, both at the clock's now."""
    stack.sync()
    store = stack.services.store
    rates = stack.services.gateway.request_rates()
    now = stack.services.clock.now()
    for record in store.deployments():
        # A deployment with no replicas is not in the metrics at all: no requests.
        store.record_traffic(record.id, now, rates.get(record.id, 0.0))


def at(clock, t: float) -> None:
    clock.set(T0 + timedelta(seconds=t))


def sim_idle_replica_seconds(stack, served: list[float]) -> tuple[float, float]:
    """From the simulator's own replica ledger: (replica-seconds, idle replica-seconds).

    Idle = replica time outside [first served request, last one + the metrics window), the span
    in which the metrics endpoint reported requests. ``served``: when requests got a 200.
    """
    ledger = stack.sim.state.ledgers[f"accounts/demo/deployments/{DEP}"]
    t_end = (stack.services.clock.now()).timestamp()
    busy = (min(served), max(served) + WINDOW)
    total = idle = 0.0
    for i, (t, replicas, _acc, _count) in enumerate(ledger.points):
        nxt = ledger.points[i + 1][0] if i + 1 < len(ledger.points) else t_end
        total += (nxt - t) * replicas
        overlap = max(0.0, min(nxt, busy[1]) - max(t, busy[0]))
        idle += (nxt - t - overlap) * replicas
    return total, idle


def test_cost_matches_billing_usage_and_idle_time(stack, clock):
    stack.fw(f"deploy llama-v3p1-8b-instruct --deployment-id {DEP} --accelerator-type h100 "
             f"--accelerator-count {GPUS} --min-replica-count 0 --max-replica-count 2 --scale-to-zero-window 10m")
    stack.ws.wait_for(lambda: (r := stack.services.store.deployment(DEP)) is not None and r.state is not None)
    policy = stack.sdk().deployments.get(DEP).autoscaling_policy
    scale_down = float(policy.scale_down_window.rstrip("s"))
    to_zero = float(policy.scale_to_zero_window.rstrip("s"))
    assert to_zero == 600

    at(clock, 60)  # READY with one replica
    sync_and_scrape(stack)
    served = []
    for t in range(300, 1201, 30):  # a request every 30 s from t=300 to t=1200
        at(clock, t)
        assert infer(stack) == 200
        served.append(clock.now().timestamp())
        sync_and_scrape(stack)
    at(clock, 1200 + WINDOW)  # the metrics window has passed the last request: idle again
    sync_and_scrape(stack)

    at(clock, 1500)
    stack.fw(f"scale {DEP} 2")
    stack.wait_ephemeral("scaled")
    sync_and_scrape(stack)
    at(clock, 1560)  # the second replica is up after create_seconds
    sync_and_scrape(stack)
    at(clock, 1500 + scale_down)  # autoscaler back to one
    sync_and_scrape(stack)
    at(clock, 1560 + to_zero)  # no traffic for the scale-to-zero window
    sync_and_scrape(stack)
    assert stack.sdk().deployments.get(DEP).replica_count == 0

    at(clock, 3000)  # a request wakes it: 503 now, one replica after the cold start
    assert infer(stack) == 503
    sync_and_scrape(stack)
    at(clock, 3060)
    sync_and_scrape(stack)
    at(clock, 3060 + to_zero)
    sync_and_scrape(stack)
    at(clock, 4000)
    sync_and_scrape(stack)

    # Hand-computed: replica-seconds 1500×1 + 540×2 + 60×1 + 600×1 = 3240; serving [300, 1260).
    replica_s = 1500 + (1500 + scale_down - 1560) * 2 + (1560 + to_zero - 1500 - scale_down) + to_zero
    assert replica_s == 3240
    serving_s = 1200 + WINDOW - 300
    sim_total, sim_idle = sim_idle_replica_seconds(stack, served)
    assert (sim_total, sim_idle) == (replica_s, replica_s - serving_s)

    day = T0.date()
    billed = sum(float(r["acceleratorSeconds"]) for r in stack.services.gateway.billing_usage(
        local_midnight(day, UTC), local_midnight(day + timedelta(days=1), UTC)) if r["deploymentId"] == DEP)
    assert billed == replica_s * GPUS

    ours = cost_data.costs_between(stack.services, local_midnight(day, UTC), clock.now())[DEP]
    assert abs(ours.gpu_seconds - billed) / billed <= 0.01
    assert ours.idle_gpu_seconds == pytest.approx(sim_idle * GPUS)
    assert ours.serving_gpu_seconds == pytest.approx(serving_s * GPUS)

    # And what a person sees.
    stack.fw("cost today")
    text = stack.wait_ephemeral("billingUsage")
    counted = float(re.search(r"counted here ([\d,]+) GPU-s", text)[1].replace(",", ""))
    reported = float(re.search(r"billingUsage\* \(authoritative, whole days\): ([\d,]+) GPU-s", text)[1]
                     .replace(",", ""))
    assert reported == billed
    assert abs(counted - reported) / reported <= 0.01
    assert "difference +0.0%" in text
    total_usd = replica_s * GPUS / 3600 * PRICE  # $14.40
    idle_usd = (replica_s - serving_s) * GPUS / 3600 * PRICE  # $10.13
    assert f"*Total*\n${total_usd:,.2f}" in text
    assert f"*Idle*\n${idle_usd:,.2f} ({idle_usd / total_usd * 100:.0f}%)" in text
    assert f"`{DEP}`" in text and "GPU-h" in text
