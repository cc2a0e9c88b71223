"""``/fw audit``: the trail rendered so a reviewer can answer who, when, what and why.

- **Who**: people as ``<@U…>`` mentions, which Slack shows as their names; fwbot as "fwbot".
  User ids inside stored details (older rows wrote "requested by U0DEV") are turned into
  mentions too.
- **When**: ``<!date^…>`` tokens, which Slack renders in the reader's own timezone; the fallback
  (clients that cannot render them) is UTC and says so.
- **What**: the change itself. An update row stores only what was set (``mask``/``change``); the
  value before is worked out from fwbot's own trail of that deployment (what it was created with,
  then every update fwbot made), so the line reads "Min replicas 1 → 2". Where the trail does
  not reach back (an adopted deployment) only the new value is shown, and the footer says the
  before-values cannot see changes made outside fwbot.
- **Why**: a change that ran on an approval names the approver and why it needed approval;
  approval rows name the request they belong to, rejections their reason.

Everything here is pure: ``handlers.commands.do_audit`` reads the rows, the trails and the
approvals, and this module renders them within Block Kit's limits (long trails are cut to the
newest entries with a note saying so).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bot.core.approvals import PENDING
from bot.core.clock import parse_iso
from bot.core.names import short_model
from bot.core.pricing import format_usd
from bot.core.requests import (  # _WIRE, _show: the labels and formatting `/fw update` shows a change with
    _WIRE,
    DeploymentChange,
    _show,
    format_accelerators,
    format_replicas,
    format_unused_auto_delete,
)
from bot.ui import kit
from bot.ui.approvals import what as approval_what
from bot.ui.approvals import who
from bot.ui.kit import Message
from storage.approvals import ApprovalRecord

PAGE = 25  # entries shown at most; older ones are counted in a note
HISTORY_MAX = 2000  # rows of one deployment's trail read to work out before-values
LINE_MAX = 1200  # characters of one entry (a section holds 3000); parts of it are clipped well before
DETAIL_MAX = 300
MAX_SECTIONS = 40  # well under Block Kit's 50 blocks, with room for the header and footers
DATE_FORMAT = "{date_num} {time}"
APPROVAL_ACTIONS = ("approval request", "approve", "reject", "approval cancel", "approval expire", "approved run",
                    "approval click")
Diff = list[tuple[str, str | None, str]]


# -- reading the stored rows -----------------------------------------------------------------------
def request_of(row: Mapping[str, Any]) -> dict:
    """The row's request JSON as a dict ({} when absent or not an object)."""
    raw = row.get("request")
    if not raw:
        return {}
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def approval_id(row: Mapping[str, Any]) -> str | None:
    """The approval request a row belongs to, if any."""
    value = request_of(row).get("approval")
    return value if isinstance(value, str) and value else None


# -- before → after of updates -----------------------------------------------------------------------
_SPEC_FIELDS = ("display_name", "deployment_shape", "min_replica_count", "max_replica_count", "accelerator_type",
                "accelerator_count", "scale_up_window_s", "scale_down_window_s", "scale_to_zero_window_s",
                "load_targets", "enable_addons", "description", "precision", "max_context_length", "long_prompt",
                "draft_model", "draft_token_count", "ngram_speculation_length", "enable_mtp",
                "enable_session_affinity")


def _created_state(request: dict) -> tuple[dict, float | None] | None:
    """The wire-shaped deployment a deploy row created, and its auto-delete policy; None if unknown."""
    spec = request.get("spec")
    if not isinstance(spec, dict):
        return None
    values = {f: spec.get(f) for f in _SPEC_FIELDS if spec.get(f) is not None}
    fields = request.get("fields") if isinstance(request.get("fields"), dict) else {}
    for f in ("accelerator_type", "accelerator_count"):  # resolved by fwbot when the request left them out
        if fields.get(f) is not None:
            values[f] = fields[f]
    try:
        state = DeploymentChange.model_validate(values)._apply({})
    except Exception:  # noqa: BLE001 - a row fwbot cannot read back has no before-values, nothing worse
        return None
    unused = spec.get("unused_auto_delete_s")
    return state, float(unused) if unused is not None else None


