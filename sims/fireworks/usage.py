"""What the account's traffic and replicas add up to: the metrics endpoint and billingUsage."""

from __future__ import annotations

import math
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import billing, metrics
from .records import Account
from .wire import ApiError, first, invalid, parse_ts


class UsageMixin(Account):
    """Metrics and billing usage (part of SimState)."""

    def metrics_text(self, now: float) -> str:
        """GET metrics, rate-limited per account (contract §2.8)."""
        while self.metrics_calls and self.metrics_calls[0] <= now - 60:
            self.metrics_calls.popleft()
        if len(self.metrics_calls) >= self.config.metrics_per_minute:
            retry = max(1, math.ceil(self.metrics_calls[0] + 60 - now))
            raise ApiError("RESOURCE_EXHAUSTED",
                           f"metrics are limited to {self.config.metrics_per_minute} requests per minute",
                           retry_after=retry)
        self.metrics_calls.append(now)
        rows = []
        for d in sorted(self.deployments.values(), key=lambda x: x.seq):
            if d.replicas <= 0:
                continue  # assumption: only deployments with running replicas are exported
            labels = {"base_model": d.spec["baseModel"], "deployment": d.name,
                      "deployment_account": self.account, "deployment_id": d.id}
            rows.append((labels, list(self.traffic.get(d.name, ()))))
        return metrics.render(rows, now)

    def billing_usage(self, query: dict[str, list[str]], now: float) -> dict[str, Any]:
        """GET billingUsage: daily dedicated accelerator-seconds from the replica timeline."""
        start_s, end_s = first(query, "startTime"), first(query, "endTime")
        if not start_s or not end_s:
            raise invalid("start_time and end_time are required")
        start, end = parse_ts(start_s, "start_time"), parse_ts(end_s, "end_time")
        if end <= start:
            raise invalid("end_time must be after start_time")
        if end - start > 31 * 86400:
            raise invalid("end_time must not be more than 31 days after start_time")
        # An enum query parameter is parsed by name; an empty one names nothing and is refused.
        usage_type = first(query, "usageType", "USAGE_TYPE_UNSPECIFIED")
        if usage_type not in ("USAGE_TYPE_UNSPECIFIED", "SERVERLESS", "DEDICATED_DEPLOYMENT", "TRAINING"):
            raise invalid(f"invalid usage_type {usage_type!r}")
        tz_name = first(query, "timezone") or "UTC"
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise invalid(f"invalid timezone {tz_name!r}") from None
        filters: dict[str, list[str]] = {}
        for key, values in query.items():
            m = re.fullmatch(r"filter\[([^\]]+)\]\[values\](?:\[\d*\])?", key)
            if m:
                filters.setdefault(m.group(1), []).extend(values)
        dedicated: list[dict[str, Any]] = []
        if usage_type in ("USAGE_TYPE_UNSPECIFIED", "DEDICATED_DEPLOYMENT"):
            dedicated = billing.dedicated_costs(list(self.ledgers.values()), start, end, now, tz,
                                                query.get("groupBy", []), filters)
        # Serverless inference is not simulated, so its stream is always empty.
        return {"serverlessCosts": [], "dedicatedCosts": dedicated}
