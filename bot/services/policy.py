"""The team's guardrails in force: the policy file, read again when it changes, and what it means
for one person in one channel (bot/core/policy.py does the meaning; this module the file, the
user groups and the counting).

The file is ``FWBOT_POLICY_FILE`` or, without it, ``fwbot.toml`` in the working directory (its
``[policy]`` table; the settings ignore that table). It is looked at again (one ``stat``) every time
a policy is asked for, and re-read when its size or modification time changed. A file that does not
parse is refused with its line and reason: the last good policy stays in force, the refusal is
logged, audited and posted once to the alert channel, and ``/fw policy`` shows it. At start-up
there is no last good policy, so a bad file stops fwbot from starting (guardrails that silently
vanish are worse than none).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.core.clock import iso
from bot.core.policy import (
    DEFAULT_FILENAME,
    EffectivePolicy,
    Policy,
    PolicyError,
    Rule,
    effective_policy,
    parse_policy,
)
from bot.services.container import Services
from bot.services.deployments import UserError
from bot.services.people import groups_for
from bot.ui import kit

log = logging.getLogger("fwbot.policy")

EMPTY = Policy(defaults=Rule(None, None, None, {}))


@dataclass(frozen=True)
class Loaded:
    policy: Policy
    path: str | None  # None: no file, no guardrails
    loaded_at: datetime | None
    digest: str | None


@dataclass(frozen=True)
class Refused:
    """The file as it is now, refused: ``error`` says where and why."""

    error: PolicyError
    digest: str
    seen_at: datetime


class PolicyBook:
    """The policy in force for these services (one per process; :func:`policy_book`)."""

    def __init__(self, services: Services) -> None:
        self.s = services
        configured = services.settings.policy_file
        self.path = Path(configured) if configured else Path(DEFAULT_FILENAME)
        self.required = bool(configured)  # a file named on purpose must exist
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None  # (size, mtime_ns) of the file last read
        self._loaded = Loaded(EMPTY, None, None, None)
        self._refused: Refused | None = None
        self._reported: str | None = None  # digest of the last refusal told to the alert channel
        self.reload(strict=True)

    # -- the file ---------------------------------------------------------------------------------
    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns)

    def reload(self, *, strict: bool = False) -> None:
        """Read the file again if it changed. ``strict`` (start-up): a bad file raises PolicyError."""
        with self._lock:
            stamp = self._stat()
            if stamp == self._stamp and (stamp is not None or self._loaded.path is None):
                return
            self._stamp = stamp
            now = self.s.clock.now()
            if stamp is None:
                if self.required or self._loaded.path is not None:
                    error = PolicyError(str(self.path), [(None, "the policy file is missing (deleted or moved?)")])
                    if strict:
                        raise error
                    self._refuse(error, "missing", now)
                return
            try:
                text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                error = PolicyError(str(self.path), [(None, f"cannot be read: {e}")])
                if strict:
                    raise error from None
                self._refuse(error, "unreadable", now)
                return
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            if digest == self._loaded.digest:
                self._refused = None
                return
            try:
                policy = parse_policy(text, str(self.path))
            except PolicyError as error:
                if strict:
                    raise
                self._refuse(error, digest, now)
                return
            self._loaded = Loaded(policy, str(self.path), now, digest)
            self._refused = None
            log.info("policy loaded from %s (%d rules)", self.path, len(policy.rules))
        self.s.store.audit(actor="fwbot", action="policy", result="loaded", now=now, detail=str(self.path))

    def _refuse(self, error: PolicyError, digest: str, now: datetime) -> None:
        if self._refused is not None and self._refused.digest == digest:
            return  # the same refusal, looked at again
        self._refused = Refused(error, digest, now)
        log.error("policy file refused, the last good one stays in force: %s", error.message)
        if self._reported == digest:
            return
        self._reported = digest
        threading.Thread(target=self._report, args=(error, now), daemon=True).start()

    def _report(self, error: PolicyError, now: datetime) -> None:
        try:
            self.s.store.audit(actor="fwbot", action="policy", result="refused", now=now, detail=error.message)
            channel = self.s.settings.alert_channel
            if channel:
                self.s.poster.post(channel, kit.Message(
                    text="fwbot refused its policy file",
                    blocks=[kit.section(f":warning: fwbot refused the policy file: {error.message}\n"
                                        f"{self.in_force_sentence()}")]))
        except Exception:  # noqa: BLE001 - reported in the log already
            log.exception("could not report the refused policy file")

    # -- what is in force -------------------------------------------------------------------------
    @property
    def loaded(self) -> Loaded:
        self.reload()
        return self._loaded

    @property
    def refused(self) -> Refused | None:
        self.reload()
        return self._refused

    @property
    def policy(self) -> Policy:
        return self.loaded.policy

    def in_force_sentence(self) -> str:
        loaded = self._loaded
        if loaded.path is None:
            return "No policy was ever loaded, so no guardrails apply."
        return f"The policy loaded from `{loaded.path}` at {iso(loaded.loaded_at)} stays in force."

    def usergroups_of(self, user_id: str) -> tuple[str, ...]:
        """The user groups with a rule that ``user_id`` is in. A group Slack cannot list right now
        counts as not theirs (so the channel's and the defaults' rules apply), and is logged."""
        groups = groups_for(self.s)
        mine = []
        for rule in self.policy.rules:
            if rule.scope == "usergroup" and rule.scope_id:
                members = groups.members(rule.scope_id)
                if members is not None and user_id in members:
                    mine.append(rule.scope_id)
        return tuple(mine)

    def for_person(self, user_id: str, channel_id: str | None) -> EffectivePolicy:
        return effective_policy(self.policy, channel=channel_id, usergroups=self.usergroups_of(user_id))

    def team_scope(self, user_id: str, channel_id: str | None) -> tuple[str, str | None, frozenset[str] | None]:
        """Whose GPUs count against ``max_gpus_per_team`` for this person here: ``("usergroup", id,
        members)`` when a user-group rule sets it, ``("channel", id, None)`` when the channel's rule
        does, else ``("account", None, None)``: the whole account (the defaults' team)."""
        policy = self.policy
        groups = [g for g in self.usergroups_of(user_id)
                  if "max_gpus_per_team" in (policy.rule_for("usergroup", g) or EMPTY.defaults).values]
        if groups:
            strictest = min(groups, key=lambda g: (policy.rule_for("usergroup", g).values["max_gpus_per_team"], g))
            return ("usergroup", strictest, groups_for(self.s).members(strictest) or frozenset())
        channel_rule = policy.rule_for("channel", channel_id) if channel_id else None
        if channel_rule is not None and "max_gpus_per_team" in channel_rule.values:
            return ("channel", channel_id, None)
        return ("account", None, None)


def policy_book(services: Services) -> PolicyBook:
    """The one policy book of these services."""
    return services.shared(PolicyBook)


class PolicyRefusal(UserError):
    """A request the policy does not allow; the message names each rule and its source."""