def update_diffs(trail_oldest_first: Sequence[Mapping[str, Any]]) -> dict[int, Diff]:
    """For each update row of one deployment's trail: ``(label, before, after)`` per field it set.

    ``before`` is ``None`` where fwbot's trail cannot tell (it did not create the deployment, or a
    row cannot be read back)."""
    state: dict | None = None
    unused: float | None = None
    out: dict[int, Diff] = {}
    for row in trail_oldest_first:
        request = request_of(row)
        action, ok = row.get("action"), row.get("result") == "ok"
        if action == "deploy" and ok and "spec" in request:
            created = _created_state(request)
            state, unused = created if created else (None, None)
        elif action == "adopt":
            state = None  # made elsewhere: its settings before this are not in the trail
        elif action == "update" and ok and isinstance(request.get("change"), dict):
            try:
                change = DeploymentChange.model_validate(request["change"])
            except Exception:  # noqa: BLE001 - unreadable: nothing shown rather than a guess
                state = None
                continue
            out[int(row["id"])] = _change_rows(change, state, unused)
            if state is not None:
                state = change._apply(state)
            if change.unused_auto_delete_s is not None:
                unused = change.unused_auto_delete_s
        elif action == "update" and ok and "min_replica_count" in request:  # a keep-warm revert found applied
            value = int(request["min_replica_count"])
            before = str(int(state.get("minReplicaCount") or 0)) if state is not None else None
            out[int(row["id"])] = [("Min replicas", before, str(value))]
            if state is not None:
                state = {**state, "minReplicaCount": value}
    return out


def _change_rows(change: DeploymentChange, state: dict | None, unused: float | None) -> Diff:
    """``(label, before, after)`` for every field ``change`` set, formatted as ``/fw update`` shows
    them; ``before`` is None when ``state`` (the deployment before it) is unknown."""
    after_state = change._apply(state or {})
    rows: Diff = []
    for field, (label, _, _) in _WIRE.items():
        if field not in change.fields_set:
            continue
        if field == "unused_auto_delete_s":
            before = format_unused_auto_delete(unused) if state is not None else None
            after = format_unused_auto_delete(change.unused_auto_delete_s)
        else:
            before = _show(field, state) if state is not None else None
            after = _show(field, after_state)
        rows.append((label, before, after))
    if change.deployment_shape is not None and change.shape_accelerator_type:
        after = format_accelerators(change.shape_accelerator_type, change.shape_accelerator_count)
        before = None
        if state is not None and state.get("acceleratorType"):
            before = format_accelerators(state.get("acceleratorType"), state.get("acceleratorCount"))
        rows.append(("Hardware per replica", before, after))
    return rows


def diff_text(rows: Diff) -> str:
    parts = []
    for label, before, after in rows:
        if before is None:
            parts.append(f"{label} → {kit.escape(after)}")
        elif before == after:
            parts.append(f"{label} {kit.escape(after)} (unchanged)")
        else:
            parts.append(f"{label} {kit.escape(before)} → {kit.escape(after)}")
    return "; ".join(parts)


# -- one entry ---------------------------------------------------------------------------------------
_MENTIONED = re.compile(r"&lt;@([UW][A-Z0-9_]+)&gt;")


def people(text: str, ids: Sequence[str | None]) -> str:
    """Escape stored text and show the people in it as mentions (Slack renders their names)."""
    out = _MENTIONED.sub(r"<@\1>", kit.escape(text))
    for uid in sorted({i for i in ids if i and i != "fwbot"}, key=len, reverse=True):
        out = re.sub(rf"(?<![\w@]){re.escape(uid)}(?!\w)", f"<@{uid}>", out)
    return out


def _when(row: Mapping[str, Any]) -> str:
    at = parse_iso(row.get("at"))
    return kit.slack_date(at, DATE_FORMAT) if at else "an unknown time"


def _deploy_what(request: dict) -> str:
    spec = request.get("spec") if isinstance(request.get("spec"), dict) else {}
    fields = request.get("fields") if isinstance(request.get("fields"), dict) else {}
    if not spec:
        return ""
    parts = [f"`{kit.escape(short_model(str(spec.get('base_model') or '?')))}`"]
    if spec.get("deployment_shape"):
        parts.append(f"shape {kit.escape(str(spec['deployment_shape']).rsplit('/', 1)[-1])}")
    acc = fields.get("accelerator_type") or spec.get("accelerator_type")
    if acc:
        count = fields.get("accelerator_count") or spec.get("accelerator_count")
        parts.append(kit.escape(format_accelerators(acc, count)))
    lo, hi = spec.get("min_replica_count"), spec.get("max_replica_count")
    if isinstance(lo, int) and isinstance(hi, int):
        parts.append(f"replicas {format_replicas(lo, hi)}")
    return ": " + ", ".join(parts)


