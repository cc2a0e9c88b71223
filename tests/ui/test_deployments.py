"""The /fw list reply counts replicas and deployments in words that agree with the number."""

from __future__ import annotations

import json

from bot.ui.deployments import deployment_list


def message_text(message) -> str:
    return json.dumps(message.payload(), ensure_ascii=False)


WIRE = {"name": "accounts/demo/deployments/one", "state": "READY", "baseModel": "accounts/fireworks/models/llama-v3p1-8b-instruct",
        "acceleratorType": "NVIDIA_H100_80GB", "acceleratorCount": 1}


def test_one_replica_and_one_deployment_are_singular():
    text = message_text(deployment_list([({**WIRE, "replicaCount": 1}, 8.0, "U_DEV")], scope="all", simulated=True))
    assert "1 deployment" in text and "1 deployments" not in text
    assert "1 replica ·" in text


def test_other_counts_are_plural():
    rows = [({**WIRE, "replicaCount": n, "name": f"accounts/demo/deployments/d{n}"}, 8.0, "U_DEV") for n in (0, 2)]
    text = message_text(deployment_list(rows, scope="all", simulated=True))
    assert "2 deployments" in text and "0 replicas ·" in text and "2 replicas ·" in text
