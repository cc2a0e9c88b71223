"""Dedicated-deployment usage: accelerator-seconds integrated from the replica timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .wire import ts

DEFAULT_GROUP_BY = ("deployment_name", "accelerator_type")


@dataclass
class Ledger:
    """Everything billing needs about one deployment, kept after the deployment is purged.

    ``points`` are change points ``[time, replicas, accelerator_type, accelerator_count]``; each
    holds until the next one (the last one until now).
    """

    name: str
    base_model: str
    placement: str
    annotations: dict[str, str] = field(default_factory=dict)
    points: list[list[Any]] = field(default_factory=list)

    def record(self, t: float, replicas: int, accelerator_type: str, accelerator_count: int) -> None:
        """Append a change point unless nothing changed."""
        point = [t, replicas, accelerator_type, accelerator_count]
        if self.points and self.points[-1][1:] == point[1:]:
            return
        if self.points and self.points[-1][0] == t:
            self.points[-1] = point  # several changes at one instant: only the last one lasts
            return
        self.points.append(point)

    def accelerator_seconds(self, start: float, end: float) -> dict[str, float]:
        """GPU-seconds per accelerator type within ``[start, end)``."""
        out: dict[str, float] = {}
        for i, (t, replicas, accel, count) in enumerate(self.points):
            seg_end = self.points[i + 1][0] if i + 1 < len(self.points) else end
            lo, hi = max(t, start), min(seg_end, end)
            if hi > lo and replicas > 0:
                out[accel] = out.get(accel, 0.0) + (hi - lo) * replicas * count
        return out


def local_days(start: float, end: float, tz: ZoneInfo) -> list[tuple[float, float]]:
    """The local calendar days (as UTC instants) that overlap ``[start, end)``.

    # assumption: "only the date part is used" is read as whole local days; a day partly inside
    # the range is reported in full (up to now), so "today so far" needs no end-of-day endTime.
    """
    day = datetime.fromtimestamp(start, tz).date()
    days = []
    while True:
        lo = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
        if lo >= end:
            break
        nxt = day + timedelta(days=1)
        hi = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp()
        days.append((lo, hi))
        day = nxt
    return days


def _dimension(ledger: Ledger, dim: str, accel: str) -> str:
    if dim == "deployment_name":
        return ledger.name
    if dim == "accelerator_type":
        return accel
    return ledger.annotations.get(dim.removeprefix("annotations."), "")


def _group_key(dim: str) -> str:
    # The OAS names annotation groups by their bare key: team, project, environment.
    return dim.removeprefix("annotations.")


def _matches(ledger: Ledger, accel: str, filters: dict[str, list[str]]) -> bool:
    for dim, values in filters.items():
        if dim == "deployment_name":
            bare = ledger.name.rsplit("/", 1)[-1]
            if ledger.name not in values and bare not in values:
                return False
        elif (dim == "accelerator_type" or dim.startswith("annotations.")) and \
                _dimension(ledger, dim, accel) not in values:
            return False
        # Dimensions of other usage streams (model_name, api_key_id, ...) do not apply here.
    return True


def dedicated_costs(
    ledgers: list[Ledger],
    start: float,
    end: float,
    now: float,
    tz: ZoneInfo,
    group_by: list[str],
    filters: dict[str, list[str]],
) -> list[dict[str, Any]]:
    """One ``dedicatedCosts`` row per (group, local day) with non-zero usage."""
    dims = [d for d in group_by if d in DEFAULT_GROUP_BY or d.startswith("annotations.")]
    if not group_by:
        dims = list(DEFAULT_GROUP_BY)
    rows = []
    for lo, hi in local_days(start, end, tz):
        window_end = min(hi, now)
        if window_end <= lo:
            continue
        totals: dict[tuple[str, ...], float] = {}
        exemplar: dict[tuple[str, ...], Ledger] = {}
        for ledger in ledgers:
            for accel, seconds in ledger.accelerator_seconds(lo, window_end).items():
                if not _matches(ledger, accel, filters):
                    continue
                key = tuple(_dimension(ledger, d, accel) for d in dims)
                totals[key] = totals.get(key, 0.0) + seconds
                exemplar.setdefault(key, ledger)
        for key in sorted(totals):
            seconds = int(round(totals[key]))
            if seconds <= 0:
                continue  # assumption: days without running replicas produce no row
            group = {_group_key(d): v for d, v in zip(dims, key, strict=True)}
            by_deployment = "deployment_name" in dims
            ledger = exemplar[key]
            # assumption: deploymentId is the bare id and group.deployment_name the full name;
            # dimensions not grouped by are empty strings.
            rows.append({
                "deploymentId": ledger.name.rsplit("/", 1)[-1] if by_deployment else "",
                "acceleratorType": group.get("accelerator_type", ""),
                "acceleratorSeconds": str(seconds),
                "startTime": ts(lo),
                "endTime": ts(hi),
                "baseModel": ledger.base_model if by_deployment else "",
                "usageType": "DEDICATED_DEPLOYMENT",
                "placement": ledger.placement if by_deployment else "",
                "group": group,
            })
    return rows