def _until(value: Any) -> str:
    at = parse_iso(value) if isinstance(value, str) else None
    return kit.slack_date(at, DATE_FORMAT) if at else "?"


def _what(row: Mapping[str, Any], request: dict, diffs: Mapping[int, Diff]) -> str:
    """What the entry did, beyond its action's name."""
    action = row.get("action")
    if action == "deploy":
        return _deploy_what(request)
    if action == "update":
        rows = diffs.get(int(row["id"]))
        return f": {diff_text(rows)}" if rows else ""
    if action == "scale" and "replicas" in request:
        return f" to {kit.counted(int(request['replicas']), 'replica')}"
    if action == "delete":
        anyway = " while in use (`--ignore-checks`)" if request.get("ignore_checks") else ""
        return (" permanently" if request.get("hard") else " (soft delete; `/fw undelete` until purged)") + anyway
    if action == "owner" and ("from" in request or "to" in request):
        return f" from {who(request.get('from'))} to {who(request.get('to'))}"
    if action == "owner left":
        return f": {who(request.get('from'))} left Slack"
    if isinstance(action, str) and action.startswith("lora") and request.get("model"):
        text = f" `{kit.escape(short_model(str(request['model'])))}`"
        if request.get("serverless"):
            text += " from Fireworks' serverless platform"
        if request.get("public"):
            text += " (public)"
        if request.get("replace_merged_addon"):
            replaced = [f"`{kit.escape(short_model(str(m)))}`" for m in request.get("replaced") or []]
            text += f", replacing {', '.join(replaced)}" if replaced else " (`--replace-merged-addon`; nothing to replace)"
        return text
    if action in ("keep warm", "snooze") and request.get("until"):
        extra = f" (min replicas back to {request['restore_min']} then)" if request.get("restore_min") is not None else ""
        return f" until {_until(request['until'])}{extra}"
    if action == "auto-delete" and request.get("reason"):
        return f": {kit.escape(kit.clip(str(request['reason']), DETAIL_MAX))}"
    if action == "policy-override" and request.get("reason"):
        # The rules it broke follow, in the entry's detail.
        return f" of the {request.get('action', 'request')}: \"{kit.escape(kit.clip(str(request['reason']), DETAIL_MAX))}\""
    if action == "budget" and request.get("channel"):
        usd = request.get("usd_per_month")
        return f" of {kit.channel_link(request['channel'])}: {format_usd(usd, '/month') if usd is not None else '?'}"
    return ""


def _approval_what(row: Mapping[str, Any], record: ApprovalRecord) -> str:
    """An approval row told from its request: whose request, for what, why, how it ended."""
    action, req = row.get("action"), record.request
    request = f"{who(record.requester)}'s request to *{approval_what(record)}*"
    why = kit.escape(kit.clip(str(req.get("why") or "?"), DETAIL_MAX))
    if action == "approval request":
        money = f", worst case {format_usd(record.usd_per_hour)}" if record.kind != "delete" else ""
        if record.kind == "update" and req.get("usd_before") is not None:
            money = f", worst case {format_usd(req['usd_before'])} → {format_usd(record.usd_per_hour)}"
        return f" to *{approval_what(record)}*{money}: needed because {why}"
    if action == "approve":
        return f" {request} (needed because {why})"
    if action == "reject":
        reason = f": _{kit.escape(kit.clip(record.reason, DETAIL_MAX))}_" if record.reason else ""
        return f" {request}{reason}"
    if action == "approved run":
        text = (record.result or {}).get("text")
        # Result texts are fwbot's own mrkdwn; Fireworks' words in them were escaped when recorded.
        ran = kit.clip(str(text), DETAIL_MAX) if text else people(kit.clip(str(row.get("detail") or ""), DETAIL_MAX),
                                                                  [record.requester])
        return f" {request}: {ran}"
    if action == "approval expire":
        return f" {request}: nobody decided by {kit.slack_date(record.expires_at, DATE_FORMAT)}"
    if action == "approval cancel" and row.get("actor") == record.requester:
        return f" {request} (withdrawn by the requester)"
    if action == "approval click":
        return f" on {request}"
    return f": {request}"


