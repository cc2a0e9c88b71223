"""``/fw list`` and its *Next page* button: Fireworks filters, sorts and pages; fwbot shows a page.

``--filter`` (AIP-160), ``--order-by`` and ``--show-deleted`` go to Fireworks' list call as they
are, so the server does the filtering. ``all`` reads one Fireworks page per page shown, with
Fireworks' own token for the next one and its count of everything that matches. ``mine`` keeps
the deployments the reader owns in fwbot: it reads Fireworks' pages from where the shown page
starts to the end (to count them) and remembers, as the next page's start, the Fireworks page
and the position in it of the first deployment it did not show. Either way a page is never cut
silently: there is a count, a "Showing 21–40 of 250" and a *Next page* button.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from bot.adapters.fireworks import FireworksError
from bot.core import requests
from bot.core.pricing import deployment_worst_case
from bot.services.container import Services
from bot.services.context import Context
from bot.services.deployments import UserError
from bot.ui import deployments as ui
from bot.ui import kit
from bot.ui.kit import BUTTON_VALUE_MAX, Message

log = logging.getLogger("fwbot.listing")

PAGE = ui.LIST_PAGE  # deployments shown per page
SCAN_PAGE = 200  # Fireworks' largest page, for `mine`, which reads every page from where it starts
TOKEN_MAX = 1500  # a Fireworks page token longer than this is not put in a button


@dataclass(frozen=True)
class ListQuery:
    scope: str
    filter: str | None
    order_by: str | None
    show_deleted: bool


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: Fireworks' token of the page to read first (``None``: the first page),
    how many of that page's deployments were shown already, and how many rows came before."""

    token: str | None = None
    skip: int = 0
    shown: int = 0


@dataclass(frozen=True)
class Page:
    rows: list[tuple[dict, float | None, str | None]]
    total: int | None
    next: Cursor | None


def do_list(ctx: Context, cmd: requests.ListCommand) -> Message:
    query = ListQuery(cmd.scope, cmd.filter, cmd.order_by, cmd.show_deleted)
    return render(ctx, query, Cursor())


def render(ctx: Context, query: ListQuery, cursor: Cursor) -> Message:
    page = read_page(ctx, query, cursor)
    next_value = None
    if page.next is not None:
        value = {"s": query.scope, "f": query.filter, "o": query.order_by, "d": int(query.show_deleted),
                 "t": page.next.token, "k": page.next.skip, "n": page.next.shown}
        encoded = json.dumps(value, separators=(",", ":"), sort_keys=True)
        if len(encoded) <= BUTTON_VALUE_MAX and len(page.next.token or "") <= TOKEN_MAX:
            next_value = value
    return ui.deployment_list(page.rows, scope=query.scope, simulated=ctx.services.simulated, total=page.total,
                              start=cursor.shown, filter=query.filter, order_by=query.order_by,
                              show_deleted=query.show_deleted, next_page=next_value, more=page.next is not None)


def read_page(ctx: Context, query: ListQuery, cursor: Cursor) -> Page:
    s = ctx.services
    try:
        if query.scope == "mine":
            return _mine(ctx, query, cursor)
        fw = s.gateway.deployment_page(filter=query.filter, order_by=query.order_by,
                                       show_deleted=query.show_deleted, page_size=PAGE, page_token=cursor.token)
    except FireworksError as e:
        if e.status == 400:
            raise UserError(refusal(ctx, query, cursor, e)) from None
        raise
    rows = [(w, deployment_worst_case(w, s.prices), _owner(s, w)) for w in fw.items]
    more = bool(fw.next_token and fw.items)
    return Page(rows, fw.total, Cursor(fw.next_token, 0, cursor.shown + len(rows)) if more else None)


def _owner(services: Services, wire: dict) -> str | None:
    record = services.store.deployment((wire.get("name") or "").rsplit("/", 1)[-1])
    return record.owner if record else None


def _mine(ctx: Context, query: ListQuery, cursor: Cursor) -> Page:
    """The reader's deployments from ``cursor`` on: every Fireworks page from there to the end is
    read (the count needs them), a page's worth is kept, and the next page starts at the first one
    not kept (the token of its Fireworks page and its place there)."""
    s, me = ctx.services, ctx.actor.user_id
    mine = {r.id for r in s.store.deployments(owner=me, include_gone=True)}
    rows: list[tuple[dict, float | None, str | None]] = []
    later = 0
    nxt: Cursor | None = None
    token, skip = cursor.token, cursor.skip
    while True:
        fw = s.gateway.deployment_page(filter=query.filter, order_by=query.order_by,
                                       show_deleted=query.show_deleted, page_size=SCAN_PAGE, page_token=token)
        for index, wire in enumerate(fw.items):
            if index < skip or (wire.get("name") or "").rsplit("/", 1)[-1] not in mine:
                continue
            if len(rows) < PAGE:
                rows.append((wire, deployment_worst_case(wire, s.prices), me))
                continue
            if nxt is None:
                nxt = Cursor(token, index, cursor.shown + len(rows))
            later += 1
        if not fw.next_token or not fw.items:
            break
        token, skip = fw.next_token, 0
    return Page(rows, cursor.shown + len(rows) + later, nxt)


def refusal(ctx: Context, query: ListQuery, cursor: Cursor, error: FireworksError) -> str:
    """One sentence naming what Fireworks refused: the filter, the order or the page's cursor. When
    more than one could be to blame, each is tried alone (one deployment asked for), rather than
    reading Fireworks' wording."""
    said = kit.escape(kit.clip(error.message, 300))
    gateway = ctx.services.gateway

    def accepted(**kwargs) -> bool:
        try:
            gateway.deployment_page(page_size=1, show_deleted=query.show_deleted, **kwargs)
        except FireworksError:
            return False
        return True

    if cursor.token and accepted(filter=query.filter, order_by=query.order_by):
        return (f"Fireworks no longer accepts where this page starts ({said}); the list may have changed since. "
                "Run `/fw list` again.")
    if query.filter and (not query.order_by or not accepted(filter=query.filter)):
        return (f"Fireworks rejected the filter `{kit.escape(query.filter)}`: {said}. Nothing is listed; "
                "`/fw help list` shows the syntax.")
    if query.order_by:
        return (f"Fireworks rejected the order `--order-by {kit.escape(query.order_by)}`: {said}. Nothing is "
                "listed; sort by a deployment's fields, e.g. `create_time desc` or `display_name`.")
    return f"Fireworks refused the list: {said}"


def _cursor_of(data: dict) -> tuple[ListQuery, Cursor] | None:
    """The query and start of a Next page button's value, or None for one fwbot did not make."""
    scope, filter_, order, deleted = data.get("s"), data.get("f"), data.get("o"), data.get("d")
    token, skip, shown = data.get("t"), data.get("k"), data.get("n")
    if (scope not in ("mine", "all") or not isinstance(filter_, str | None) or not isinstance(order, str | None)
            or deleted not in (0, 1) or isinstance(deleted, bool) or not isinstance(token, str | None)
            or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in (skip, shown))):
        return None
    return ListQuery(scope, filter_ or None, order or None, bool(deleted)), Cursor(token or None, skip, shown)
