"""What Slack makes of the text a person types into a slash command.

Slack escapes ``&``, ``<`` and ``>`` in every command's text. When the command's manifest entry
has ``should_escape: true`` ("Escape channels, users, and links sent to your app") it also turns
what it recognises into entities before the app sees them:

- ``#name`` of a channel → ``<#C123|name>``
- ``@name`` of a user (their handle or display name) → ``<@U123>``
- ``@handle`` of a user group → ``<!subteam^S123>``; ``@here``, ``@channel``, ``@everyone`` →
  ``<!here>``, ``<!channel>``, ``<!everyone>``
- a URL → ``<https://…>``; an e-mail address → ``<mailto:a@b.c|a@b.c>``

A name nobody has stays as typed (escaped), so the app sees plain text, as in Slack.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SPECIAL = {"here", "channel", "everyone"}
# A URL up to the first space or angle bracket; trailing sentence punctuation is not part of it.
_URL = r"https?://[^\s<>]+[^\s<>.,;:!?)\]'\"]"
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
# @name / #name at the start of the text or after a space or an opening bracket.
_MENTION = r"(?<![^\s(\[{\"'])([@#])([A-Za-z0-9][A-Za-z0-9._-]*)"
_TOKEN = re.compile(f"(?P<url>{_URL})|(?P<email>{_EMAIL})|{_MENTION}")


def escape_control(text: str) -> str:
    """``&``, ``<``, ``>`` as Slack sends them in any text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def as_sent(text: str, *, should_escape: bool, user: Callable[[str], str | None],
            channel: Callable[[str], tuple[str, str] | None], usergroup: Callable[[str], str | None]) -> str:
    """The ``text`` field Slack sends for a command typed as ``text``.

    ``user`` and ``usergroup`` look a name up (case-insensitively) and return its id, ``channel``
    its id and name; each returns ``None`` when the workspace has no such name.
    """
    if not should_escape:
        return escape_control(text)
    out: list[str] = []
    last = 0
    for m in _TOKEN.finditer(text):
        entity, end = _entity(m, user, channel, usergroup)
        if entity is None:
            continue
        out.append(escape_control(text[last:m.start()]))
        out.append(entity)
        last = end
    out.append(escape_control(text[last:]))
    return "".join(out)


def _entity(m: re.Match, user, channel, usergroup) -> tuple[str | None, int]:
    if m.group("url"):
        return f"<{escape_control(m.group('url'))}>", m.end()
    if m.group("email"):
        address = escape_control(m.group("email"))
        return f"<mailto:{address}|{address}>", m.end()
    sigil, name = m.group(3), m.group(4)
    end = m.end()
    # "@dana." at the end of a sentence: names may hold . - _, but not end a sentence with them.
    while name:
        found = _lookup(sigil, name, user, channel, usergroup)
        if found is not None:
            return found, end
        if name[-1] not in "._-":
            break
        name, end = name[:-1], end - 1
    return None, m.end()


def _lookup(sigil: str, name: str, user, channel, usergroup) -> str | None:
    if sigil == "#":
        found = channel(name)
        return f"<#{found[0]}|{found[1]}>" if found else None
    if name.lower() in _SPECIAL:
        return f"<!{name.lower()}>"
    uid = user(name)
    if uid:
        return f"<@{uid}>"
    gid = usergroup(name)
    return f"<!subteam^{gid}>" if gid else None
