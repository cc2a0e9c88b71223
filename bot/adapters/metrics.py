"""fwbot's own Prometheus metrics (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """fwbot's own Prometheus metrics (served at ``/metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("fwbot_slack_requests_total", "Slack requests by kind and status",
                                ["kind", "status"], registry=self.registry)
        self.operations = Counter("fwbot_operations_total", "Deployment operations by verb and result",
                                  ["verb", "result"], registry=self.registry)
        self.sync_seconds = Histogram("fwbot_sync_seconds", "Reconcile loop duration", registry=self.registry)
        self.job_runs = Counter("fwbot_job_runs_total", "Scheduled job runs by job and result",
                                ["job", "result"], registry=self.registry)
        self.leader = Gauge("fwbot_leader", "1 while this replica holds the leader lease and runs the scheduled work",
                            registry=self.registry)
        self.lease_takeovers = Counter("fwbot_lease_takeovers_total", "Times this replica took the leader lease",
                                       registry=self.registry)
