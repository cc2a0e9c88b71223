"""The Fireworks gateway: a thin layer over the official ``fireworks-ai`` SDK.

Control-plane calls go through the SDK; the metrics (Prometheus text) and billingUsage
endpoints, which the SDK does not cover, go through httpx. Every failure becomes a
``FireworksError`` carrying Fireworks' own message, so handlers can show it to users as is.
All objects are returned in wire form (camelCase dicts), the form the store mirrors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import fireworks
import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.core.clock import iso
from bot.core.errors import UserFacingError

DEFAULT_BASE_URL = "https://api.fireworks.ai"
REQUEST_RATE_METRIC = "request_counter_total:sum_by_deployment"
# One request-rate sample line of the Prometheus text format: name, optional {labels}, value.
_RATE_SAMPLE = re.compile("^" + re.escape(REQUEST_RATE_METRIC) + r"(?:\{(.*)\})?[ \t]+(\S+)", re.M)
# A line that starts something else after the request-rate samples: the text format keeps a
# metric's lines in one group, so once one of these follows them, there are no more to read.
_AFTER_RATES = re.compile(
    "\n(?!" + re.escape(REQUEST_RATE_METRIC) + r"[{ \t]|# (?:TYPE|HELP) " + re.escape(REQUEST_RATE_METRIC)
    + r"[ \t]|[ \t]*\r?\n|[ \t]*$)")
METRICS_CHUNK = 1 << 20

# Fields compared when a create answers 409: the same id with the same ask is our own retry.
_IDEMPOTENCY_FIELDS = (
    ("baseModel", "base_model"),
    ("minReplicaCount", "min_replica_count"),
    ("maxReplicaCount", "max_replica_count"),
    ("acceleratorType", "accelerator_type"),
    ("acceleratorCount", "accelerator_count"),
    ("displayName", "display_name"),
    ("enableAddons", "enable_addons"),
    ("description", "description"),
    ("precision", "precision"),
    ("maxContextLength", "max_context_length"),
    ("draftModel", "draft_model"),
    ("draftTokenCount", "draft_token_count"),
    ("ngramSpeculationLength", "ngram_speculation_length"),
    ("enableMtp", "enable_mtp"),
    ("enableSessionAffinity", "enable_session_affinity"),
)


# What a call to Fireworks can fail with; anything else is a bug in fwbot and is not disguised.
_API_ERRORS = (fireworks.APIError, httpx.HTTPError)


class FireworksError(UserFacingError):
    """A failed Fireworks call, with Fireworks' own message."""

    prefix = "Fireworks says: "

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in (408, 429) or self.status >= 500


class NotFound(FireworksError):
    pass


class AlreadyExists(FireworksError):
    pass


class RateLimited(FireworksError):
    pass


