"""Scheduled jobs of approvals: one reminder, expiry, closing requests nobody could decide, and
finishing approved runs a crash cut short.

Each step is keyed by a compare-and-set on the request's row (``reminded_at IS NULL``, ``status =
'pending'``, the run's start time), so running the sweep twice, or on two threads, or after a
restart, sends nothing twice and runs nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from bot.adapters.outbox import Target
from bot.core.approvals import CANCELLED, EXPIRED, PENDING, expiry_due, recovery_due, reminder_due
from bot.jobs.base import Job
from bot.services.approvals import audit, carry_out, directory_for, report
from bot.services.container import Services
from bot.ui import approvals as ui

log = logging.getLogger("fwbot.approvals")

SWEEP_INTERVAL_S = 60


@dataclass
class ApprovalSweep:
    """What one sweep did (tokens), for logs and tests."""

    reminded: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    dead_ends: list[str] = field(default_factory=list)


def send_reminders(services: Services) -> list[str]:
    """Remind the approvers, once, about requests half way to expiry."""
    now, done = services.clock.now(), []
    for record in services.store.approvals(status=PENDING):
        if not reminder_due(status=record.status, created_at=record.created_at, expires=record.expires_at,
                            reminded_at=record.reminded_at, now=now):
            continue
        key = f"approval-reminder:{record.id}"
        with services.store.db.write():
            if not services.store.mark_approval_reminded(record.id, now):
                continue
            if record.message_channel and record.message_ts:
                services.outbox.enqueue(key, "note", [
                    Target("request thread", channel=record.message_channel, thread_ts=record.message_ts),
                    Target("approval channel", channel=record.message_channel)],
                    ui.reminder_message(record, approvers=services.settings.approvers, simulated=services.simulated))
        done.append(record.id)
        services.outbox.deliver(key)
    return done


def expire_requests(services: Services) -> list[str]:
    """Expire requests nobody decided in time; tell the approvers (in the thread) and the requester."""
    now, done = services.clock.now(), []
    for record in services.store.approvals(status=PENDING):
        if not expiry_due(status=record.status, expires=record.expires_at, now=now):
            continue
        if not services.store.decide_approval(record.id, status=EXPIRED, by="fwbot", now=now, check_expiry=False):
            continue  # decided meanwhile
        expired = services.store.approval(record.id)
        assert expired is not None
        done.append(record.id)
        audit(services, "fwbot", "approval expire", "ok", expired,
              detail=f"{expired.kind} requested by {expired.requester} expired without a decision")
        report(services, expired, tell_requester=True)
        if expired.message_channel and expired.message_ts:
            services.outbox.send(f"approval-expired:{expired.id}", "note", [
                Target("request thread", channel=expired.message_channel, thread_ts=expired.message_ts),
                Target("approval channel", channel=expired.message_channel)],
                ui.expired_notice(expired, approvers=services.settings.approvers, simulated=services.simulated))
    return done


def close_dead_ends(services: Services) -> list[str]:
    """Cancel pending requests nobody but their requester could decide any more (the approver or
    admin lists changed since they were asked), at once rather than at expiry; the requester is
    told why and what to do. A group whose members could not be read counts as someone."""
    done: list[str] = []
    pending = services.store.approvals(status=PENDING)
    if not pending:
        return done
    directory = directory_for(services)
    deciders = {r: directory.deciders(r) for r in {record.requester for record in pending}}
    admins = frozenset(services.settings.admins)
    for record in pending:
        found = deciders[record.requester]
        stand_ins = admins - {record.requester} if record.request.get("admin_fallback") else frozenset()
        if found.users or found.unknown or stand_ins:
            continue
        reason = ("nobody but the requester can approve it any more (no other approver or admin is configured); "
                  "ask whoever runs fwbot to add one, then ask again")
        if not services.store.decide_approval(record.id, status=CANCELLED, by="fwbot", now=services.clock.now(),
                                              reason=reason, check_expiry=False):
            continue
        closed = services.store.approval(record.id)
        assert closed is not None
        done.append(record.id)
        audit(services, "fwbot", "approval cancel", "ok", closed,
              detail=f"{closed.kind} requested by {closed.requester}: {reason}")
        report(services, closed, tell_requester=True)
    return done


def recover_approved(services: Services, metrics, *, booted_at: datetime) -> list[str]:
    """Run approved requests whose run never finished: its runner died (a restart, a replica
    gone) or outlived its lease. A run another replica is still carrying out is left to it.

    The claim is a compare-and-set on the run's start time, so exactly one runner takes each.
    """
    now, done = services.clock.now(), []
    unfinished = [r for r in services.store.approvals(status="approved") if r.result is None]
    present = set(services.store.present_replicas(now)) if unfinished else set()
    for record in unfinished:
        runner = record.run_by
        gone = None if runner is None or runner == services.replica else runner not in present
        if not recovery_due(status=record.status, executed_at=record.executed_at, result=record.result,
                            booted_at=booted_at, now=now, runner_gone=gone):
            continue
        if not services.store.restart_approved_run(record.id, started=record.executed_at, now=now,
                                                   runner=services.replica):
            continue
        log.info("finishing approved %s %s (approval %s) after an interrupted run", record.kind,
                 record.deployment_id, record.id)
        carry_out(services, metrics, record.id)
        done.append(record.id)
    return done


def sweep(services: Services, metrics, *, booted_at: datetime) -> ApprovalSweep:
    """One pass of everything time-driven about approvals."""
    return ApprovalSweep(
        recovered=recover_approved(services, metrics, booted_at=booted_at),
        expired=expire_requests(services),
        dead_ends=close_dead_ends(services),
        reminded=send_reminders(services),
    )


def jobs(services: Services, metrics) -> list[Job]:
    """The approval sweep; it runs at start too, so a restart finishes interrupted runs at once."""
    booted_at = services.clock.now()
    return [Job("approvals", lambda: sweep(services, metrics, booted_at=booted_at),
                trigger_args={"seconds": SWEEP_INTERVAL_S})]
