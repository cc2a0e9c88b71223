"""The reconcile loop: read every deployment, mirror it, turn transitions into messages.

Level-triggered and idempotent: each run compares what Fireworks says now with what SQLite
remembers, and every message it sends is guarded by a store flag that is set after an
idempotent edit (``chat.update``) or claimed before a new post, so running it twice in a row, or
again after a crash, changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError

from bot.adapters.fireworks import FireworksError, NotFound, RawPage, deployment_id_of
from bot.adapters.outbox import Kind, Posted, Target, deployment_targets
from bot.core.clock import iso, parse_iso
from bot.core.lifecycle import (
    DELETION_SEEN,
    GONE_STATES,
    Deletion,
    deletion_from_audit,
    deletion_seen,
    idle_since,
    lifetime_timer,
)
from bot.core.pricing import format_usd
from bot.services.container import Services
from bot.services.deployments import mirrored_fields, record_usd_per_hour
from bot.services.lifetimes import lifetime_for
from bot.services.people import SlackDirectory
from bot.services.schedules import running_of
from bot.ui import deployments as ui
from bot.ui import kit
from bot.ui import lifecycle as lifecycle_ui
from bot.ui import schedules as schedule_ui
from bot.ui.kit import Message
from storage.deployments import DeploymentRecord
from storage.store import Store

log = logging.getLogger("fwbot.reconcile")

# Longer than any create can take to answer (timeout × attempts, with backoff).
UNCONFIRMED_CREATE_GRACE = timedelta(minutes=10)

MIRROR_BATCH = 200
ADOPTION_OFFER = "adoption_offer"  # the outbox kind of an adoption offer


@dataclass
class SyncReport:
    seen: int = 0
    new_outside: list[str] = field(default_factory=list)
    became_ready: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    api_calls: int = 0


def status_line(record: DeploymentRecord, restarted_at: datetime | None = None) -> str:
    """``restarted_at``: its latest undelete, when it had one (READY counts from that)."""
    state = record.state or "CREATING"
    if state == "READY":
        line = ui.ready_line(parse_iso(record.ready_at), ui.latest_start(parse_iso(record.create_time), restarted_at))
        if (record.replicas or 0) == 0:
            line += " · scaled to zero (next request waits for a cold start)"
        return line
    if state == "FAILED":
        status = (record.wire or {}).get("status") or {}
        return f":x: FAILED: {kit.escape(status.get('message') or 'Fireworks gave no reason')}"
    if state in ("DELETED", "DELETING"):
        return ":wastebasket: Deleted. Undelete brings it back until Fireworks purges it."
    if state == "UPDATING":
        return ":arrows_counterclockwise: Updating…"
    return ":hourglass_flowing_sand: Creating… this message turns READY when it is."


def render_tracking(services: Services, record: DeploymentRecord) -> Message:
    if record.owner is None and not record.created_by_bot and not record.gone \
            and record.state not in ("DELETED", "DELETING"):
        return offer_message(services, record)
    if record.gone:
        return ui.tracking_message(record.wire, deployment_id=record.id, usd=None, owner=record.owner,
                                   simulated=services.simulated,
                                   status_line=":ghost: Gone: Fireworks no longer has this deployment.",
                                   buttons=False)
    running = running_of(services, SlackDirectory(services), record)
    line = status_line(record, last_undelete(services, record))
    lifetime = lifetime_line(services, record)
    return ui.tracking_message(record.wire, deployment_id=record.id, usd=record_usd_per_hour(record, services.prices),
                               owner=record.owner, simulated=services.simulated,
                               status_line=f"{line}\n{lifetime}" if lifetime else line,
                               schedule_line=schedule_ui.schedule_line(running, services.clock.now(), relative=False))


def lifetime_line(services: Services, record: DeploymentRecord) -> str | None:
    """When fwbot deletes it at the end of its maximum lifetime (team policy), if one applies."""
    lifetime = lifetime_for(services, record)
    if lifetime is None:
        return None
    timer = lifetime_timer(record, lifetime)
    if timer is None or record.state not in ("READY", "UPDATING", "FAILED"):
        return None
    now = services.clock.now()
    return lifecycle_ui.lifetime_line(timer, tz=SlackDirectory(services).tz(record.owner), now=now)


def refresh_tracking(services: Services, deployment_id: str) -> None:
    """Re-render a deployment's tracking message from what the store knows now."""
    record = services.store.deployment(deployment_id)
    if record and record.channel and record.thread_ts:
        services.poster.update(record.channel, record.thread_ts, render_tracking(services, record))


