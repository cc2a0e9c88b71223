"""The one Block Kit builder layer.

Every message, modal and App Home view fwbot sends is built from these functions, which go
through slack_sdk's models so Slack's limits are checked when ``to_dict()`` runs. Text from
users and from Fireworks is truncated here, never by callers, so worst-case inputs stay inside
the limits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.core.durations import humanize

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
HEADER_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
CONTEXT_TEXT_MAX = 3000
MESSAGE_TEXT_MAX = 3900


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    text = str(text)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def escape(text: str) -> str:
    """Escape user or API text for mrkdwn (Slack's three control characters)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 replica``, ``2 replicas``, ``0 deployments``: every count fwbot puts before a noun goes
    through here (``plural`` for nouns that do not just take an ``s``)."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def zone(name: str | None) -> ZoneInfo:
    """The timezone called ``name`` (a person's Slack ``tz``); UTC when it is unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def relative(when: datetime, now: datetime) -> str:
    """``in 2h5m``, ``3m ago``, ``now``."""

    delta = (when - now).total_seconds()
    if abs(delta) < 1:
        return "now"
    return f"in {humanize(delta)}" if delta > 0 else f"{humanize(-delta)} ago"


def people_time(when: datetime, tz: str | None, now: datetime) -> str:
    """A time as a person reads it: local to ``tz`` with the zone, then how far off it is —
    ``Thu 3 Dec 20:28 CET (Europe/Berlin), in 6d23h``; the year only when it is not this one."""
    z = zone(tz)
    local = when.astimezone(z)
    year = f" {local.year}" if local.year != now.astimezone(z).year else ""
    abbrev = local.strftime("%Z")
    label = f"{abbrev} ({z.key})" if abbrev and abbrev != z.key else z.key
    return f"{local:%a} {local.day} {local:%b}{year} {local:%H:%M} {label}, {relative(when, now)}"


def mention(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "nobody"


def channel_link(channel_id: str | None) -> str:
    return f"<#{channel_id}>" if channel_id else "no channel"


def slack_date(when, fmt: str = "{date_short_pretty} {time}", fallback: str | None = None) -> str:
    """A date Slack renders in the reader's own timezone."""
    ts = int(when.timestamp())
    return f"<!date^{ts}^{fmt}|{fallback or when.strftime('%Y-%m-%d %H:%M UTC')}>"


# -- blocks ----------------------------------------------------------------------------------
def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=clip(text, HEADER_MAX), emoji=True))


def section(
    text: str | None = None,
    *,
    fields: Sequence[str] = (),
    accessory: Any = None,
    block_id: str | None = None,
) -> SectionBlock:
    return SectionBlock(
        text=MarkdownTextObject(text=clip(text, SECTION_TEXT_MAX)) if text else None,
        fields=[MarkdownTextObject(text=clip(f, FIELD_TEXT_MAX)) for f in list(fields)[:10]] or None,
        accessory=accessory,
        block_id=block_id,
    )


def long_text(text: str, limit: int = SECTION_TEXT_MAX) -> list[SectionBlock]:
    """Sections for a long mrkdwn text, split between paragraphs (or lines) so none is cut."""
    chunks: list[str] = []
    current = ""
    for para in text.split("\n\n"):
        for piece in [para] if len(para) <= limit else para.split("\n"):
            candidate = f"{current}\n\n{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
                continue
            if current:
                chunks.append(current)
            current = clip(piece, limit)
    if current:
        chunks.append(current)
    return [section(c) for c in chunks]


def context(*parts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(p, CONTEXT_TEXT_MAX)) for p in parts[:10] if p])


def divider() -> DividerBlock:
    return DividerBlock()


def confirm(title: str, text: str, ok: str = "Yes", deny: str = "Cancel", danger: bool = True) -> ConfirmObject:
    return ConfirmObject(
        title=clip(title, 100),
        text=MarkdownTextObject(text=clip(text, 300)),
        confirm=clip(ok, 30),
        deny=clip(deny, 30),
        style="danger" if danger else "primary",
    )


def button(
    text: str,
    action_id: str,
    value: str | dict | None = None,
    *,
    style: str | None = None,
    confirm_with: ConfirmObject | None = None,
    url: str | None = None,
) -> ButtonElement:
    if isinstance(value, dict):
        value = json.dumps(value, separators=(",", ":"), sort_keys=True)
    if value is not None and len(value) > BUTTON_VALUE_MAX:
        raise ValueError(f"button value for {action_id} is {len(value)} chars; store it and pass a token")
    return ButtonElement(
        text=clip(text, BUTTON_TEXT_MAX),
        action_id=action_id,
        value=value,
        style=style,
        confirm=confirm_with,
        url=url,
    )


def option(text: str, value: str, description: str | None = None) -> Option:
    return Option(
        text=PlainTextObject(text=clip(text, OPTION_TEXT_MAX)),
        value=clip(value, OPTION_VALUE_MAX),
        description=PlainTextObject(text=clip(description, OPTION_TEXT_MAX)) if description else None,
    )


