"""List calls: a small AIP-160 ``filter``, ``order_by``, and the parameters a page token is bound to."""

from __future__ import annotations

import re
from typing import Any

from .wire import camel, get_path, invalid, parse_ts


def list_params(query: dict[str, list[str]], account: str, collection: str) -> dict[str, Any]:
    """The parameters a page token is bound to (all but pageSize and pageToken)."""
    return {"account": account, "collection": collection,
            **{k: v for k, v in sorted(query.items()) if k not in ("pageSize", "pageToken")}}


_TERM = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(!=|=|:)\s*(?:"([^"]*)"|(\S+))\s*$')


def _field_path(path: str, fields: frozenset[str] | None, what: str) -> str:
    """``path`` checked against the message's fields (its first segment) before any item is looked
    at, so an unknown field is refused whether or not anything would have matched."""
    if fields is not None and path.split(".", 1)[0] not in fields:
        raise invalid(f"unknown field in {what}: {path!r}")
    return path


def _lookup(item: dict[str, Any], path: str, fields: frozenset[str] | None, what: str) -> Any:
    """The value at ``path``; a field the message has but this object leaves out reads as unset."""
    present, value = get_path(item, path)
    if present:
        return value
    if fields is None:
        raise invalid(f"unknown field in {what}: {path!r}")
    return None


def filter_items(items: list[dict[str, Any]], expression: str | None,
            fields: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """A small AIP-160 subset: ``field = "value"`` terms (``=``, ``!=``, ``:``) joined by AND.

    ``fields``: the message's top-level fields; with them, every term's field is checked before
    anything is filtered (an unknown one is 400 even on an empty list). Without them, a field is
    known when the objects have it."""
    if not expression or not expression.strip():
        return items
    terms = []
    for raw in re.split(r"\s+AND\s+", expression.strip()):
        m = _TERM.match(raw)
        if not m:
            raise invalid(f"unsupported filter expression {raw!r}")
        path = _field_path(camel(m.group(1)), fields, "filter")
        terms.append((path, m.group(2), m.group(3) if m.group(3) is not None else m.group(4)))

    def text(value: Any) -> str:
        if value is None:
            return ""
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    out = []
    for item in items:
        ok = True
        for path, op, value in terms:
            got = _lookup(item, path, fields, "filter")
            if op == "=":
                ok = text(got) == value
            elif op == "!=":
                ok = text(got) != value
            else:
                ok = value in (got if isinstance(got, list | dict) else text(got))
            if not ok:
                break
        if ok:
            out.append(item)
    return out


def order_items(items: list[dict[str, Any]], order_by: str,
           fields: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Sort by a comma-separated ``field [asc|desc]`` list (stable, so ties keep creation order).
    ``fields`` as for :func:`filter_items`."""
    keys = []
    for part in order_by.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise invalid(f"invalid order_by {order_by!r}")
        keys.append((_field_path(camel(words[0]), fields, "order_by"), len(words) == 2 and words[1].lower() == "desc"))
    for path, desc in reversed(keys):
        def key(item: dict[str, Any], path: str = path) -> Any:
            value = _lookup(item, path, fields, "order_by")
            if path.endswith("Time") and isinstance(value, str):
                return (False, parse_ts(value, path))  # fractional seconds do not sort as text
            return (value is None, value)
        items = sorted(items, key=key, reverse=desc)
    return items
