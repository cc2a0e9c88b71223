"""The canned data plane: a completion routed to a deployment, logged as its traffic, and the
scale-up that load asks for."""

from __future__ import annotations

import math
import string
from collections import deque
from typing import Any

from . import metrics
from .records import DELETED, DELETING, READY, UPDATING, Account, Deployment

# assumption: one replica serves 5 requests/s at 100 % load; desired replicas are
# ceil(rate / (5 * loadTarget)) over the last minute.
REPLICA_CAPACITY_RPS = 5.0


class InferenceMixin(Account):
    """Completions against the account's deployments (part of SimState)."""

    def infer(self, body: dict[str, Any], now: float, chat: bool) -> tuple[int, dict[str, Any]]:
        """One completion against a deployment: (HTTP status, OpenAI-style body)."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return 400, _openai_error("model is required", "invalid_request_error", "INVALID_ARGUMENT")
        d, served_model = self._route(model)
        if d is None:
            return 404, _openai_error(f"Model not found, inaccessible, and/or not deployed: {model}",
                                      "invalid_request_error", "NOT_FOUND")
        d.last_traffic = now
        d.anchor = max(d.anchor, now)
        d.idle_since = max(d.idle_since, now)
        self.dirty = True
        if d.state not in (READY, UPDATING):
            self._log(d, now, 0, 0, 0.0, 503)
            return 503, _openai_error(f"Deployment {d.name} is {d.state} and not ready to serve requests",
                                      "error", "DEPLOYMENT_NOT_READY")
        if d.replicas == 0:
            self._log(d, now, 0, 0, 0.0, 503)
            if d.max == 0:
                # assumption: max_replica_count 0 pins the deployment at zero; nothing scales up.
                return 503, _openai_error(f"Deployment {d.name} has max_replica_count=0 and cannot serve",
                                          "error", "DEPLOYMENT_SCALED_TO_ZERO")
            if d.desired == 0:
                self._set_desired(d, min(max(d.min, 1), d.max), now)
            return 503, _openai_error(
                f"Deployment {d.name} is currently scaled to zero and is scaling up. "
                "Please retry your request in a few minutes.", "error", "DEPLOYMENT_SCALING_UP")
        if served_model != d.spec["baseModel"]:
            dm = next((x for x in self.deployed_models.values()
                       if x.model == served_model and x.deployment == d.name), None)
            if dm is not None and self._dm_state(dm) != "DEPLOYED":
                self._log(d, now, 0, 0, 0.0, 503)
                return 503, _openai_error(f"Model {served_model} is still being loaded onto {d.name}",
                                          "error", "MODEL_LOADING")
        prompt_text = _prompt_text(body, chat)
        prompt_tokens = max(1, len(prompt_text.split()))
        answer = f"This is a simulated answer from {d.name}."
        completion_tokens = len(answer.split())
        latency_ms = 40.0 + 6.0 * completion_tokens + 0.05 * prompt_tokens
        self._log(d, now, prompt_tokens, completion_tokens, latency_ms, 200)
        self._autoscale_on_load(d, now)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        created = int(now)
        rid = "".join(self.rng.choice(string.hexdigits.lower()) for _ in range(24))
        if chat:
            return 200, {"id": f"chatcmpl-{rid}", "object": "chat.completion", "created": created,
                         "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                                      "message": {"role": "assistant", "content": answer}}],
                         "usage": usage}
        return 200, {"id": f"cmpl-{rid}", "object": "text_completion", "created": created, "model": model,
                     "choices": [{"index": 0, "text": answer, "finish_reason": "stop", "logprobs": None}],
                     "usage": usage}

    def _route(self, model: str) -> tuple[Deployment | None, str]:
        prefix = f"accounts/{self.account}/deployments/"
        if "#" in model:
            served, dep_name = model.split("#", 1)
            d = self.deployments.get(dep_name[len(prefix):]) if dep_name.startswith(prefix) else None
            if d is None or d.state in (DELETED, DELETING):
                return None, served
            loaded = any(x.model == served and x.deployment == d.name for x in self.deployed_models.values())
            return (d if loaded or served == d.spec["baseModel"] else None), served
        if model.startswith(prefix):
            d = self.deployments.get(model[len(prefix):])
            if d is None or d.state in (DELETED, DELETING):
                return None, model
            return d, d.spec["baseModel"]
        dm = next((x for x in self.deployed_models.values() if x.model == model and x.default), None)
        if dm is None:
            return None, model  # serverless inference is not simulated
        d = self.deployments.get(dm.deployment[len(prefix):])
        if d is None or d.state in (DELETED, DELETING):
            return None, model
        return d, model

    def _log(self, d: Deployment, now: float, prompt: int, completion: int, latency: float, code: int) -> None:
        log = self.traffic.setdefault(d.name, deque())
        log.append(metrics.RequestRecord(now, prompt, completion, latency, code))
        while log and log[0].t < now - 600:
            log.popleft()

    def _autoscale_on_load(self, d: Deployment, now: float) -> None:
        recent = sum(1 for r in self.traffic.get(d.name, ()) if now - metrics.WINDOW < r.t <= now
                     and r.http_code < 400)
        target = float(d.spec["autoscalingPolicy"].get("loadTargets", {}).get("default", 0.8))
        need = math.ceil((recent / metrics.WINDOW) / (REPLICA_CAPACITY_RPS * target))
        need = min(max(need, d.min, 1), d.max)
        if need >= d.desired:
            d.high_load_until = now
        if need > d.desired:
            if d.upscale_at is None:
                d.upscale_at = now + d.window("scaleUpWindow")
            d.upscale_to = max(d.upscale_to if d.upscale_at else 0, need)


def _openai_error(message: str, kind: str, code: str) -> dict[str, Any]:
    return {"error": {"object": "error", "type": kind, "code": code, "message": message}}


def _prompt_text(body: dict[str, Any], chat: bool) -> str:
    if not chat:
        prompt = body.get("prompt", "")
        return " ".join(prompt) if isinstance(prompt, list) else str(prompt)
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else ""
        if isinstance(content, list):
            parts.extend(str(c.get("text", "")) for c in content if isinstance(c, dict))
        else:
            parts.append(str(content or ""))
    return " ".join(parts)