def select(action_id: str, options: Sequence[Option], placeholder: str, initial: Option | None = None):
    return StaticSelectElement(
        action_id=action_id,
        placeholder=PlainTextObject(text=clip(placeholder, 150)),
        options=list(options)[:100],
        initial_option=initial,
    )


def actions(*elements: Any, block_id: str | None = None) -> ActionsBlock | None:
    els = [e for e in elements if e is not None][:25]
    return ActionsBlock(elements=els, block_id=block_id) if els else None


# -- whole surfaces --------------------------------------------------------------------------
@dataclass
class Message:
    """A message ready for chat.postMessage/chat.update/respond: fallback text and blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """Validated JSON-ready ``text`` and ``blocks`` (raises on any Block Kit limit)."""
        blocks = [b for b in self.blocks if b is not None]
        if len(blocks) > MESSAGE_MAX_BLOCKS:
            # Keep the head and say how much was left out, rather than fail to post.
            omitted = len(blocks) - (MESSAGE_MAX_BLOCKS - 1)
            blocks = blocks[: MESSAGE_MAX_BLOCKS - 1] + [context(f"…and {omitted} more blocks not shown")]
        return {"text": clip(self.text, MESSAGE_TEXT_MAX), "blocks": [b.to_dict() for b in blocks]}


def footer_context(simulated: bool, *extra: str) -> ContextBlock:
    """The context line every fwbot message ends with."""
    parts = [p for p in extra if p]
    if simulated:
        parts.append(":test_tube: simulated Fireworks")
    return context(*parts) if parts else context("fwbot")


def modal(
    title: str,
    blocks: Iterable[Block],
    *,
    callback_id: str,
    submit: str | None = "Submit",
    close: str = "Cancel",
    private_metadata: str = "",
    external_id: str | None = None,
    notify_on_close: bool = False,
) -> dict[str, Any]:
    blocks = [b for b in blocks if b is not None]
    if len(blocks) > VIEW_MAX_BLOCKS:
        raise ValueError(f"modal {callback_id} has {len(blocks)} blocks (max {VIEW_MAX_BLOCKS})")
    view = View(
        type="modal",
        title=PlainTextObject(text=clip(title, 24)),
        submit=PlainTextObject(text=clip(submit, 24)) if submit else None,
        close=PlainTextObject(text=clip(close, 24)),
        callback_id=callback_id,
        private_metadata=private_metadata,
        external_id=external_id,
        notify_on_close=notify_on_close,
        blocks=blocks,
    )
    return view.to_dict()


def home(blocks: Iterable[Block]) -> dict[str, Any]:
    blocks = [b for b in blocks if b is not None]
    if len(blocks) > VIEW_MAX_BLOCKS:
        omitted = len(blocks) - (VIEW_MAX_BLOCKS - 1)
        blocks = blocks[: VIEW_MAX_BLOCKS - 1] + [context(f"…and {omitted} more not shown; use `/fw list all`")]
    return View(type="home", blocks=blocks).to_dict()


# -- modal inputs ----------------------------------------------------------------------------
def input_block(label: str, element: Any, *, block_id: str, optional: bool = False, hint: str | None = None,
                dispatch_action: bool = False):
    from slack_sdk.models.blocks import InputBlock

    return InputBlock(
        label=PlainTextObject(text=clip(label, 2000)),
        element=element,
        block_id=block_id,
        optional=optional,
        hint=PlainTextObject(text=clip(hint, 2000)) if hint else None,
        dispatch_action=dispatch_action,
    )


def text_input(action_id: str, *, initial: str | None = None, placeholder: str | None = None,
               dispatch: bool = False):
    from slack_sdk.models.blocks import PlainTextInputElement

    return PlainTextInputElement(
        action_id=action_id,
        initial_value=initial or None,
        placeholder=PlainTextObject(text=clip(placeholder, 150)) if placeholder else None,
        dispatch_action_config={"trigger_actions_on": ["on_enter_pressed"]} if dispatch else None,
    )


def number_input(action_id: str, *, initial: int | None = None, minimum: int = 0, maximum: int | None = None,
                 dispatch: bool = False):
    from slack_sdk.models.blocks import NumberInputElement

    return NumberInputElement(
        action_id=action_id,
        is_decimal_allowed=False,
        initial_value=str(initial) if initial is not None else None,
        min_value=str(minimum),
        max_value=str(maximum) if maximum is not None else None,
        dispatch_action_config={"trigger_actions_on": ["on_enter_pressed", "on_character_entered"]}
        if dispatch else None,
    )


def user_select(action_id: str, placeholder: str, *, initial: str | None = None):
    from slack_sdk.models.blocks import UserSelectElement

    return UserSelectElement(
        action_id=action_id,
        placeholder=PlainTextObject(text=clip(placeholder, 150)),
        initial_user=initial,
    )
