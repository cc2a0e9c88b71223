"""Block Kit as Slack's servers see it: parse, check limits, assign ids, find and read elements.

Pure functions over plain dicts. The checks are the ones Slack enforces on the way in (counts,
lengths, duplicate ids), not a full schema: enough that a message Slack would reject is rejected
here too, with the same error code.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from typing import Any

MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100

BLOCK_TYPES = {
    "actions", "context", "divider", "file", "header", "image", "input", "rich_text", "section",
    "video", "markdown", "context_actions", "table", "card", "alert",
}
INPUT_ELEMENT_TYPES = {
    "plain_text_input", "number_input", "email_text_input", "url_text_input", "static_select",
    "multi_static_select", "external_select", "multi_external_select", "users_select",
    "multi_users_select", "conversations_select", "multi_conversations_select", "channels_select",
    "multi_channels_select", "checkboxes", "radio_buttons", "datepicker", "timepicker",
    "datetimepicker", "overflow", "rich_text_input", "file_input",
}
INTERACTIVE_TYPES = INPUT_ELEMENT_TYPES | {"button", "workflow_button"}


class BlocksError(ValueError):
    """Slack would refuse these blocks. ``code`` is the API error, ``messages`` its details."""

    def __init__(self, code: str, messages: list[str]) -> None:
        super().__init__(f"{code}: {'; '.join(messages)}")
        self.code = code
        self.messages = messages


def parse_blocks(raw: Any, limit: int = MESSAGE_BLOCK_LIMIT) -> list[dict] | None:
    """Blocks as sent in a form field (JSON text) or a JSON body (a list). None when absent."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise BlocksError("invalid_blocks_format", ["blocks must be a JSON array"]) from None
    if not isinstance(raw, list):
        raise BlocksError("invalid_blocks_format", ["blocks must be a JSON array"])
    problems = check_blocks(raw, limit)
    if problems:
        raise BlocksError("invalid_blocks", problems)
    return raw


def check_blocks(blocks: list, limit: int) -> list[str]:
    """Slack's own objections to a list of blocks, worded like its response_metadata messages."""
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:/blocks]")
    seen_block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{i}]"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(f"[ERROR] unsupported block type {where}")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 0 < len(block_id) <= 255:
                problems.append(f"[ERROR] block_id must be 1-255 characters {where}")
            elif block_id in seen_block_ids:
                problems.append(f"[ERROR] duplicate block_id {block_id!r} {where}")
            seen_block_ids.add(block_id)
        problems.extend(_check_block(block, where))
    return problems


def _text_of(obj: Any) -> str:
    return obj.get("text", "") if isinstance(obj, dict) else ""


def _check_block(block: dict, where: str) -> list[str]:
    problems: list[str] = []
    kind = block["type"]
    if kind == "section":
        if "text" not in block and "fields" not in block:
            problems.append(f"[ERROR] must provide text or fields {where}")
        if len(_text_of(block.get("text"))) > 3000:
            problems.append(f"[ERROR] must be less than 3001 characters {where}/text")
        if len(block.get("fields") or []) > 10:
            problems.append(f"[ERROR] no more than 10 items allowed {where}/fields")
    elif kind == "header":
        text = _text_of(block.get("text"))
        if not text or len(text) > 150:
            problems.append(f"[ERROR] header text must be 1-150 characters {where}/text")
    elif kind == "actions":
        elements = block.get("elements") or []
        if not elements or len(elements) > 25:
            problems.append(f"[ERROR] actions need 1-25 elements {where}/elements")
    elif kind == "context":
        elements = block.get("elements") or []
        if not elements or len(elements) > 10:
            problems.append(f"[ERROR] context needs 1-10 elements {where}/elements")
    elif kind == "input":
        if not isinstance(block.get("element"), dict):
            problems.append(f"[ERROR] input needs an element {where}/element")
        if not _text_of(block.get("label")):
            problems.append(f"[ERROR] input needs a label {where}/label")
    elif kind == "image" and not block.get("image_url") and not block.get("slack_file"):
        problems.append(f"[ERROR] image needs image_url {where}")
    action_ids: set[str] = set()
    for element in _elements_of(block):
        action_id = element.get("action_id")
        if action_id is not None:
            if action_id in action_ids:
                problems.append(f"[ERROR] duplicate action_id {action_id!r} {where}")
            action_ids.add(action_id)
        if element.get("type") == "button":
            if not _text_of(element.get("text")) or len(_text_of(element.get("text"))) > 75:
                problems.append(f"[ERROR] button text must be 1-75 characters {where}")
            if len(str(element.get("value", ""))) > 2000:
                problems.append(f"[ERROR] button value must be less than 2001 characters {where}")
        if element.get("type") in {"static_select", "multi_static_select"} and len(element.get("options") or []) > 100:
            problems.append(f"[ERROR] no more than 100 options allowed {where}")
        if element.get("type") == "overflow" and not 1 <= len(element.get("options") or []) <= 5:
            problems.append(f"[ERROR] overflow needs 1-5 options {where}")
    return problems


