"""The account metrics endpoint: Prometheus text with the names and labels of contract §2.8."""

from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW = 60.0  # the real endpoint reports per-second rates over 1-minute windows
LATENCY_BUCKETS = (50, 150, 300, 500, 750, 1000, 1500, 3000, 5000, 7500, 10000)
TOKEN_BUCKETS = (16, 64, 256, 1024, 4096, 16384)


@dataclass(frozen=True)
class RequestRecord:
    """One inference request as the metrics pipeline saw it."""

    t: float
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    http_code: int


def _labels(base: dict[str, str], **extra: str) -> str:
    merged = {**base, **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in merged.items()) + "}"


def _histogram(lines: list[str], name: str, labels: dict[str, str], values: list[float],
               bounds: tuple[int, ...]) -> None:
    for le in bounds:
        rate = sum(1 for v in values if v <= le) / WINDOW
        lines.append(f"{name}{_labels(labels, le=str(le))} {rate:g}")
    lines.append(f'{name}{_labels(labels, le="+Inf")} {len(values) / WINDOW:g}')


def render(deployments: list[tuple[dict[str, str], list[RequestRecord]]], now: float) -> str:
    """Exposition text for ``(labels, recent requests)`` of each deployment to report."""
    families: dict[str, list[str]] = {
        "request_counter_total:sum_by_deployment": [],
        "requests_error_total:sum_by_deployment": [],
        "tokens_prompt_total:sum_by_deployment": [],
        "tokens_cached_prompt_total:sum_by_deployment": [],
        "latency_overall_ms_bucket:sum_by_deployment": [],
        "latency_to_first_token_ms_bucket:sum_by_deployment": [],
        "tokens_generated_per_request_bucket:sum_by_deployment": [],
        "tokens_prompt_per_request_bucket:sum_by_deployment": [],
        "requests_coordinator_concurrent_count:avg_by_deployment": [],
    }
    for labels, records in deployments:
        recent = [r for r in records if now - WINDOW < r.t <= now]
        ok = [r for r in recent if r.http_code < 400]
        families["request_counter_total:sum_by_deployment"].append(
            f"request_counter_total:sum_by_deployment{_labels(labels)} {len(recent) / WINDOW:g}")
        codes = sorted({r.http_code for r in recent if r.http_code >= 400})
        for code in codes:
            n = sum(1 for r in recent if r.http_code == code)
            families["requests_error_total:sum_by_deployment"].append(
                f"requests_error_total:sum_by_deployment{_labels(labels, http_code=str(code))} {n / WINDOW:g}")
        prompt = sum(r.prompt_tokens for r in ok)
        families["tokens_prompt_total:sum_by_deployment"].append(
            f"tokens_prompt_total:sum_by_deployment{_labels(labels)} {prompt / WINDOW:g}")
        families["tokens_cached_prompt_total:sum_by_deployment"].append(
            f"tokens_cached_prompt_total:sum_by_deployment{_labels(labels)} 0")
        latencies = [r.latency_ms for r in ok]
        _histogram(families["latency_overall_ms_bucket:sum_by_deployment"],
                   "latency_overall_ms_bucket:sum_by_deployment", labels, latencies, LATENCY_BUCKETS)
        _histogram(families["latency_to_first_token_ms_bucket:sum_by_deployment"],
                   "latency_to_first_token_ms_bucket:sum_by_deployment", labels,
                   [v / 2 for v in latencies], LATENCY_BUCKETS)
        _histogram(families["tokens_generated_per_request_bucket:sum_by_deployment"],
                   "tokens_generated_per_request_bucket:sum_by_deployment", labels,
                   [float(r.completion_tokens) for r in ok], TOKEN_BUCKETS)
        _histogram(families["tokens_prompt_per_request_bucket:sum_by_deployment"],
                   "tokens_prompt_per_request_bucket:sum_by_deployment", labels,
                   [float(r.prompt_tokens) for r in ok], TOKEN_BUCKETS)
        # Little's law: mean concurrency = arrival rate x mean time in the system.
        concurrency = (len(ok) / WINDOW) * (sum(latencies) / 1000.0 / len(ok)) if ok else 0.0
        families["requests_coordinator_concurrent_count:avg_by_deployment"].append(
            f"requests_coordinator_concurrent_count:avg_by_deployment{_labels(labels)} "
            f"{0 if math.isclose(concurrency, 0) else round(concurrency, 6):g}")
    out: list[str] = []
    for name, lines in families.items():
        if not lines:
            continue
        # These are recording-rule outputs (rates of counters and buckets), i.e. gauges; typing them
        # so keeps strict parsers from expecting _sum/_count series next to the buckets.
        out.append(f"# TYPE {name} gauge")
        out.extend(lines)
    return "\n".join(out) + "\n"