class QuotaExceeded(FireworksError):
    """429 RESOURCE_EXHAUSTED for the account's GPU quota: waiting does not help, so not retryable.

    ``limit``, ``in_use``, ``requested``, ``replicas`` and ``per_replica`` come from the error's
    ErrorInfo metadata when Fireworks sends it (``None`` otherwise)."""

    def __init__(self, message: str, *, info: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        info = info or {}
        self.accelerator = info.get("acceleratorType") or None
        self.quota_id = info.get("quota") or None
        self.limit = _int_or_none(info.get("limit"))
        self.in_use = _int_or_none(info.get("inUse"))
        self.requested = _int_or_none(info.get("requested"))
        self.replicas = _int_or_none(info.get("replicas"))
        self.per_replica = _int_or_none(info.get("acceleratorsPerReplica"))

    @property
    def retryable(self) -> bool:
        return False

    def sentence(self, verb: str = "change") -> str:
        """The refusal in one sentence: the quota, what is in use and what ``verb`` asked for.

        A deploy asks for GPUs on top of what is in use; anything else (update, scale, undelete)
        for the deployment's total, which Fireworks counts apart from the other deployments'.
        """
        if self.limit is None or self.requested is None or not self.accelerator:
            return f"Fireworks refused: the account's GPU quota is used up ({self.message})."
        new = verb == "deploy"
        asked = f"{self.requested}{' more' if new else ' in all'}"
        if self.replicas is not None and self.per_replica is not None:
            asked += f" ({self.replicas} replica{'' if self.replicas == 1 else 's'} × {self.per_replica})"
        in_use = ("some are in use" if self.in_use is None
                  else f"{self.in_use} {'is' if self.in_use == 1 else 'are'} in use")
        if not new:
            in_use += " by other deployments"
        return (f"Fireworks refused: this account's quota is {self.limit} × {self.accelerator} and {in_use}; "
                f"the {verb} asked for {asked}.")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _quota_info(body: Any) -> dict[str, str] | None:
    """The ErrorInfo metadata of a GPU-quota refusal, or ``None`` when ``body`` is not one."""
    inner = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        return None
    for detail in inner.get("details") or []:
        if isinstance(detail, dict) and isinstance(detail.get("metadata"), dict) and (
                detail.get("reason") == "GPU_QUOTA_EXCEEDED" or "quota" in detail["metadata"]):
            return {str(k): str(v) for k, v in detail["metadata"].items()}
    if "quota" in str(inner.get("message") or "").lower():
        return {}
    return None


def _status_error(status: int, body: Any, headers: httpx.Headers | None) -> FireworksError:
    """The domain error for an HTTP error answer (shared by the SDK and the raw-HTTP paths)."""
    message, code = _error_message(body, f"Fireworks answered HTTP {status}")
    retry_after = _retry_after(headers)
    if status == 429 and (info := _quota_info(body)) is not None:
        return QuotaExceeded(message, info=info, status=status, code=code, retry_after=retry_after)
    cls = {404: NotFound, 409: AlreadyExists, 429: RateLimited}.get(status, FireworksError)
    return cls(message, status=status, code=code, retry_after=retry_after)


class ScalingUp(FireworksError):
    """The deployment is scaled to zero; the request started a cold start."""


def _error_message(body: Any, fallback: str) -> tuple[str, int | None]:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            code = inner.get("code")
            return str(inner.get("message") or fallback), code if isinstance(code, int) else None
        if isinstance(inner, str):
            return inner, None
    return fallback, None


def _retry_after(headers: httpx.Headers | None) -> float | None:
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def translate(exc: Exception) -> FireworksError:
    """Turn an SDK or httpx exception into a domain error."""
    if isinstance(exc, FireworksError):
        return exc
    if isinstance(exc, fireworks.APIStatusError):
        return _status_error(exc.status_code, exc.body, exc.response.headers)
    if isinstance(exc, fireworks.APITimeoutError | httpx.TimeoutException):
        return FireworksError("Fireworks did not answer in time; nothing is known to have changed")
    if isinstance(exc, fireworks.APIConnectionError | httpx.TransportError):
        return FireworksError("could not reach Fireworks (connection failed)")
    return FireworksError(str(exc) or exc.__class__.__name__)


def _wire(obj: Any) -> dict:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict(mode="json")


def request_rates_in(chunks: Iterable[bytes]) -> dict[str, float]:
    """Requests per second by deployment id in Prometheus exposition text, read chunk by chunk.

    The request-rate group's lines are found with one regular expression per chunk, and reading
    stops at the first line after the group: the rest of the exposition (often megabytes of other
    metrics) is never parsed. Only the group's lines go to prometheus-client's text parser, which
    reads labels, escapes and values (bench/README.md: "metrics scrape").
    """
    lines: list[str] = []
    tail = b""
    inside = False
    for chunk in chunks:
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        if not cut:
            tail = data
            continue
        block, tail = data[:cut].decode("utf-8", "replace"), data[cut:]
        start = 0
        if not inside:
            first = _RATE_SAMPLE.search(block)
            if first is None:
                continue
            inside, start = True, first.start()
        # "\n" + block: index i of the block is i + 1 here, so a match's start is where its line
        # begins in the block.
        after = _AFTER_RATES.search("\n" + block, start)
        lines.extend(m.group(0) for m in _RATE_SAMPLE.finditer(block, start, after.start() if after else len(block)))
        if after:
            return _rates(lines)
    if tail:  # a last line without "\n"
        lines.extend(m.group(0) for m in _RATE_SAMPLE.finditer(tail.decode("utf-8", "replace")))
    return _rates(lines)


def _rates(lines: list[str]) -> dict[str, float]:
    """Sum the request-rate samples by deployment; a line the parser refuses is skipped alone."""
    rates: dict[str, float] = {}
    try:
        samples = [s for f in text_string_to_metric_families("\n".join(lines) + "\n") for s in f.samples]
    except ValueError:
        samples = []
        for line in lines:
            with contextlib.suppress(ValueError):
                samples.extend(s for f in text_string_to_metric_families(line + "\n") for s in f.samples)
    for sample in samples:
        if sample.name != REQUEST_RATE_METRIC:
            continue
        dep = sample.labels.get("deployment_id") or deployment_id_of(sample.labels.get("deployment", ""))
        if dep:
            rates[dep] = rates.get(dep, 0.0) + float(sample.value)
    return rates


class RawPage:
    """One page of ``deployments.list`` as sent: its bytes, their digest, and its next token.

    A page whose digest the reader already knew is not decoded until :meth:`items` is called
    (the reconcile loop's quiet-page shortcut; bench/README.md).
    """

    __slots__ = ("content", "digest", "known", "next_token", "empty", "_items")

    def __init__(self, content: bytes, known: Mapping[bytes, str | None]) -> None:
        self.content = content
        self.digest = hashlib.blake2b(content, digest_size=16).digest()
        self.known = self.digest in known
        self._items: list[dict] | None = None
        if self.known:
            self.next_token, self.empty = known[self.digest], False
        else:
            self.next_token, self.empty = self._decode()

    def _decode(self) -> tuple[str | None, bool]:
        page = json.loads(self.content)
        self._items = page.get("deployments") or []
        return page.get("nextPageToken") or None, not self._items

    def items(self) -> list[dict]:
        """The page's deployments (decoded now if they were not)."""
        if self._items is None:
            self._decode()
        assert self._items is not None
        return self._items


def deployment_id_of(name: str) -> str:
    return name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DeploymentPage:
    """One page of a deployment listing: its deployments (wire form), the token of the next page
    (``None`` on the last) and how many match in all, as Fireworks counts them (``None``: not said)."""

    items: list[dict]
    next_token: str | None
    total: int | None


@dataclass(frozen=True)
class Completion:
    text: str
    latency_s: float
    prompt_tokens: int | None
    completion_tokens: int | None


class FireworksGateway:
    """All of fwbot's calls to Fireworks."""

    def __init__(
        self,
        *,
        api_key: str,
        account_id: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        self.client = fireworks.Fireworks(
            api_key=api_key,
            account_id=account_id,
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=5.0),
            max_retries=max_retries,
        )
        # The SDK sends inference to "{base_url}/v1/..." when base_url is given, so the data
        # plane gets a client of its own rooted at "/inference".
        self.inference = fireworks.Fireworks(
            api_key=api_key,
            account_id=account_id,
            base_url=f"{self.base_url}/inference",
            timeout=httpx.Timeout(timeout, connect=5.0),
            max_retries=0,
        )
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=5.0),
        )
        self.account_id = account_id or self._discover_account()

    def close(self) -> None:
        self.client.close()
        self.inference.close()
        self.http.close()

    def _discover_account(self) -> str:
        try:
            page = self.client.accounts.list(page_size=2)
        except _API_ERRORS as e:
            raise translate(e) from e
        accounts = [a for a in page]  # noqa: C416 - iterate the SDK page
        if not accounts:
            raise FireworksError("this API key has no Fireworks account; set FIREWORKS_ACCOUNT_ID")
        return deployment_id_of(_wire(accounts[0])["name"])

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _API_ERRORS as e:
            raise translate(e) from e
        except ValueError as e:
            # The SDK refuses an empty id before sending anything; nothing has an empty id.
            if "non-empty value" in str(e):
                raise NotFound("there is nothing with an empty id", status=404) from e
            raise

    def deployment_name(self, deployment_id: str) -> str:
        return f"accounts/{self.account_id}/deployments/{deployment_id}"

    # -- deployments ---------------------------------------------------------------------------
    def create_deployment(self, deployment_id: str, fields: dict[str, Any], *, validate_only: bool = False) -> dict:
        """Create a deployment under an id the bot chose.

        The SDK sends no idempotency key, so a create whose response was lost and was retried
        answers 409 for our own deployment: read it back and accept it when it is what we asked.
        """
        kwargs: dict[str, Any] = dict(fields)
        if validate_only:
            kwargs["validate_only"] = True
        try:
            return _wire(self._call(self.client.deployments.create, deployment_id=deployment_id, **kwargs))
        except AlreadyExists:
            if validate_only:
                raise AlreadyExists(f"a deployment named {deployment_id} already exists", status=409) from None
            existing = self.get_deployment(deployment_id)
            if existing.get("state") in ("DELETED", "DELETING") or not self._same_ask(existing, fields):
                raise AlreadyExists(
                    f"a different deployment named {deployment_id} already exists; choose another --deployment-id",
                    status=409,
                ) from None
            return existing

    @staticmethod
    def _same_ask(existing: dict, fields: dict[str, Any]) -> bool:
        for wire_key, field in _IDEMPOTENCY_FIELDS:
            if field in fields and fields[field] is not None and existing.get(wire_key) != fields[field]:
                return False
        return True

    def get_deployment(self, deployment_id: str) -> dict:
        return _wire(self._call(self.client.deployments.get, deployment_id))

    def list_deployments(self, *, show_deleted: bool = False, page_size: int = 200) -> list[dict]:
        """Every deployment, all pages."""
        deployments: list[dict] = []
        for page in self.deployment_pages(show_deleted=show_deleted, page_size=page_size):
            deployments.extend(page)
        return deployments

    def deployment_pages(self, *, show_deleted: bool = False, page_size: int = 200) -> Iterator[list[dict]]:
        """Every deployment, one page at a time, so a caller can finish with a page before the
        next is read instead of holding the whole account in memory."""
        for page in self.raw_deployment_pages(show_deleted=show_deleted, page_size=page_size):
            yield page.items()

    def raw_deployment_pages(self, *, show_deleted: bool = False, page_size: int = 200,
                             known: Mapping[bytes, str | None] | None = None) -> Iterator[RawPage]:
        """Every page of the listing as Fireworks sent it, with a digest of its bytes.

        ``known`` maps the digests of pages the caller has read before to the next-page token
        each carried: such a page is not decoded here (the same bytes carry the same token), and
        the caller may not need to decode it at all.

        Pages are read through the SDK's raw responses: its retries and errors, not its models
        (0.3–0.7 ms a deployment to validate and dump back to the same dicts; bench/README.md).
        """
        known = known or {}

        def fetch(token: str | None) -> RawPage:
            kwargs: dict[str, Any] = {"page_size": page_size, "show_deleted": show_deleted}
            if token:
                kwargs["page_token"] = token
            try:
                content = self.client.deployments.with_raw_response.list(**kwargs).http_response.content
            except _API_ERRORS as e:
                raise translate(e) from e
            return RawPage(content, known)

        # The next page is asked for while the caller works on this one, so Fireworks' time to
        # answer overlaps ours; at most two pages are held at once.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fireworks-pages") as ahead:
            pending = ahead.submit(fetch, None)
            while True:
                page = pending.result()
                if page.next_token and not page.empty:
                    pending = ahead.submit(fetch, page.next_token)
                yield page
                if not page.next_token or page.empty:
                    return

    def deployment_page(self, *, filter: str | None = None, order_by: str | None = None,
                        show_deleted: bool = False, page_size: int = 50,
                        page_token: str | None = None) -> DeploymentPage:
        """One page of the listing, filtered and ordered by Fireworks (``filter`` is AIP-160,
        ``order_by`` firectl's ``field [desc],…``), with Fireworks' own token for the next page and
        its count of everything that matches (``totalSize``; ``None`` when it sends none)."""
        kwargs: dict[str, Any] = {"page_size": page_size}
        if show_deleted:
            kwargs["show_deleted"] = True
        if filter:
            kwargs["filter"] = filter
        if order_by:
            kwargs["order_by"] = order_by
        if page_token:
            kwargs["page_token"] = page_token
        try:
            content = self.client.deployments.with_raw_response.list(**kwargs).http_response.content
        except _API_ERRORS as e:
            raise translate(e) from e
        page = json.loads(content)
        total = page.get("totalSize")
        return DeploymentPage(list(page.get("deployments") or []), page.get("nextPageToken") or None,
                              int(total) if isinstance(total, int | str) and str(total).isdigit() else None)

    def update_deployment(self, deployment_id: str, fields: dict[str, Any], update_mask: str) -> dict:
        """PATCH the changed fields with an explicit ``updateMask`` (base model included, as the API requires)."""
        current = self.get_deployment(deployment_id)
        kwargs = dict(fields)
        kwargs.setdefault("base_model", current.get("baseModel"))
        return _wire(
            self._call(
                self.client.deployments.update,
                deployment_id,
                extra_query={"updateMask": update_mask},
                **kwargs,
            )
        )

    def scale_deployment(self, deployment_id: str, replicas: int) -> None:
        self._call(self.client.deployments.scale, deployment_id, replica_count=replicas)

    def delete_deployment(self, deployment_id: str, *, hard: bool = False, ignore_checks: bool = False) -> None:
        kwargs: dict[str, Any] = {}
        if hard:
            kwargs["hard"] = True
        if ignore_checks:
            kwargs["ignore_checks"] = True
        self._call(self.client.deployments.delete, deployment_id, **kwargs)

    def undelete_deployment(self, deployment_id: str) -> dict:
        return _wire(self._call(self.client.deployments.undelete, deployment_id, body={}))

    # -- models, shapes, LoRA ------------------------------------------------------------------
    def list_models(self, account: str = "fireworks") -> list[dict]:
        try:
            return [_wire(m) for m in self.client.models.list(account_id=account, page_size=200)]
        except _API_ERRORS as e:
            raise translate(e) from e

    def get_model(self, name: str) -> dict:
        account, _, model_id = name.removeprefix("accounts/").partition("/models/")
        return _wire(self._call(self.client.models.get, model_id, account_id=account))

    def match_shapes(self, base_model: str, *, enable_addons: bool = False) -> list[dict]:
        resp = self._call(
            self.client.deployment_shape_versions.match,
            create_deployment_request={
                "parent": f"accounts/{self.account_id}",
                "deployment": {"base_model": base_model, "enable_addons": enable_addons},
            },
        )
        return list(_wire(resp).get("deploymentShapeVersions") or [])

    def load_lora(self, model: str, deployment_id: str, *, public: bool = False,
                  replace_merged_addon: bool = False) -> dict:
        """Load an addon onto a deployment (firectl load-lora): ``public`` makes it publicly
        available for inference; ``replace_merged_addon`` (``?replaceMergedAddon=true``) is what a
        hot-reload deployment needs, and replaces the addon it has."""
        kwargs: dict[str, Any] = {"model": model, "deployment": self.deployment_name(deployment_id)}
        if public:
            kwargs["public"] = True
        if replace_merged_addon:
            kwargs["replace_merged_addon"] = True
        return _wire(self._call(self.client.lora.load, **kwargs))

    def list_deployed_models(self, deployment_id: str | None = None, *, model: str | None = None) -> list[dict]:
        kwargs: dict[str, Any] = {"page_size": 200}
        terms = []
        if deployment_id:
            terms.append(f'deployment="{self.deployment_name(deployment_id)}"')
        if model:
            terms.append(f'model="{model}"')
        if terms:
            kwargs["filter"] = " AND ".join(terms)
        try:
            items = [_wire(m) for m in self.client.lora.list(**kwargs)]
        except _API_ERRORS as e:
            raise translate(e) from e
        # The filter grammar is server-side; don't rely on it being applied.
        if deployment_id:
            items = [m for m in items if m.get("deployment") == self.deployment_name(deployment_id)]
        if model:
            items = [m for m in items if m.get("model") == model]
        return items

    def unload_deployed_model(self, name: str) -> None:
        """Unload one deployed model (``accounts/…/deployedModels/<id>``)."""
        self._call(self.client.lora.unload, deployment_id_of(name))

    def unload_lora(self, model: str, deployment_id: str) -> str:
        """Unload an addon from a deployment; returns the deployedModel name removed."""
        for dm in self.list_deployed_models(deployment_id):
            if dm.get("model") == model:
                self.unload_deployed_model(dm["name"])
                return dm["name"]
        raise NotFound(f"{model} is not loaded on {deployment_id}", status=404)

    # -- data plane ----------------------------------------------------------------------------
    def complete(self, deployment_id: str, prompt: str, *, max_tokens: int = 64) -> Completion:
        started = time.monotonic()
        try:
            resp = self.inference.completions.create(
                model=self.deployment_name(deployment_id), prompt=prompt, max_tokens=max_tokens
            )
        except fireworks.APIStatusError as e:
            err = translate(e)
            if e.status_code == 503 and "SCALING_UP" in str(e.body):
                raise ScalingUp(err.message, status=503) from e
            raise err from e
        except _API_ERRORS as e:
            raise translate(e) from e
        data = _wire(resp)
        choices = data.get("choices") or [{}]
        usage = data.get("usage") or {}
        return Completion(
            text=str(choices[0].get("text") or ""),
            latency_s=time.monotonic() - started,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
        )

    # -- metrics and billing (not covered by the SDK) ------------------------------------------
    def request_rates(self) -> dict[str, float]:
        """Requests per second by deployment id, from the Prometheus metrics endpoint.

        Raises ``RateLimited`` (with ``retry_after``) when the 6-per-minute limit is hit.
        """
        # The endpoint also carries latency and token histograms, dozens of lines per deployment
        # (tens of megabytes on a large account): stream it, and stop once the request-rate
        # group has ended.
        try:
            with self.http.stream("GET", f"/v1/accounts/{self.account_id}/metrics",
                                  headers={"Accept": "text/plain"}) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise self._http_error(resp)
                return request_rates_in(resp.iter_bytes(METRICS_CHUNK))
        except httpx.HTTPError as e:
            raise translate(e) from e

    def billing_usage(
        self,
        start: datetime,
        end: datetime,
        *,
        group_by: Iterable[str] = ("deployment_name", "accelerator_type"),
        timezone: str = "UTC",
    ) -> list[dict]:
        """Dedicated-deployment usage rows (daily buckets) for [start, end), at most 31 days."""
        params: list[tuple[str, str]] = [
            ("startTime", iso(start) or ""),
            ("endTime", iso(end) or ""),
            ("usageType", "DEDICATED_DEPLOYMENT"),
            ("timezone", timezone),
        ]
        params += [("groupBy", g) for g in group_by]
        try:
            resp = self.http.get(f"/v1/accounts/{self.account_id}/billingUsage", params=params)
        except httpx.HTTPError as e:
            raise translate(e) from e
        if resp.status_code != 200:
            raise self._http_error(resp)
        return list(resp.json().get("dedicatedCosts") or [])

    @staticmethod
    def _http_error(resp: httpx.Response) -> FireworksError:
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        return _status_error(resp.status_code, body, resp.headers)