def _elements_of(block: dict) -> list[dict]:
    kind = block.get("type")
    if kind == "actions":
        return [e for e in block.get("elements") or [] if isinstance(e, dict)]
    if kind == "section" and isinstance(block.get("accessory"), dict):
        return [block["accessory"]]
    if kind == "input" and isinstance(block.get("element"), dict):
        return [block["element"]]
    return []


def _short_id(seed: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    digest = hashlib.sha1(seed.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:5])


def with_ids(blocks: list[dict] | None, seed: str) -> list[dict] | None:
    """A copy in which every block has a block_id and every interactive element an action_id.

    Slack fills these in when an app leaves them out, and interaction payloads carry them.
    """
    if blocks is None:
        return None
    out = copy.deepcopy(blocks)
    for i, block in enumerate(out):
        block.setdefault("block_id", _short_id(f"{seed}/{i}"))
        for j, element in enumerate(_elements_of(block)):
            if element.get("type") in INTERACTIVE_TYPES:
                element.setdefault("action_id", _short_id(f"{seed}/{i}/{j}"))
    return out


def iter_elements(blocks: list[dict] | None) -> Iterator[tuple[dict, dict]]:
    """(block, element) for every interactive element."""
    for block in blocks or []:
        for element in _elements_of(block):
            if element.get("type") in INTERACTIVE_TYPES:
                yield block, element


def find_element(
    blocks: list[dict] | None, action_id: str, block_id: str | None = None, value: str | None = None
) -> tuple[dict, dict]:
    """The block and element a user would click; raises LookupError with what is there."""
    for block, element in iter_elements(blocks):
        if element.get("action_id") != action_id:
            continue
        if block_id is not None and block.get("block_id") != block_id:
            continue
        if value is not None and element.get("type") == "button" and element.get("value") != value:
            continue
        return block, element
    present = [(b.get("block_id"), e.get("action_id"), e.get("value")) for b, e in iter_elements(blocks)]
    raise LookupError(f"no element with action_id={action_id!r} block_id={block_id!r} value={value!r}; "
                      f"present (block_id, action_id, value): {present}")


def option_by_value(element: dict, value: str) -> dict:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    for option in options:
        if option.get("value") == value:
            return option
    raise LookupError(f"{element.get('type')} {element.get('action_id')!r} has no option with value {value!r}; "
                      f"options: {[o.get('value') for o in options]}")


def action_entry(block: dict, element: dict, action_ts: str, *, value: Any = None,
                 selected_option: Any = None) -> dict[str, Any]:
    """One item of a block_actions payload's ``actions`` list."""
    kind = element.get("type")
    entry: dict[str, Any] = {"action_id": element.get("action_id"), "block_id": block.get("block_id"),
                             "type": kind, "action_ts": action_ts}
    if kind == "button":
        entry["text"] = element.get("text")
        if "value" in element:
            entry["value"] = element["value"]
        if element.get("style"):
            entry["style"] = element["style"]
        if element.get("url"):
            entry["url"] = element["url"]
        return entry
    entry.update(state_entry(element, selected_option if selected_option is not None else value))
    entry.pop("type", None)
    entry["type"] = kind
    return entry


