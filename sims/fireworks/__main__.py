"""``python -m sims.fireworks`` and ``fwbot sim``: the simulator alone, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from sims.clock import FakeClock, parse_hours_minutes_seconds

from .catalog import ACCELERATOR_TYPES
from .config import DEFAULT_GPU_QUOTA, SimConfig
from .server import FireworksSimulator


def parse_quota(text: str | None) -> tuple[dict[str, int], int | None]:
    """``--quota NVIDIA_H100_80GB=16,NVIDIA_A100_80GB=8`` (``*=N`` sets every other type) as
    ``({type: gpus}, default or None)``; ``ValueError`` with a sentence on a bad item."""
    quotas: dict[str, int] = {}
    default: int | None = None
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not value.strip().isdigit():
            raise ValueError(f"--quota: {item.strip()!r} is not TYPE=N (N a whole number of GPUs)")
        if name == "*":
            default = int(value)
        elif name in ACCELERATOR_TYPES[1:]:
            quotas[name] = int(value)
        else:
            raise ValueError(f"--quota: unknown accelerator type {name!r}; "
                             f"one of {', '.join(ACCELERATOR_TYPES[1:])} or *")
    return quotas, default


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The SimConfig for the ``fwbot sim`` flags (see bot/app/cli.py)."""
    auto_delete: Any = getattr(args, "auto_delete_after", "168h")
    seconds = parse_hours_minutes_seconds(auto_delete) if isinstance(auto_delete, str) else float(auto_delete)
    quotas, default_quota = parse_quota(getattr(args, "quota", None))
    return SimConfig(
        account_id=args.account_id,
        api_key=args.api_key,
        relaxed=bool(args.relaxed),
        create_seconds=float(args.create_seconds),
        fail_rate=float(args.fail_rate),
        latency_ms=int(args.latency_ms),
        auto_delete_after=seconds,
        state_file=getattr(args, "state_file", None),
        gpu_quota=quotas,
        default_gpu_quota=DEFAULT_GPU_QUOTA if default_quota is None else default_quota,
    )


def serve_forever(args: argparse.Namespace) -> int:
    """Start the simulator, print its one ready line, and serve until SIGINT or SIGTERM."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"fwbot sim: {exc}", file=sys.stderr)
        return 2
    clock = FakeClock() if getattr(args, "fake_clock", False) else None
    sim = FireworksSimulator(config, clock=clock)
    try:
        url = sim.start(host=args.host, port=args.port)
    except OSError as exc:
        print(f"fwbot sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"fireworks simulator listening on {url}", flush=True)
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m sims.fireworks") -> int:
    """Parse the simulator's flags (also ``fwbot sim``'s) and serve."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--account-id", default="demo")
    parser.add_argument("--api-key", default="sim-key")
    parser.add_argument("--relaxed", action="store_true", help="allow windows and idle durations down to 1s")
    parser.add_argument("--create-seconds", type=float, default=5.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--auto-delete-after", default="168h", help="Go duration; idle time before auto-delete")
    parser.add_argument("--state-file", default=None, help="persist deployments across restarts")
    parser.add_argument("--quota", default=None, metavar="TYPE=N,...",
                        help=f"GPU quota per accelerator type (default {DEFAULT_GPU_QUOTA} of each; *=N sets it "
                             "for every type not named, *=0 refuses them)")
    parser.add_argument("--fake-clock", action="store_true",
                        help="start a FakeClock moved only by POST /_sim/clock")
    return serve_forever(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
