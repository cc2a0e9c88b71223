"""The ``fwbot`` console script: ``run``, ``dev`` and ``sim``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fwbot", description="Fireworks deployments from Slack")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the bot (Socket Mode with SLACK_APP_TOKEN, else HTTP)")
    run.add_argument("--host", default=None)
    run.add_argument("--port", type=int, default=None)

    dev = sub.add_parser("dev", help="simulator + bot + a local Slack workspace in the browser")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8700)
    dev.add_argument("--db", default=None, help="SQLite file (default .fwbot-dev/fwbot.db)")

    sim = sub.add_parser("sim", help="the Fireworks control-plane simulator alone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--account-id", default="demo")
    sim.add_argument("--api-key", default="sim-key")
    sim.add_argument("--relaxed", action="store_true", help="allow windows and idle durations down to 1s")
    sim.add_argument("--create-seconds", type=float, default=5.0)
    sim.add_argument("--fail-rate", type=float, default=0.0)
    sim.add_argument("--latency-ms", type=int, default=0)
    sim.add_argument("--auto-delete-after", default="168h", help="Go duration; idle time before auto-delete")
    sim.add_argument("--state-file", default=None, help="persist deployments across restarts")

    args = parser.parse_args(argv)
    if args.command == "sim":
        from sims.fireworks.__main__ import serve_forever

        return serve_forever(args)
    if args.command == "run":
        from bot.app import run

        return run(args.host, args.port)
    from bot.dev import main as dev_main

    return dev_main(args.host, args.port, args.db)


if __name__ == "__main__":
    sys.exit(main())
