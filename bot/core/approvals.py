"""Approval policy and the decisions around it (pure).

Which requests need a second person, who may decide one, when a pending request is reminded
about or expires, and when an approved request that never finished must be picked up again.
Everything here is a function of plain values and ``now``; the listeners, the jobs and the store
carry out what these decide.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.pricing import format_usd

KINDS = ("deploy", "update", "delete")
PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
EXPIRED = "expired"
CANCELLED = "cancelled"
FINAL = (APPROVED, REJECTED, EXPIRED, CANCELLED)

# How long a started run may take before a later sweep treats its runner as dead and runs it
# again (every approved operation is idempotent: deploy ids are fixed in the request).
RUN_LEASE_S = 15 * 60.0
# Fraction of the approval window after which the one reminder goes out.
REMIND_AT_FRACTION = 0.5


def approval_reason(*, approvers: Sequence[str], threshold: float, new_usd: float | None,
                    before_usd: float | None = None, foreign_delete: bool = False) -> str | None:
    """Why a request needs approval, or ``None`` when it can run at once.

    No approvers configured means approvals are off. An unknown price needs approval, since its
    worst case cannot be bounded.
    """
    if not approvers:
        return None
    if foreign_delete:
        return "deleting someone else's deployment"
    if new_usd is None:
        return "its accelerator has no known price, so its worst case cannot be bounded"
    if new_usd > threshold and (before_usd is None or before_usd <= threshold or new_usd > before_usd):
        if before_usd is not None and before_usd > threshold:
            return f"it raises the worst case from {format_usd(before_usd)} to {format_usd(new_usd)}"
        return f"its worst case, {format_usd(new_usd)}, is above the {format_usd(threshold)} threshold"
    return None


def is_usergroup(approver_id: str) -> bool:
    """Slack user-group ids start with ``S``; user ids with ``U`` or ``W``."""
    return approver_id.startswith("S")


def expand_approvers(configured: Iterable[str], group_members: Mapping[str, Collection[str]]) -> frozenset[str]:
    """The user ids who may decide: configured users plus the members of configured groups.

    A group whose members are unknown (``group_members`` has no entry) contributes nobody, so a
    failed lookup never widens who may approve.
    """
    users: set[str] = set()
    for approver in configured:
        if is_usergroup(approver):
            users.update(group_members.get(approver, ()))
        else:
            users.add(approver)
    return frozenset(users)


def decision_refusal(user_id: str, *, requester: str, approvers: Collection[str]) -> str | None:
    """Why ``user_id`` may not approve or reject this request, or ``None`` when they may.

    ``approvers``: everyone who may decide this request (see :func:`deciders_for`; admins are among
    them when they stand in). The requester is never their own approver, even when they are on the
    approver list.
    """
    if user_id == requester:
        return "you asked for this, so someone else must approve or reject it. You can cancel it instead."
    if user_id not in approvers:
        return "only approvers can approve or reject requests, and you are not one of them."
    return None


@dataclass(frozen=True)
class Deciders:
    """Who may decide one request.

    ``shown``: the ids to name to people (users and ``S…`` groups); ``users``: the user ids known to
    be allowed; ``admins``: the admins stand in, because no approver other than the requester is
    known; ``unknown``: approver groups whose members could not be read (their members may decide,
    fwbot just cannot name them now).
    """

    shown: tuple[str, ...]
    users: frozenset[str]
    admins: bool = False
    unknown: tuple[str, ...] = ()

    @property
    def nobody(self) -> bool:
        """Nobody but the requester could ever decide it: a request that would only wait and expire."""
        return not self.users and not self.unknown


def deciders_for(requester: str, *, configured: Sequence[str], groups: Mapping[str, Collection[str]],
                 admins: Sequence[str], unread: Collection[str] = ()) -> Deciders:
    """Who may decide a request by ``requester``.

    The configured approvers (users, and members of groups) other than the requester; when there
    is no such person, the admins other than the requester stand in, so a sole approver's own
    request is not left for nobody. ``groups``: members of the groups that could be read;
    ``unread``: groups whose lookup failed.
    """
    shown: list[str] = []
    users: set[str] = set()
    for approver in configured:
        if is_usergroup(approver):
            if approver in unread:
                shown.append(approver)
                continue
            members = set(groups.get(approver, ())) - {requester}
            if members:
                shown.append(approver)
                users |= members
        elif approver != requester and approver not in shown:
            shown.append(approver)
            users.add(approver)
    unknown = tuple(g for g in configured if is_usergroup(g) and g in unread)
    if users:
        return Deciders(tuple(shown), frozenset(users), False, unknown)
    stand_ins = tuple(dict.fromkeys(a for a in admins if a != requester))
    return Deciders(tuple(shown) + stand_ins, frozenset(stand_ins), bool(stand_ins), unknown)


def expires_at(created_at: datetime, expiry_s: float) -> datetime:
    """When a request made at ``created_at`` expires."""
    return created_at + timedelta(seconds=expiry_s)


def reminder_at(created_at: datetime, expires: datetime) -> datetime:
    """When the one reminder about a pending request is due (half way through its window)."""
    return created_at + (expires - created_at) * REMIND_AT_FRACTION


def reminder_due(*, status: str, created_at: datetime, expires: datetime, reminded_at: datetime | None,
                 now: datetime) -> bool:
    """A pending request gets exactly one reminder, after half its window and before it expires."""
    return (status == PENDING and reminded_at is None
            and reminder_at(created_at, expires) <= now < expires)


def expiry_due(*, status: str, expires: datetime, now: datetime) -> bool:
    """A request nobody decided by ``expires`` expires."""
    return status == PENDING and now >= expires


def recovery_due(*, status: str, executed_at: datetime | None, result: object, booted_at: datetime,
                 now: datetime, lease_s: float = RUN_LEASE_S, runner_gone: bool | None = None) -> bool:
    """Whether an approved request must be (re)run by the recovery sweep.

    It is approved but has no result, and either nobody started it, its runner is gone, or its
    run outlived the lease. ``runner_gone`` says whether the replica running it stopped; ``None``
    when that is not known (a run recorded without its runner, or this process's own), and then
    a run started before this process booted is taken for one whose runner died with an earlier
    process.
    """
    if status != APPROVED or result is not None:
        return False
    if executed_at is None:
        return True
    interrupted = executed_at < booted_at if runner_gone is None else runner_gone
    return interrupted or (now - executed_at).total_seconds() > lease_s


@dataclass(frozen=True)
class ClickOutcome:
    """What to tell someone whose decision did not take: ``kind`` and the facts to show."""

    kind: str  # decided | expired | unknown | wrong_message
    status: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None


def click_outcome(*, won: bool, status: str | None, decided_by: str | None, decided_at: datetime | None,
                  expires: datetime | None, now: datetime) -> ClickOutcome | None:
    """The result of a compare-and-set decision: ``None`` when this click won it.

    Otherwise the state the request is in now: already decided (by whom, when), expired, or unknown.
    """
    if won:
        return None
    if status is None:
        return ClickOutcome("unknown")
    if status == PENDING and expires is not None and now >= expires:
        return ClickOutcome("expired", status=EXPIRED, decided_at=expires)
    if status == EXPIRED:
        return ClickOutcome("expired", status=status, decided_at=decided_at or expires)
    return ClickOutcome("decided", status=status, decided_by=decided_by, decided_at=decided_at)


def button_binding_problem(*, record_exists: bool, record_message_ts: str | None,
                           clicked_message_ts: str | None) -> str | None:
    """Whether a button's token belongs to the message it was clicked on.

    Each request's buttons carry its own opaque token; a token that is unknown, or that belongs to
    a different request than the message clicked, is a forged or stale click.
    """
    if not record_exists:
        return "this approval button does not belong to any request fwbot knows. Nothing was done."
    if record_message_ts and clicked_message_ts and record_message_ts != clicked_message_ts:
        return "this button does not belong to the request in this message. Nothing was done."
    return None