# Approval rows whose story the request itself tells; their stored detail would only repeat it.
_TOLD_BY_REQUEST = ("approve", "reject", "approved run", "approval expire")
RESULTS = {"ok": "", "pending": " → waiting for an approver", "dry-run": " (dry run)", "error": " → :x: failed",
           "refused": " → :no_entry_sign: refused"}


def entry(row: Mapping[str, Any], *, diffs: Mapping[int, Diff], approvals: Mapping[str, ApprovalRecord | None],
          show_deployment: bool) -> str:
    """One line of the trail: when · who · what · why · how it ended."""
    request = request_of(row)
    action = str(row.get("action") or "?")
    record = approvals.get(approval_id(row) or "")
    dep = f" `{kit.escape(row['deployment_id'])}`" if show_deployment and row.get("deployment_id") else ""
    if record is not None and action in APPROVAL_ACTIONS:
        dep = ""  # the request names the deployment
        what = _approval_what(row, record)
        ids = [row.get("actor"), record.requester, record.decided_by]
    else:
        what = _what(row, request, diffs)
        ids = [row.get("actor"), request.get("requester"), request.get("approved_by"), request.get("from"),
               request.get("to")]
    why = ""
    if request.get("approved_by") and action not in APPROVAL_ACTIONS:
        why = f" · approved by {who(request['approved_by'])}"
        if record is not None and record.request.get("why"):
            why += f" (needed because {kit.escape(kit.clip(str(record.request['why']), DETAIL_MAX))})"
    result = RESULTS.get(str(row.get("result")), f" → {kit.escape(str(row.get('result')))}")
    told = record is not None and (action in _TOLD_BY_REQUEST or (action == "approval request" and row.get(
        "result") in ("ok", "pending")) or (action == "approval cancel" and row.get("actor") == record.requester))
    if record is not None and action == "approval request" and record.status != PENDING:
        result = ""  # decided since: the decision has a row of its own
    detail = ""
    if row.get("detail") and not told:
        detail = f" — {people(kit.clip(str(row['detail']), DETAIL_MAX), ids)}"
    line = f"• {_when(row)} · {who(row.get('actor'))} *{kit.escape(action)}*{dep}{what}{why}{result}{detail}"
    return kit.clip(line, LINE_MAX)


# -- the message ---------------------------------------------------------------------------------------
def render(rows: Sequence[Mapping[str, Any]], *, deployment_id: str | None,
           trails: Mapping[str, Sequence[Mapping[str, Any]]], approvals: Mapping[str, ApprovalRecord | None],
           older: int | None, simulated: bool) -> Message:
    """The trail, newest first. ``rows``: the entries to show (newest first); ``trails``: each
    shown deployment's whole trail (newest first), for before-values; ``older``: how many older
    entries are not shown (``None``: some, number unknown; 0: none)."""
    diffs: dict[int, Diff] = {}
    for trail in trails.values():
        diffs.update(update_diffs(list(reversed(trail))))
    lines = [entry(r, diffs=diffs, approvals=approvals, show_deployment=deployment_id is None) for r in rows]
    title = f"Audit trail of {deployment_id}" if deployment_id else "Audit trail, all deployments"
    blocks: list = [kit.header(title)]
    chunk = ""
    shown = 0
    for line in lines:
        candidate = f"{chunk}\n{line}" if chunk else line
        if len(candidate) > kit.SECTION_TEXT_MAX:
            if len(blocks) >= MAX_SECTIONS:
                break
            blocks.append(kit.section(chunk))
            candidate = line
        chunk = candidate
        shown += 1
    if chunk and len(blocks) < MAX_SECTIONS + 1:
        blocks.append(kit.section(chunk))
    left = (older or 0) + (len(lines) - shown)
    notes = ["Newest first. Times are in your Slack timezone (UTC where Slack cannot show them)."]
    if any(before is not None for d in diffs.values() for _, before, _ in d):
        notes.append("Values before a change come from fwbot's own trail of the deployment; changes made outside "
                     "fwbot (firectl, the Fireworks console) are not in it.")
    if left or older is None:
        more = f"{left} older entries are" if left and older is not None else "Older entries are"
        hint = "" if deployment_id else " `/fw audit <id>` shows one deployment's trail."
        notes.append(f"{more} not shown here; fwbot keeps them in its database.{hint}")
    blocks.append(kit.context(*notes))
    blocks.append(kit.footer_context(simulated))
    text = f"{title} (newest first): {len(rows)} entries"
    return Message(text=text, blocks=blocks)
