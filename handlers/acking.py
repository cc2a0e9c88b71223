"""Listeners answer Slack first and work after.

A listener's slow part (Fireworks calls, Slack posts, opening a form) runs on fwbot's work pool
(``Services.after_ack``), as the ``/fw`` command's does: that pool lets the acks of a burst of
requests go first, and Bolt's listener threads are free again at once. A listener whose answer is
a plain ack is written without ``ack`` and decorated with :func:`acked_first`. Listeners that
answer with content (a modal's field errors) check what they must, ack, and hand the rest to
:func:`then`.

Work that opens a form with the request's ``trigger_id`` says so (``opens_view``): Slack honours
a trigger for 3 seconds only, so that work starts at once instead of waiting behind other acks.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.services.container import Services
from storage.db import database_problem

log = logging.getLogger("fwbot.handlers")

# What a person is told when their request failed in fwbot itself.
INTERNAL_ERROR = ("fwbot hit an internal error and did not finish that request. "
                  "Nothing further was changed; the error is in fwbot's log.")

# What a person is told when their request failed because fwbot's SQLite file could not be used
# (locked too long, full disk, read-only, corrupt): {file} is its name, {problem} what is wrong.
# fwbot stops at the failed read or write; whether Fireworks was already asked for a change by
# then depends on the request (a scale is sent before its result is recorded), so it says so.
DATABASE_ERROR = ("fwbot could not use its database (`{file}`: {problem}) and stopped there, so that request "
                  "was not finished. If it had already asked Fireworks for a change, that change stands "
                  "(`/fw list` shows it); nothing further was changed. The problem is in fwbot's log.")

_KW = inspect.Parameter.POSITIONAL_OR_KEYWORD


def describe_failure(error: BaseException | None, database: str | None = None) -> str:
    """The sentence for a person whose request failed in fwbot itself (without the emoji).

    A database problem (see :func:`storage.db.database_problem`) is named, and logged once as
    one line naming the file and the problem; anything else is :data:`INTERNAL_ERROR`.
    ``database`` is the file fwbot uses, for an error SQLite raised without naming it.
    """
    problem = database_problem(error, database)
    if problem is None:
        return INTERNAL_ERROR
    log.error("a request failed: %s", problem.message)
    return DATABASE_ERROR.format(file=Path(problem.path).name or problem.path, problem=problem.problem)


def tell_internal_error(body: dict, respond: Any, error: BaseException | None = None,
                        database: str | None = None) -> None:
    """Tell the person whose request failed unexpectedly (what failed, when it was the database);
    never raises."""
    try:
        text = ":boom: " + describe_failure(error, database)
        if respond is not None and (body.get("response_url") or (body.get("user") or {}).get("id")):
            respond(response_type="ephemeral", replace_original=False, text=text)
    except Exception:  # noqa: BLE001 - the error path must not raise
        log.exception("could not tell the user about an error")


def then(services: Services, fn: Callable[[], Any], body: dict, respond: Any, *, opens_view: bool = False) -> None:
    """Run ``fn`` on the work pool after the ack; an unexpected failure is logged and the user told."""
    database = services.store.db.path
    services.after_ack(fn, on_error=lambda e: tell_internal_error(body, respond, e, database),
                       wait_for_acks=not opens_view)


def acked_first(services: Services, *, opens_view: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a listener body (which takes no ``ack``): Slack is answered at once, the body runs
    on the work pool with the arguments it names (see :func:`then`), ``ctx`` among them: the
    request context (handlers/context.py)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        wanted = list(inspect.signature(fn).parameters)
        if "ack" in wanted:
            raise TypeError(f"{fn.__name__} is acknowledged for it; it must not take `ack`")

        def listener(ack: Any, body: dict, context: Any, respond: Any = None, **kwargs: Any) -> None:
            ack()
            # ``ctx``: the request context handlers.context built for this request.
            given = {"body": body, "respond": respond, "context": context, "ctx": context.get("fw"), **kwargs}
            then(services, lambda: fn(**{name: given[name] for name in wanted}), body, respond,
                 opens_view=opens_view)

        # Bolt passes a listener the arguments its signature names: ours, plus the body's.
        names = ["ack", "body", "context", "respond"] + [n for n in wanted
                                                         if n not in ("body", "respond", "context", "ctx")]
        listener.__signature__ = inspect.Signature([inspect.Parameter(n, _KW) for n in names])  # type: ignore[attr-defined]
        listener.__name__ = listener.__qualname__ = fn.__name__
        listener.__doc__ = fn.__doc__
        return listener

    return decorate
