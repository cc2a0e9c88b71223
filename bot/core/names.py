"""Short names users type for models and accelerators, and the full names the API wants.

Models
    ``llama-v3p1-8b-instruct``                   → ``accounts/fireworks/models/llama-v3p1-8b-instruct``
    ``acme/my-lora``                             → ``accounts/acme/models/my-lora``
    ``accounts/acme/models/my-lora``             → kept as is

A bare id means the *default account* of the context: the public ``fireworks`` catalog for base
models, the bot's own account for LoRA addons (callers pass ``default_account``). The ``x/y`` form
is accepted because it is exactly what :func:`short_model` prints for a model outside the public
catalog, so whatever the bot shows can be pasted back into a command.

Accelerators
    The API enum (``NVIDIA_H100_80GB``) or a short form (``h100``), case-insensitively.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from bot.core.errors import UserFacingError

# Fireworks resource ids (contract §1).
RESOURCE_ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?\Z")  # \Z: $ would pass "id\n"

PUBLIC_CATALOG_ACCOUNT = "fireworks"

# API enum → (short names, first one is canonical; display label).
_ACCELERATORS: dict[str, tuple[tuple[str, ...], str]] = {
    "NVIDIA_H100_80GB": (("h100", "h100-80gb"), "H100"),
    "NVIDIA_H200_141GB": (("h200", "h200-141gb"), "H200"),
    "NVIDIA_B200_180GB": (("b200", "b200-180gb"), "B200"),
    "NVIDIA_B300_288GB": (("b300", "b300-288gb"), "B300"),
    "NVIDIA_A100_80GB": (("a100", "a100-80gb"), "A100 80GB"),
    "NVIDIA_A100_40GB": (("a100-40gb",), "A100 40GB"),
    "NVIDIA_L4_24GB": (("l4", "l4-24gb"), "L4"),
    "NVIDIA_A10G_24GB": (("a10g", "a10g-24gb"), "A10G"),
    "AMD_MI300X_192GB": (("mi300x", "mi300x-192gb"), "MI300X"),
    "AMD_MI325X_256GB": (("mi325x", "mi325x-256gb"), "MI325X"),
    "AMD_MI350X_288GB": (("mi350x", "mi350x-288gb"), "MI350X"),
}

ACCELERATOR_TYPES: tuple[str, ...] = tuple(_ACCELERATORS)
"""Every API accelerator enum the bot knows."""

ACCELERATOR_SHORT_NAMES: tuple[str, ...] = tuple(names[0] for names, _ in _ACCELERATORS.values())
"""The canonical short name of each accelerator, in the same order as ``ACCELERATOR_TYPES``."""

_BY_LOWER: dict[str, str] = {}
for _enum, (_shorts, _label) in _ACCELERATORS.items():
    _BY_LOWER[_enum.lower()] = _enum
    for _short in _shorts:
        _BY_LOWER[_short] = _enum


class ModelNameError(UserFacingError, ValueError):
    """A model name the user typed that cannot be a Fireworks model; message fit for a user."""


class AcceleratorNameError(UserFacingError, ValueError):
    """An accelerator name the bot does not know; the message lists the valid short names."""


def resource_id_problem(text: str, what: str = "id") -> str | None:
    """Why ``text`` is not a valid Fireworks resource id, in plain words, or ``None`` if it is."""
    if not text:
        return f"{what} is empty"
    if len(text) > 63:
        return f"{what} `{text[:20]}…` is {len(text)} characters long; the limit is 63"
    if text != text.lower() and re.fullmatch(r"[a-z0-9-]+", text.lower()):
        return f"{what} `{text}` has uppercase letters; use lowercase only"
    bad = sorted({c for c in text if not (c.isascii() and (c.islower() or c.isdigit() or c == "-"))})
    if bad:
        shown = " ".join(f"`{c}`" for c in bad[:5])
        return f"{what} `{text}` may only contain lowercase letters, digits and `-` (found {shown})"
    if text[0].isdigit():
        return f"{what} `{text}` must start with a letter, not a digit"
    if text[0] == "-":
        return f"{what} `{text}` must start with a letter, not `-`"
    if text[-1] == "-":
        return f"{what} `{text}` must not end with `-`"
    assert RESOURCE_ID_RE.fullmatch(text)
    return None


def resolve_model(text: str, default_account: str = PUBLIC_CATALOG_ACCOUNT) -> str:
    """The full ``accounts/<a>/models/<m>`` name for what the user typed.

    Bare ids belong to ``default_account`` (the public catalog unless told otherwise); ``a/m``
    means ``accounts/a/models/m``. Raises :class:`ModelNameError` naming the rule that failed.
    """
    s = text.strip()
    parts = s.split("/")
    if len(parts) == 1:
        account, model = default_account, parts[0]
    elif len(parts) == 2:
        account, model = parts
    elif len(parts) == 4 and parts[0] == "accounts" and parts[2] == "models":
        account, model = parts[1], parts[3]
    else:
        raise ModelNameError(
            f"model `{text}` is not a model name: use a short id such as `llama-v3p1-8b-instruct`, "
            "`<account>/<model>`, or `accounts/<account>/models/<model>`"
        )
    for value, what in ((account, "account id"), (model, "model id")):
        problem = resource_id_problem(value, what)
        if problem:
            raise ModelNameError(problem)
    return f"accounts/{account}/models/{model}"


def short_model(full: str) -> str:
    """What to show for a model: the bare id for the public catalog, ``account/id`` otherwise.

    Anything that is not an ``accounts/<a>/models/<m>`` name is returned unchanged.
    """
    parts = full.split("/")
    if len(parts) == 4 and parts[0] == "accounts" and parts[2] == "models":
        return parts[3] if parts[1] == PUBLIC_CATALOG_ACCOUNT else f"{parts[1]}/{parts[3]}"
    return full


def closest_models(wanted: str, names: Iterable[str], n: int = 3) -> list[str]:
    """The catalog ids most like ``wanted`` (a full or short model name), as :func:`short_model`
    prints them, best first: close spellings (difflib), else ids that contain what was typed."""
    shorts = list(dict.fromkeys(short_model(name) for name in names))
    typed = short_model(wanted).lower()
    close = difflib.get_close_matches(typed, shorts, n=n, cutoff=0.6)
    if close:
        return close
    bare = typed.rsplit("/", 1)[-1]
    return [s for s in shorts if bare and bare in s.lower()][:n]


def unknown_model_message(wanted: str, names: Iterable[str]) -> str:
    """``unknown model `x`. Did you mean `y`?``: for a model no catalog has."""
    close = closest_models(wanted, names)
    hint = ""
    if close:
        hint = " Did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    return f"unknown model `{short_model(wanted)}`.{hint} See `/fw models` for deployable base models."


def resolve_accelerator(text: str) -> str:
    """The API enum for an accelerator typed as the enum or a short name (case-insensitive).

    Raises :class:`AcceleratorNameError` listing the valid short names.
    """
    key = text.strip().lower()
    found = _BY_LOWER.get(key) or _BY_LOWER.get(key.replace("_", "-"))
    if found is None:
        raise AcceleratorNameError(
            f"unknown accelerator type `{text}`; use one of {', '.join(ACCELERATOR_SHORT_NAMES)} "
            "(or the API name, e.g. `NVIDIA_H100_80GB`)"
        )
    return found


class PrecisionNameError(ValueError):
    """A precision Fireworks does not serve at; the message lists the ones it does."""


class RegionNameError(ValueError):
    """Text that cannot be a Fireworks region; the message says what a region looks like."""


# The serving precisions of the API's ``precision`` enum (contract §2.2), without UNSPECIFIED
# (leaving ``--precision`` out means Fireworks' default).
PRECISIONS: tuple[str, ...] = (
    "FP8", "FP16", "BF16", "FP4", "NF4", "FP8_MM", "FP8_AR", "FP8_MM_KV_ATTN", "FP8_KV", "FP8_MM_V2",
    "FP8_V2", "FP8_MM_KV_ATTN_V2", "FP4_BLOCKSCALED_MM", "FP4_MX_MOE",
)

# Regions Fireworks documents (the SDK's and the OpenAPI document's Region enums). The enum grows
# as Fireworks opens datacenters, so a name of the same form that is not listed here is passed on
# for Fireworks to accept or refuse; the list serves suggestions, the help and the deploy form.
REGIONS: tuple[str, ...] = (
    "US_IOWA_1", "US_VIRGINIA_1", "US_VIRGINIA_2", "US_ILLINOIS_1", "US_ILLINOIS_2", "US_ARIZONA_1",
    "US_ARIZONA_2", "US_ARIZONA_3", "US_TEXAS_1", "US_TEXAS_2", "US_TEXAS_3", "US_NEVADA_1",
    "US_WASHINGTON_1", "US_WASHINGTON_2", "US_WASHINGTON_3", "US_WASHINGTON_4", "US_WASHINGTON_5",
    "US_CALIFORNIA_1", "US_CALIFORNIA_2", "US_MISSOURI_1", "US_UTAH_1", "US_GEORGIA_1", "US_GEORGIA_2",
    "US_GEORGIA_3", "US_GEORGIA_4", "US_OHIO_1", "US_OHIO_2", "US_NEWYORK_1", "US_MINNESOTA_1",
    "NA_BRITISHCOLUMBIA_1", "EU_FRANKFURT_1", "EU_LONDON_1", "EU_PARIS_1", "EU_HELSINKI_1", "EU_ICELAND_1",
    "EU_ICELAND_2", "EU_ICELAND_3", "EU_NETHERLANDS_1", "AP_TOKYO_1", "AP_TOKYO_2", "AP_MALAYSIA_1",
)
# A region name: a two-letter area, a place, a number (US_IOWA_1, EU_ICELAND_DEV_1).
REGION_RE = re.compile(r"^[A-Z]{2}(?:_[A-Z0-9]+)+_[0-9]+\Z")
# The API's multi-regions: placements that are not one region.
MULTI_REGIONS: tuple[str, ...] = ("GLOBAL", "US", "EUROPE", "APAC")
REGION_EXAMPLES = "`US_IOWA_1`, `EU_FRANKFURT_1` or `AP_TOKYO_1`"


def _enum_form(text: str) -> str:
    """``fp8-mm`` → ``FP8_MM``: the API enum spelling of something typed in any case, with dashes."""
    return text.strip().upper().replace("-", "_")


def resolve_precision(text: str) -> str:
    """The API enum of a precision typed in any case (``fp8`` → ``FP8``).

    Raises :class:`PrecisionNameError` saying what was typed and what is allowed.
    """
    value = _enum_form(text)
    if value in PRECISIONS:
        return value
    close = difflib.get_close_matches(value, PRECISIONS, n=1)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    raise PrecisionNameError(
        f"`{text}` is not a precision Fireworks serves at; use one of "
        + ", ".join(f"`{p}`" for p in PRECISIONS) + f" (any case).{hint}"
    )


def resolve_region(text: str) -> str:
    """The API enum of one region typed in any case, with ``_`` or ``-`` (``us-iowa-1`` → ``US_IOWA_1``).

    Any name of a region's form is accepted (the enum is open); a multi-region or anything else
    raises :class:`RegionNameError` saying what was typed and what is allowed.
    """
    value = _enum_form(text)
    if value in MULTI_REGIONS:
        raise RegionNameError(
            f"`{text}` is a multi-region, not a single region: give one region such as {REGION_EXAMPLES} "
            f"to pin the deployment there, or leave it out for the default placement ({MULTI_REGIONS[0]})."
        )
    if REGION_RE.match(value):
        return value
    close = difflib.get_close_matches(value, REGIONS, n=1)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    raise RegionNameError(
        f"`{text}` is not a region; give one region such as {REGION_EXAMPLES} (any case, `-` or `_`)."
        f"{hint}"
    )


def short_accelerator(enum: str) -> str:
    """The canonical short name (``h100``) of an API enum; unknown enums come back lowercased."""
    entry = _ACCELERATORS.get(enum)
    return entry[0][0] if entry else enum.lower()


def accelerator_label(enum: str | None) -> str:
    """A display label such as ``H100`` or ``A100 40GB``; unknown enums are shown as given."""
    if not enum:
        return "unspecified"
    entry = _ACCELERATORS.get(enum)
    return entry[1] if entry else enum