def last_undelete(services: Services, record: DeploymentRecord) -> datetime | None:
    """When fwbot last undeleted it (from the audit trail), for a READY line after a comeback."""
    if record.state != "READY":
        return None
    times = [parse_iso(r["at"]) for r in services.store.audit_trail(record.id)
             if r["action"] == "undelete" and r["result"] == "ok"]
    return max((t for t in times if t is not None), default=None)


def ensure_tracking(services: Services, record: DeploymentRecord) -> DeploymentRecord:
    """Give a deployment that has a channel but no tracking message (e.g. just adopted) its own."""
    if not record.channel or record.thread_ts:
        return record
    try:
        posted = services.poster.post(record.channel, render_tracking(services, record))
    except SlackApiError as e:
        log.warning("could not post the tracking message of %s: %s", record.id, e.response.get("error"))
        return record
    services.store.set_deployment_fields(record.id, services.clock.now(), channel=posted["channel"],
                                         thread_ts=posted["ts"])
    return services.store.deployment(record.id) or record


def sync(services: Services) -> SyncReport:
    """One reconcile pass over every deployment (all pages, including soft-deleted ones)."""
    store, now = services.store, services.clock.now()
    report = SyncReport()
    seen_ids: set[str] = set()
    # Creates a replica sent and then died without hearing back (rare: nothing to read otherwise).
    recover_interrupted_creates(services, unnamed=False)
    # Each page is mirrored as it arrives, in one transaction, so only one page of API objects
    # is in memory at a time. Messages go out after each transaction, so Slack's latency never
    # holds SQLite's write lock. If a later page cannot be read, the pages before it are still
    # true observations; nothing is marked gone, since that needs the whole listing.
    listed_at = iso(now)  # the listing is read from here on: what was seen after it, it cannot judge
    pages = services.gateway.raw_deployment_pages(show_deleted=True, page_size=MIRROR_BATCH,
                                                  known=store.known_pages())
    for page in pages:
        quiet = _confirm_quiet_page(store, page, now)
        if quiet is not None:
            report.seen += len(quiet)
            seen_ids.update(quiet)
            continue
        batch = [(deployment_id_of(wire["name"]), mirrored_fields(wire)) for wire in page.items()]
        report.seen += len(batch)
        seen_ids.update(dep_id for dep_id, _ in batch)
        with store.db.write():
            # A page read before this replica lost the leader lease is not written over what the
            # new leader has seen since.
            store.hold_fence()
            # Deployments unchanged since the last pass, with nothing pending, come back as no
            # transition at all: _on_transition would find nothing to do for them. (Compared by
            # their columns and a signature of the API object, not its JSON: bench/README.md.)
            transitions = store.mirror_many(batch, now, observed_at=now)
            store.record_replicas_many(now, [(dep_id, f["replicas"], f["accelerator_type"], f["accelerator_count"],
                                              bool(f["single_region"])) for dep_id, f in batch])
            store.remember_page(page.digest, page.next_token, batch, now)  # see _confirm_quiet_page
        del batch, page
        for before, after in transitions:
            _on_transition(services, before, after, report)
    store.forget_pages_before(now)  # the pages this listing no longer showed
    report.api_calls = max(1, -(-report.seen // MIRROR_BATCH))
    if report.new_outside:
        _offer_adoptions(services, report.new_outside)
    for dep_id, state in store.live_deployment_states().items():
        if dep_id not in seen_ids and state is None:
            _forget_unconfirmed_create(services, dep_id, now, report)
            continue
        record = store.deployment(dep_id) if dep_id not in seen_ids and state is not None else None
        if record is not None and not _vanished(services, record, listed_at):
            continue
        if record is not None:
            with store.db.write():
                store.hold_fence()
                store.mark_gone(record.id, now)
                store.record_replicas(record.id, now, 0, record.accelerator_type, record.accelerator_count,
                                      record.single_region)
            report.vanished.append(record.id)
            gone = store.deployment(record.id)
            if gone:
                _edit_tracking(services, gone)
                if record.state in GONE_STATES:
                    # Purged after a soft delete: no new deletion, but its Undelete no longer works.
                    mark_purged(services, gone, now)
                else:
                    announce_deletion(services, record, gone, now)
    return report


def _vanished(services: Services, record: DeploymentRecord, listed_at: str) -> bool:
    """Whether a deployment the listing did not show is really gone, before it is said to be.

    A listing is a view of one moment: a deployment created (or mirrored by a click) on another
    replica or thread after the listing was read is not in it, yet is stored with a state by the
    time the listing is compared. Such a one (seen after ``listed_at``) is left for the next
    pass. Any other is read once more from Fireworks: only a NotFound makes it gone."""
    if record.last_seen_at is not None and record.last_seen_at > listed_at:
        return False
    try:
        services.gateway.get_deployment(record.id)
    except NotFound:
        return True
    except FireworksError as e:
        log.warning("%s was missing from the listing, and reading it failed (%s): left for the next pass",
                    record.id, e)
        return False
    log.warning("%s was missing from the listing but Fireworks still has it: left for the next pass", record.id)
    return False


def _confirm_quiet_page(store: Store, page: RawPage, now: datetime) -> list[str] | None:
    """The quiet-page shortcut: a listing page that came back byte for byte as an earlier sync
    read it, whose deployments are all still stored as it showed them with nothing pending, is
    only recorded as seen, not decoded and compared again. Returns its deployment ids, or
    ``None`` when the page must be mirrored.

    Measured: a quiet 10k-deployment sync takes 360 ms CPU with it, 620 ms without (bench/README.md).
    """
    entries = store.page_entries(page.digest) if page.known else None
    if entries is None or not store.confirm_unchanged(page.digest, entries, now):
        return None
    return [dep_id for dep_id, _ in entries]


def recover_interrupted_creates(services: Services, *, unnamed: bool = True) -> list[tuple[str, str]]:
    """Settle creates whose sender stopped before Fireworks answered: at start-up (an earlier
    process's), and in every sync (a replica that died).

    A create is in flight only while the replica that sent it runs, so each owner claim without
    a state whose creator is gone (its presence lease ran out; with ``unnamed``, also one
    recorded without its creator, which the start-up of a lone process may take for an earlier
    one's) is decided now: Fireworks has it (mirror it and audit the create as confirmed) or
    it does not (drop the claim and audit that it was not created). Returns (id, outcome) pairs.
    """
    store, now = services.store, services.clock.now()
    claims = store.pending_creates()
    if not claims:
        return []
    present = set(store.present_replicas(now))
    # An approved create that never finished is re-run by the approvals' own recovery, which
    # records its outcome on the request; settling it here as well would audit it twice.
    approved = {r.deployment_id for r in store.approvals(status="approved") if r.result is None}
    pending = [dep_id for dep_id, creator in claims.items() if dep_id not in approved and (
        unnamed if creator is None else creator != services.replica and creator not in present)]
    if not pending:
        return []
    try:
        listed = {deployment_id_of(w["name"]): w for w in services.gateway.list_deployments(show_deleted=True)}
    except FireworksError as e:
        log.warning("could not check %d interrupted create(s) at start-up (%s); the sync will", len(pending),
                    e.message)
        return []
    outcomes = []
    for dep_id in pending:
        record = store.deployment(dep_id)
        if record is None:
            continue
        if dep_id in listed:
            with store.db.write():
                if (store.deployment(dep_id) or record).state is not None:
                    continue  # confirmed meanwhile (a sync, or another replica settling it)
                store.mirror(dep_id, mirrored_fields(listed[dep_id]), now, observed_at=now)
                outcome, detail = "ok", "confirmed later: fwbot stopped before Fireworks answered the create"
                store.audit(actor=record.owner or "fwbot", action="deploy", result=outcome, now=now,
                            deployment_id=dep_id, channel=record.channel, detail=detail)
        else:
            if not settle_not_created(services, record):
                continue
            outcome, detail = "error", "not created: fwbot stopped before Fireworks answered the create"
            store.audit(actor=record.owner or "fwbot", action="deploy", result=outcome, now=now,
                        deployment_id=dep_id, channel=record.channel, detail=detail)
        log.info("interrupted create of %s: %s", dep_id, detail)
        outcomes.append((dep_id, outcome))
    return outcomes


def _forget_unconfirmed_create(services: Services, dep_id: str, now, report: SyncReport) -> None:
    """A record claimed before a create whose outcome Fireworks never confirmed (a timeout, 5xx
    after retries). Once no create could still be in flight and Fireworks does not list it, the
    create never happened: drop the claim so no phantom row lingers in lists and App Home."""
    record = services.store.deployment(dep_id)
    if record is None or now - (parse_iso(record.created_at) or now) <= UNCONFIRMED_CREATE_GRACE:
        return
    if settle_not_created(services, record):
        report.forgotten.append(dep_id)


def settle_not_created(services: Services, record: DeploymentRecord) -> bool:
    """A create Fireworks never made: drop the claim, turn its "Creating…" message into the truth,
    and tell the requester. A tracking post still in the outbox then has nothing to show. False
    when the claim was settled already (by another replica, or Fireworks confirmed it)."""
    store = services.store
    with store.db.write():
        # Re-read with the claim: a tracking post the outbox resumed meanwhile may have given it
        # its thread (else the post, completed after this, corrects itself: see changes.py).
        current = store.deployment(record.id)
        if current is None or not store.forget_deployment(record.id):
            return False
    record = current
    if record.channel and record.thread_ts:
        try:
            services.poster.update(record.channel, record.thread_ts, ui.tracking_message(
                None, deployment_id=record.id, usd=None, owner=record.owner, simulated=services.simulated,
                status_line=ui.NOT_CREATED, buttons=False))
        except SlackApiError as e:
            log.warning("could not correct the tracking message of %s: %s", record.id, e.response.get("error"))
    if record.owner:
        services.outbox.send(f"not-created:{record.id}:{record.created_at}", "note",
                             [Target("requester DM", user=record.owner)],
                             ui.plain(f"`{record.id}`: {ui.NOT_CREATED}", simulated=services.simulated))
    return True


def _on_transition(services: Services, before: DeploymentRecord | None, after: DeploymentRecord,
                   report: SyncReport) -> None:
    store, now = services.store, services.clock.now()
    old_state = before.state if before else None
    if old_state in ("DELETED", "DELETING") and after.state not in ("DELETED", "DELETING"):
        # Back from a deletion (an undelete outside fwbot): its READY time starts over.
        store.set_deployment_fields(after.id, now, ready_at=None, ready_announced=0)
        after = store.deployment(after.id) or after
    if after.state == "READY" and not after.ready_at:
        store.set_deployment_fields(after.id, now, ready_at=iso(now))
    if after.owner is None and not after.created_by_bot and after.adoption_offered_at is None:
        if after.state not in ("DELETED", "DELETING"):
            # Offered after the pass, all together: many found at once make one message.
            report.new_outside.append(after.id)
        return
    if after.state == "READY" and not after.ready_announced:
        refreshed = store.deployment(after.id)
        assert refreshed is not None
        if _edit_tracking(services, refreshed):
            store.set_deployment_fields(after.id, now, ready_announced=1)
        report.became_ready.append(after.id)
        return
    if after.state != old_state and old_state is not None:
        if after.state == "FAILED":
            report.failed.append(after.id)
        if after.state == "DELETED":
            report.deleted.append(after.id)
        _edit_tracking(services, after)
        if before is not None:
            announce_deletion(services, before, after, now)
    elif before is not None and (before.replicas != after.replicas or before.wire != after.wire):
        _edit_tracking(services, after)


def _edit_tracking(services: Services, record: DeploymentRecord) -> bool:
    if not (record.channel and record.thread_ts):
        return True
    try:
        return services.poster.update(record.channel, record.thread_ts, render_tracking(services, record))
    except SlackApiError as e:
        log.warning("could not edit the tracking message of %s: %s", record.id, e.response.get("error"))
        return False


# -- deletions ------------------------------------------------------------------------------
def deletion_key(deployment_id: str, at) -> str:
    """The outbox key of a deletion's one thread message (so it is posted once, and found again)."""
    return f"deletion:{deployment_id}:{iso(at)}"


def owner_tz(services: Services, owner: str | None) -> str:
    """The owner's timezone (what Slack says of them, kept an hour in SQLite), else the team's."""
    return (SlackDirectory(services).tz(owner) if owner else None) or services.settings.timezone


def deletion_message(services: Services, record: DeploymentRecord, deletion: Deletion, *,
                     purged_at=None, undelete_value: str | None = None) -> Message:
    purge = parse_iso((record.wire or {}).get("purgeTime")) if record.wire else None
    return lifecycle_ui.render_deletion(record, deletion, tz=owner_tz(services, record.owner),
                                        now=services.clock.now(), simulated=services.simulated, purge_time=purge,
                                        undelete_value=undelete_value, purged_at=purged_at)


def announce_deletion(services: Services, before: DeploymentRecord, after: DeploymentRecord, now) -> bool:
    """A deployment fwbot did not delete went from live to deleted (or vanished): record who or
    what did it — Fireworks' own unused-deletion or someone outside fwbot — when and why (an
    audit row fwbot's warnings are resolved from), and say so once in its thread, with Undelete
    while that can work. Deletions made through fwbot are announced by whoever made them."""
    store = services.store
    if before.gone_at is not None or before.state is None or before.state in GONE_STATES:
        return False
    if after.gone_at is None and after.state not in GONE_STATES:
        return False
    known = deletion_from_audit(store.audit_trail(after.id, limit=20))
    live_at = parse_iso(before.last_seen_at)
    if known is not None and (live_at is None or known.at >= live_at):
        return False  # on record already (one seen live since, e.g. undeleted outside fwbot, is a new one)
    if any(a.payload.get("deleting_at") for kind in ("auto_delete", "lifetime_delete")
           for a in store.bot_actions(deployment_id=after.id, kind=kind, statuses=("running",))):
        return False  # fwbot's own deletion, between its call and its record
    status = ((after.wire or {}).get("status") or {}).get("message") if after.gone_at is None else None
    idle = idle_since(before, store.last_traffic(after.id))
    deletion = deletion_seen(before, after, noticed_at=now, seen_idle_since=idle, status_message=status)
    store.audit(actor="fwbot", action=DELETION_SEEN, result="ok", now=now, deployment_id=after.id,
                channel=after.channel,
                request={"by": deletion.by, "deleted_at": iso(deletion.at), "why": deletion.why,
                         "soft": deletion.soft},
                detail=("Fireworks deleted it" if deletion.by == "fireworks" else "deleted outside fwbot")
                + f" {deletion.why}")
    services.outbox.send(deletion_key(after.id, deletion.at), "note", deployment_targets(services, after.id),
                         deletion_message(services, after, deletion))
    return True


def mark_purged(services: Services, record: DeploymentRecord, now) -> None:
    """A soft-deleted deployment Fireworks purged: its deletion message loses the Undelete button."""
    deletion = deletion_from_audit(services.store.audit_trail(record.id, limit=20))
    if deletion is None:
        return
    posted = services.outbox.outcome(deletion_key(record.id, deletion.at)).posted
    if posted is None:
        return
    try:
        services.poster.update(posted.channel, posted.ts, deletion_message(services, record, deletion, purged_at=now))
    except SlackApiError as e:
        log.warning("could not edit the deletion message of %s: %s", record.id, e.response.get("error"))


# Up to this many deployments found outside fwbot in one pass get an offer (and thread) each;
# more are listed in one message, so a first sync of a big account does not flood the channel.
SEPARATE_OFFERS_MAX = 3
DIGEST_BUTTONS_MAX = 20


def _offer_adoptions(services: Services, deployment_ids: list[str]) -> None:
    """Deployments made with firectl or the console: ask the alert channel who owns them (once)."""
    store, now = services.store, services.clock.now()
    # Claim first: a crash after the claim loses an offer rather than repeating it forever.
    for dep_id in deployment_ids:
        store.set_deployment_fields(dep_id, now, adoption_offered_at=iso(now))
    channel = services.settings.alert_channel
    if not channel:
        return
    records = [r for r in (store.deployment(d) for d in deployment_ids) if r is not None]
    if len(records) <= SEPARATE_OFFERS_MAX:
        for record in records:
            _post_offer(services, channel, record)
        return
    _post_offer_digest(services, channel, records)


def _offer_line(services: Services, record: DeploymentRecord) -> str:
    return (f"`{record.id}` · `{record.base_model}` · {kit.counted(record.replicas or 0, 'replica')} · worst case "
            f"{format_usd(record_usd_per_hour(record, services.prices))}")


def offer_message(services: Services, record: DeploymentRecord) -> Message:
    """A deployment made outside fwbot that nobody owns here: the offer to adopt it. It is also
    that deployment's tracking message until someone does, so later edits keep the button."""
    return Message(
        text=f"{record.id} was created outside fwbot and has no owner",
        blocks=[
            kit.section(f":mag: {_offer_line(services, record)}. It was created outside fwbot and nobody "
                        "owns it here. Is it yours?"),
            kit.actions(kit.button("Adopt it", "adopt", record.id, style="primary")),
            kit.footer_context(services.simulated, f"or `/fw adopt {record.id}`"),
        ],
    )


def _post_offer(services: Services, channel: str, record: DeploymentRecord) -> None:
    delivery = services.outbox.send(f"adoption-offer:{record.id}", ADOPTION_OFFER,
                                    [Target("alert channel", channel=channel)], offer_message(services, record),
                                    args={"deployment": record.id})
    if delivery.error:
        log.warning("could not offer %s for adoption in %s: %s", record.id, channel, delivery.error)


def effect_kinds() -> dict[str, Kind]:
    """An adoption offer becomes its deployment's thread once Slack has it."""

    def on_sent(s: Services, args: dict, posted: Posted) -> None:
        s.store.set_deployment_fields(args["deployment"], s.clock.now(), channel=posted.channel, thread_ts=posted.ts)

    return {ADOPTION_OFFER: Kind(on_sent=on_sent)}


def _post_offer_digest(services: Services, channel: str, records: list[DeploymentRecord]) -> None:
    shown = records[:DIGEST_BUTTONS_MAX]
    lines = [f"• {_offer_line(services, r)}" for r in shown]
    blocks = [kit.section(f":mag: *{len(records)} deployments were created outside fwbot* and nobody owns "
                          "them here. Adopt yours; each then gets its own thread.")]
    blocks += kit.long_text("\n".join(lines))
    for i in range(0, len(shown), 5):
        # Slack wants action ids unique within a block; the listener matches the prefix.
        blocks.append(kit.actions(*[kit.button(f"Adopt {r.id}", f"adopt_listed_{i + n}", r.id)
                                    for n, r in enumerate(shown[i:i + 5])]))
    more = len(records) - len(shown)
    blocks.append(kit.footer_context(
        services.simulated, f"…and {more} more: `/fw list all`, then `/fw adopt <id>`" if more else
        "or `/fw adopt <id>`"))
    key = "adoption-digest:" + hashlib.sha1(",".join(sorted(r.id for r in records)).encode()).hexdigest()[:16]
    delivery = services.outbox.send(key, "note", [Target("alert channel", channel=channel)],
                                    Message(text=f"{len(records)} deployments have no owner in fwbot", blocks=blocks))
    if delivery.error:
        log.warning("could not offer %d deployments for adoption in %s: %s", len(records), channel, delivery.error)
