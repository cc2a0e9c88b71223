"""The outbox: every message fwbot starts on its own is durable, paced, confirmed and never dropped.

An effect is recorded (``storage/effects.py``) with, or before, the intent it carries out, then
delivered: at once when its channel's 1-per-second slot is free, otherwise by the delivery
thread when the slot comes, so no shared worker ever sleeps on a busy channel. Delivery

- tries the targets in order (a deployment's thread → its channel → the owner by DM → the alert
  channel) when Slack refuses one for good (``not_in_channel``, ``is_archived``, …), counting
  each fallback and each message no target would take in ``/metrics``;
- retries transient failures (5xx, timeouts, rate limits past the client's own retries) with
  backoff, and after :data:`MAX_ATTEMPTS` gives up, marking what it carried as undeliverable;
- marks an attempt ``sending`` before calling Slack and tags the message with its key in the
  message metadata, so after a crash an attempt of unknown outcome is looked up in Slack before
  anything is posted again: a restart resumes each unfinished post exactly once;
- runs the effect's ``on_sent`` hook in the same transaction that records Slack's ts (a warning
  marked sent, an approval's message remembered, a deployment's thread set), and its
  ``on_failed`` hook in the one that gives up.

With several replicas (bot/jobs/leadership.py), each delivers at once what its own requests
record, but only the leader delivers what is due later (a busy channel's turn, retries, posts a
crash left unfinished): :meth:`Outbox.run_due` does nothing on a follower (``leader`` says whether
this replica leads), and the leader's attempts check its fencing token in the transaction that
marks them under way, right before Slack is called, so a leader that lost its lease posts nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.ui.kit import Message
from storage.effects import EffectRow
from storage.leases import Fence, LeaseLost, current_fence, fenced, hold_fence

log = logging.getLogger("fwbot.outbox")

METADATA_EVENT = "fwbot_effect"
MAX_ATTEMPTS = 10  # 1 s, doubling, capped: about 8 minutes of retries before a human is told
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 600.0
# Slack errors after which that target will never take the post; the next target is tried.
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "restricted_action", "thread_not_found",
    "user_not_found", "user_disabled", "cannot_dm_bot", "channel_is_archived", "not_allowed_token_type",
    "invalid_blocks", "msg_too_long", "no_text", "too_many_attachments", "messages_tab_disabled",
})
# How far back a crashed attempt's message can be in Slack's history.
LOOKUP_MARGIN = timedelta(minutes=2)
# Finished effects are kept a week (for a look at what was posted where), then dropped.
KEEP_FINISHED = timedelta(days=7)
PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True)
class Target:
    """One place a message may go. ``deployment``: that deployment's thread (else its channel),
    read when the message is sent, so a thread started meanwhile is used."""

    label: str
    channel: str | None = None
    thread_ts: str | None = None
    user: str | None = None
    deployment: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str
    via: str  # the target's label
    fallback: bool  # False when the first target took it


@dataclass(frozen=True)
class Kind:
    """What an effect kind does around its delivery. Hooks get (services, payload args, ...)."""

    on_sent: Callable[[Any, dict, Posted], None] | None = None
    on_failed: Callable[[Any, dict, str], None] | None = None
    # Asked right before each attempt: False cancels the effect (e.g. its warning was resolved).
    still_wanted: Callable[[Any, dict], bool] | None = None
    # Renders the message at send time from the store (e.g. a tracking message shows the latest state).
    render: Callable[[Any, dict], Message | None] | None = None
    # Runs after the transaction that recorded the post (Slack calls, e.g. an edit), best effort.
    after_sent: Callable[[Any, dict, Posted], None] | None = None


class Delivery:
    """What :meth:`Outbox.send` knows when it returns: posted (where), queued, or failed (why)."""

    def __init__(self, key: str, posted: Posted | None = None, error: str | None = None) -> None:
        self.key, self.posted, self.error = key, posted, error

    @property
    def queued(self) -> bool:
        return self.posted is None and self.error is None

    def __repr__(self) -> str:
        return f"Delivery({self.key!r}, posted={self.posted}, error={self.error!r})"


SHARED_POOLS = ("fwbot-work", "fwbot-listener")


def may_sleep() -> bool:
    """False on the threads every Slack request shares (Bolt's listeners, the work after acks):
    one busy channel must never hold them."""
    return not threading.current_thread().name.startswith(SHARED_POOLS)


def deployment_targets(services: Any, deployment_id: str, *, owner: str | None = None,
                       alert: bool = True) -> list[Target]:
    """Thread → channel → owner DM → alert channel, for a message about one deployment."""
    record = services.store.deployment(deployment_id)
    owner = owner or (record.owner if record else None)
    targets = [Target("thread", deployment=deployment_id)]
    if record is not None and record.channel:
        targets.append(Target("channel", channel=record.channel))
    if owner:
        targets.append(Target("owner DM", user=owner))
    alert_channel = services.settings.alert_channel
    if alert and alert_channel:
        targets.append(Target("alert channel", channel=alert_channel))
    return targets


class Outbox:
    def __init__(self, services: Any, metrics: Any = None) -> None:
        self.s = services
        self.kinds: dict[str, Kind] = {"note": Kind()}
        self._inflight: set[int] = set()
        # This process among the replicas: its claims on attempts. A ``sending`` row claimed by
        # another is that replica's while it is present, else an attempt of unknown outcome.
        self.replica: str | None = getattr(services, "replica", None)
        self._lock = threading.Lock()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # With several replicas: the fence to deliver due effects under while this replica leads,
        # else None (a follower). Unset, this process delivers everything (one process alone).
        self.leader: Callable[[], Fence | None] | None = None
        self.sent = self.fallbacks = self.undelivered = self.retries = None
        if metrics is not None:
            self.bind_metrics(metrics.registry)

    def bind_metrics(self, registry: Any) -> None:
        from prometheus_client import Counter

        self.sent = Counter("fwbot_slack_posts_total", "Messages fwbot posted, by effect kind and where they landed",
                            ["kind", "via"], registry=registry)
        self.fallbacks = Counter("fwbot_slack_fallbacks_total",
                                 "Posts a target refused for good, so the next target was tried",
                                 ["kind", "target", "error"], registry=registry)
        self.undelivered = Counter("fwbot_slack_undelivered_total",
                                   "Messages no target would take (dropped after every fallback)", ["kind"],
                                   registry=registry)
        self.retries = Counter("fwbot_slack_retries_total", "Post attempts that failed transiently and were retried",
                               ["kind"], registry=registry)

    def register(self, name: str, kind: Kind) -> None:
        self.kinds[name] = kind

    # -- recording -------------------------------------------------------------------------------
    def enqueue(self, key: str, kind: str, targets: list[Target], message: Message | None = None, *,
                args: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                not_before: datetime | None = None) -> bool:
        """Record an effect (joins the caller's transaction). False when the key exists already.

        ``not_before``: it is held until then (a notice kept for its reader's working hours); the
        delivery thread sends it when the time comes, after a restart too."""
        if kind not in self.kinds:
            raise ValueError(f"unknown effect kind {kind!r}")
        payload: dict[str, Any] = {"targets": [t.to_json() for t in targets], "args": args or {}}
        if message is not None:
            payload["message"] = message.payload()
        if extra:
            payload["extra"] = extra
        return self.s.store.effects.add(key, kind, payload, self.s.clock.now(), not_before=not_before)

    def send(self, key: str, kind: str, targets: list[Target], message: Message | None = None, *,
             args: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
             wait: bool | None = None, not_before: datetime | None = None) -> Delivery:
        """Record and deliver. ``wait``: sleep for the channel's slot if it is taken; by default
        only off the shared pools (:func:`may_sleep`): there the delivery thread sends it later.
        ``not_before`` in the future: recorded only, and sent when its time comes (queued)."""
        self.enqueue(key, kind, targets, message, args=args, extra=extra, not_before=not_before)
        if not_before is not None and not_before > self.s.clock.now():
            return self.outcome(key)
        return self.deliver(key, wait=wait)

    def deliver(self, key: str, *, wait: bool | None = None) -> Delivery:
        wait = may_sleep() if wait is None else wait
        row = self.s.store.effects.get(key)
        if row is None:
            return Delivery(key, error="unknown effect")
        if row.is_open:
            self._attempt(row, wait=wait)
            if wait:
                # The delivery thread may have picked it up first: its attempt is this one.
                self._await_attempt(row.id)
            row = self.s.store.effects.get(key) or row
            if row.is_open:
                self.kick()
        return self._outcome(row)

    def outcome(self, key: str) -> Delivery:
        row = self.s.store.effects.get(key)
        return self._outcome(row) if row is not None else Delivery(key, error="unknown effect")

    def withdraw(self, key: str, reason: str, timeout_s: float = 30.0) -> Delivery:
        """Cancel an effect that is not posted yet; if an attempt is under way, wait for it. Returns
        the outcome: ``posted`` when it was posted after all (the caller edits that message)."""
        deadline = time.monotonic() + timeout_s
        while True:
            row = self.s.store.effects.get(key)
            if row is None or not row.is_open:
                return self.outcome(key)
            with self._lock:
                # Held under the lock: no attempt of this process can start between the check and
                # the cancel; one another replica has under way is waited for, as ours would be.
                if row.id not in self._inflight and self.s.store.effects.cancel(
                        row.id, self.s.clock.now(), reason, by=self.replica):
                    return self.outcome(key)
            if time.monotonic() > deadline:
                return self.outcome(key)
            time.sleep(0.01)

    def _await_attempt(self, effect_id: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if effect_id not in self._inflight:
                    return
            time.sleep(0.01)

    @staticmethod
    def _outcome(row: EffectRow) -> Delivery:
        if row.status == "done" and row.result:
            r = row.result
            return Delivery(row.key, Posted(r["channel"], r["ts"], r.get("via", ""), bool(r.get("fallback"))))
        if row.status in ("failed", "cancelled"):
            return Delivery(row.key, error=row.error or row.status)
        return Delivery(row.key)

    # -- the delivery thread ---------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        # Slack counts posts per channel whoever made them: a predecessor's last posts count too.
        now = self.s.clock.now()
        recent = self.s.store.effects.recent_posts(now - timedelta(seconds=self.s.poster.pacer.interval))
        self.s.poster.pacer.posted_recently({c: max(0.0, (now - at).total_seconds()) for c, at in recent.items()})
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fwbot-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.kick()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def kick(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def _loop(self) -> None:
        pruned_at = 0.0
        while not self._stop.is_set():
            try:
                pause = self.run_due()
                if time.monotonic() - pruned_at > PRUNE_EVERY_S and self._leads():
                    pruned_at = time.monotonic()
                    self.s.store.effects.prune(self.s.clock.now() - KEEP_FINISHED)
            except Exception:  # noqa: BLE001 - the loop must survive a bad row or a database hiccup
                log.exception("the outbox could not deliver")
                pause = 1.0
            with self._wake:
                self._wake.wait(timeout=min(max(pause, 0.05), 1.0))

    def _leads(self) -> bool:
        return self.leader is None or current_fence() is not None or self.leader() is not None

    def run_due(self, *, wait: bool = False) -> float:
        """One pass over the due effects; returns seconds until a channel slot frees (for the loop).

        Only on the leader (when replicas share the database): under the scheduled job's fence
        when a job calls it, else under the lease this replica holds now. A pass whose lease is
        lost on the way stops at the next attempt; the new leader carries on from the database."""
        fence = job_fence = current_fence()
        if fence is None and self.leader is not None:
            fence = self.leader()
            if fence is None:
                return 1.0  # a follower: the leader delivers what is due
        soonest = 1.0
        with fenced(fence):
            try:
                for row in self.s.store.effects.due(self.s.clock.now(), by=self.replica):
                    if self._stop.is_set():
                        break
                    left = self._attempt(row, wait=wait)
                    if left:
                        soonest = min(soonest, left)
            except LeaseLost as e:
                if job_fence is not None:
                    raise  # the job that called it stops too
                log.warning("stopped delivering due posts: %s", e)
        return soonest

    # -- one attempt -----------------------------------------------------------------------------
    def _attempt(self, row: EffectRow, *, wait: bool) -> float:
        with self._lock:
            if row.id in self._inflight:
                return 0.0
            self._inflight.add(row.id)
        try:
            return self._attempt_held(row, wait=wait)
        finally:
            with self._lock:
                self._inflight.discard(row.id)

    def _attempt_held(self, row: EffectRow, *, wait: bool) -> float:
        effects, now = self.s.store.effects, self.s.clock.now()
        fresh = effects.get(row.key)
        if fresh is None or not fresh.is_open:
            return 0.0
        row = fresh
        kind = self.kinds.get(row.kind) or Kind()
        args = row.payload.get("args") or {}
        if row.status == "sending" and (row.claimed_by is None or row.claimed_by != self.replica):
            if effects.held_by_other(row.id, now, by=self.replica):
                return 0.0  # another replica is posting it right now
            # An earlier process (or a replica now gone) began this attempt and died before
            # Slack's answer was recorded.
            found = self._find_in_slack(row)
            if found is not None:
                log.info("effect %s was posted by an attempt that never heard back (a restart, or a replica "
                         "now gone) (%s); not posting it again", row.key, found.channel)
                self._complete(row, kind, found)
                return 0.0
        if kind.still_wanted is not None and not kind.still_wanted(self.s, args):
            effects.cancel(row.id, now, "no longer wanted when its turn came", by=self.replica)
            return 0.0
        rendered = kind.render(self.s, args) if kind.render is not None else None
        content = rendered.payload() if rendered is not None else row.payload.get("message")
        if content is None:
            effects.cancel(row.id, now, "nothing to post", by=self.replica)
            return 0.0
        refused: list[str] = []
        targets = [Target(**t) for t in row.payload.get("targets") or []]
        for index, target in enumerate(targets):
            try:
                where = self._resolve(target)
            except SlackApiError as e:
                where, error = None, str(e.response.get("error"))
                if error not in PERMANENT_ERRORS:
                    return self._transient(row, kind, args, f"{target.label}: {error}")
                refused.append(f"{target.label}: {error}")
                self._count_fallback(row.kind, target.label, error)
                continue
            if where is None:
                continue
            channel, thread_ts = where
            pacer = self.s.poster.pacer
            if wait:
                pacer.wait(channel)
            else:
                left = pacer.try_slot(channel)
                if left > 0:
                    return left  # the delivery thread sends it when the slot comes
            with effects.db.write():
                # Scheduled work (the leader's) goes on only under its lease, checked in the
                # transaction that marks the attempt under way: right before Slack is called.
                hold_fence(effects.db)
                if not effects.start_attempt(row.id, now, by=self.replica):
                    return 0.0  # finished meanwhile, or another replica is posting it
            try:
                resp = self.s.poster.client.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, **content, **(row.payload.get("extra") or {}),
                    metadata={"event_type": METADATA_EVENT, "event_payload": {"key": row.key}})
            except SlackApiError as e:
                error = str(e.response.get("error"))
                if error in PERMANENT_ERRORS:
                    log.warning("%s refused %s (%s); trying the next place", target.label, row.key, error)
                    refused.append(f"{target.label}: {error}")
                    self._count_fallback(row.kind, target.label, error)
                    continue
                return self._transient(row, kind, args, f"{target.label}: {error}")
            except Exception as e:  # noqa: BLE001 - timeouts and connection errors: try again later
                return self._transient(row, kind, args, f"{target.label}: {type(e).__name__}: {e}")
            finally:
                pacer.sent(channel)
            self._complete(row, kind, Posted(str(resp["channel"]), str(resp["ts"]), target.label, index > 0))
            return 0.0
        self._give_up(row, kind, args, "; ".join(refused) or "there was nowhere to post it")
        return 0.0

    def _resolve(self, target: Target) -> tuple[str, str | None] | None:
        if target.deployment:
            record = self.s.store.deployment(target.deployment)
            if record is None or not record.channel:
                return None
            return record.channel, record.thread_ts
        if target.user:
            opened = self.s.poster.client.conversations_open(users=[target.user])
            return str(opened["channel"]["id"]), None
        if target.channel:
            return target.channel, target.thread_ts
        return None

    def _complete(self, row: EffectRow, kind: Kind, posted: Posted) -> None:
        now = self.s.clock.now()
        result = {"channel": posted.channel, "ts": posted.ts, "via": posted.via, "fallback": posted.fallback}
        with self.s.store.db.write():
            if not self.s.store.effects.finish(row.id, "done", now, result=result):
                return
            if kind.on_sent is not None:
                kind.on_sent(self.s, row.payload.get("args") or {}, posted)
        if self.sent is not None:
            self.sent.labels(kind=row.kind, via=posted.via).inc()
        if kind.after_sent is not None:
            try:
                kind.after_sent(self.s, row.payload.get("args") or {}, posted)
            except Exception:  # noqa: BLE001 - the post itself is done and recorded
                log.exception("after posting %s", row.key)

    def _transient(self, row: EffectRow, kind: Kind, args: dict, error: str) -> float:
        now = self.s.clock.now()
        attempts = row.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            self._give_up(row, kind, args, f"{error} ({attempts} attempts)")
            return 0.0
        delay = min(BACKOFF_FIRST_S * 2 ** (attempts - 1), BACKOFF_MAX_S)
        log.warning("posting %s failed (%s); attempt %d of %d again in %.0fs", row.key, error, attempts,
                    MAX_ATTEMPTS, delay)
        self.s.store.effects.retry_at(row.id, now + timedelta(seconds=delay), error, now)
        if self.retries is not None:
            self.retries.labels(kind=row.kind).inc()
        return 0.0

    def _give_up(self, row: EffectRow, kind: Kind, args: dict, error: str) -> None:
        now = self.s.clock.now()
        log.error("could not post %s anywhere: %s", row.key, error)
        with self.s.store.db.write():
            if not self.s.store.effects.finish(row.id, "failed", now, error=error):
                return
            if kind.on_failed is not None:
                kind.on_failed(self.s, args, error)
        if self.undelivered is not None:
            self.undelivered.labels(kind=row.kind).inc()

    def _count_fallback(self, kind: str, target: str, error: str) -> None:
        if self.fallbacks is not None:
            self.fallbacks.labels(kind=kind, target=target, error=error).inc()

    def _find_in_slack(self, row: EffectRow) -> Posted | None:
        """The message an interrupted attempt posted, found by its key in the message metadata."""
        oldest = f"{(row.created_at - LOOKUP_MARGIN).timestamp():.6f}"
        client = self.s.poster.client
        for index, target in enumerate(Target(**t) for t in row.payload.get("targets") or []):
            try:
                where = self._resolve(target)
                if where is None:
                    continue
                channel, thread_ts = where
                if thread_ts:
                    resp = client.conversations_replies(channel=channel, ts=thread_ts, oldest=oldest,
                                                        include_all_metadata=True, limit=200)
                else:
                    resp = client.conversations_history(channel=channel, oldest=oldest, include_all_metadata=True,
                                                        limit=200)
            except SlackApiError as e:
                log.info("could not look for %s in %s: %s", row.key, target.label, e.response.get("error"))
                continue
            for m in resp.get("messages") or []:
                meta = m.get("metadata") or {}
                if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("key") == row.key:
                    return Posted(channel, str(m["ts"]), target.label, index > 0)
        return None