def state_entry(element: dict, given: Any) -> dict[str, Any]:
    """The ``state.values[block_id][action_id]`` object for a value as a user would enter it.

    ``given`` may already be a full state object (a dict with ``type``), a plain value (the text
    typed, the option value picked, a list of option values for checkboxes, a user id...), or
    None for "left empty".
    """
    kind = element.get("type")
    if isinstance(given, dict) and "type" in given:
        return given
    if isinstance(given, dict) and "value" in given and "text" in given:  # an option object
        given = given["value"]
    out: dict[str, Any] = {"type": kind}
    if kind in {"plain_text_input", "number_input", "email_text_input", "url_text_input"}:
        out["value"] = None if given is None else str(given)
    elif kind in {"static_select", "external_select", "radio_buttons", "overflow"}:
        out["selected_option"] = None if given is None else option_by_value(element, str(given))
    elif kind in {"multi_static_select", "checkboxes", "multi_external_select"}:
        values = [] if given is None else ([given] if isinstance(given, str) else list(given))
        out["selected_options"] = [option_by_value(element, str(v)) for v in values]
    elif kind == "users_select":
        out["selected_user"] = given
    elif kind == "multi_users_select":
        out["selected_users"] = list(given or [])
    elif kind in {"conversations_select", "channels_select"}:
        out["selected_conversation" if kind == "conversations_select" else "selected_channel"] = given
    elif kind in {"multi_conversations_select", "multi_channels_select"}:
        key = "selected_conversations" if kind.startswith("multi_conv") else "selected_channels"
        out[key] = list(given or [])
    elif kind == "datepicker":
        out["selected_date"] = given
    elif kind == "timepicker":
        out["selected_time"] = given
    else:
        out["value"] = given
    return out


def initial_value(element: dict) -> Any:
    """What an element holds before the user touches it, in ``state_entry``'s plain form."""
    kind = element.get("type")
    if kind in {"static_select", "radio_buttons"}:
        option = element.get("initial_option")
        return option.get("value") if option else None
    if kind in {"multi_static_select", "checkboxes"}:
        return [o.get("value") for o in element.get("initial_options") or []]
    for key in ("initial_value", "initial_user", "initial_conversation", "initial_channel", "initial_date",
                "initial_time"):
        if key in element:
            return element[key]
    if kind in {"multi_users_select"}:
        return element.get("initial_users") or []
    return None


def is_empty(entry: dict) -> bool:
    return all(value in (None, "", []) for key, value in entry.items() if key != "type")


def view_state(blocks: list[dict], given: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """``view.state.values`` for every input in a view: given values over initial ones."""
    given = given or {}
    values: dict[str, dict[str, Any]] = {}
    for block, element in iter_elements(blocks):
        if element.get("type") in {"button", "overflow", "workflow_button"}:
            continue
        block_id, action_id = block.get("block_id"), element.get("action_id")
        if block_id in given and action_id in given[block_id]:
            entry = state_entry(element, given[block_id][action_id])
        else:
            entry = state_entry(element, initial_value(element))
        values.setdefault(block_id, {})[action_id] = entry
    unknown = [(b, a) for b, actions in given.items() for a in actions if a not in values.get(b, {})]
    if unknown:
        present = [(b, a) for b, actions in values.items() for a in actions]
        raise LookupError(f"no input for (block_id, action_id) {unknown}; the view has {present}")
    return values


def missing_required(blocks: list[dict], values: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Input blocks a user must fill in before Slack lets them submit (checked by the client)."""
    errors: dict[str, str] = {}
    for block in blocks:
        if block.get("type") != "input" or block.get("optional"):
            continue
        element = block.get("element") or {}
        entry = values.get(block.get("block_id"), {}).get(element.get("action_id"))
        if entry is None or is_empty(entry):
            errors[block["block_id"]] = "Please complete this required field."
        elif element.get("type") == "number_input":
            errors.update(_number_problem(block, element, entry.get("value")))
    return errors


def _number_problem(block: dict, element: dict, raw: str | None) -> dict[str, str]:
    try:
        number = float(raw) if element.get("is_decimal_allowed") else int(str(raw))
    except ValueError:
        return {block["block_id"]: "Please enter a whole number." if not element.get("is_decimal_allowed")
                else "Please enter a number."}
    low, high = element.get("min_value"), element.get("max_value")
    if low is not None and number < float(low):
        return {block["block_id"]: f"Please enter a number of at least {low}."}
    if high is not None and number > float(high):
        return {block["block_id"]: f"Please enter a number no greater than {high}."}
    return {}
