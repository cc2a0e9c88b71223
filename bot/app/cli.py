"""The ``fwbot`` console script: ``run``, ``dev``, ``sim`` and ``db``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sim"]:
        from sims.fireworks.__main__ import main as simulator

        return simulator(argv[1:], prog="fwbot sim")
    parser = argparse.ArgumentParser(prog="fwbot", description="Fireworks deployments from Slack")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the bot (Socket Mode with SLACK_APP_TOKEN, else HTTP)")
    run.add_argument("--host", default=None)
    run.add_argument("--port", type=int, default=None)

    dev = sub.add_parser("dev", help="simulator + bot + a local Slack workspace in the browser")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8700)
    dev.add_argument("--db", default=None, help="SQLite file (default .fwbot-dev/fwbot.db)")
    dev.add_argument("--quota", default=None, metavar="TYPE=N,...",
                     help="the simulated account's GPU quota per accelerator type, as `fwbot sim --quota` "
                          "takes it (`*=N` sets every other type); default '*=16', 16 GPUs of each type")

    db = sub.add_parser("db", help="the database's schema: `upgrade` applies the migrations it lacks, "
                                   "`current` says where it is (FWBOT_DATABASE_URL, else FWBOT_DB)")
    db.add_argument("action", choices=["upgrade", "current"])

    policy = sub.add_parser("policy", help="check a policy file: `fwbot policy check [FILE]` prints each problem "
                                           "with its line, or what the policy sets; exit status 1 if it is bad")
    policy.add_argument("action", choices=["check"])
    policy.add_argument("file", nargs="?", help="default: FWBOT_POLICY_FILE, else ./fwbot.toml")

    # The simulator parses its own flags (see `fwbot sim --help`).
    sub.add_parser("sim", help="the Fireworks control-plane simulator alone", add_help=False)

    args = parser.parse_args(argv)
    from pydantic import ValidationError

    from bot.core.settings import settings_problems
    from storage.db import DatabaseProblem

    try:
        if args.command == "run":
            from bot.app.wiring import run

            return run(args.host, args.port)
        if args.command == "db":
            return _db(args.action)
        if args.command == "policy":
            return _check_policy(args.file)
        from bot.app.dev import main as dev_main

        return dev_main(args.host, args.port, args.db, **({"quota": args.quota} if args.quota is not None else {}))
    except DatabaseProblem as e:
        # A file fwbot cannot use is the operator's to fix, not a bug: one line, no traceback.
        print(f"{_prog(parser, args.command)}: {e.message}", file=sys.stderr, flush=True)
        return 2
    except ValidationError as e:
        # So is a bad setting: one line per problem, naming the key, the value and what is allowed.
        prog = _prog(parser, args.command)
        for line in settings_problems(e):
            print(f"{prog}: {line}", file=sys.stderr, flush=True)
        return 2


def _prog(parser: argparse.ArgumentParser, command: str) -> str:
    return parser.prog if command == "run" else f"fwbot {command}"


def _db(action: str) -> int:
    """``fwbot db upgrade|current``: the schema of the database the settings name. ``fwbot run``
    upgrades at every start too; this is for a deploy step that migrates before the replicas roll."""
    from bot.core.settings import Settings
    from storage.db import Database
    from storage.migrate import current, head

    db = Database(Settings().database)
    try:
        if action == "upgrade":
            applied = db.migrate()
            print(f"{db.path}: " + (f"applied {', '.join(applied)}; " if applied else "already up to date; ")
                  + f"at revision {head()}")
            return 0
        with db.connection() as conn:
            at = current(conn)
        latest = head()
        state = "up to date" if at == latest else f"behind: run `fwbot db upgrade` to reach {latest}"
        print(f"{db.path}: revision {at or 'none (empty database)'}, {state}")
        return 0 if at == latest else 1
    finally:
        db.close()


def _check_policy(path: str | None) -> int:
    """``fwbot policy check``: what a team runs in its own CI before a policy change lands."""
    from pathlib import Path

    from bot.core.policy import DEFAULT_FILENAME, PolicyError, effective_policy, parse_policy
    from bot.core.settings import Settings

    name = path or Settings().policy_file or DEFAULT_FILENAME
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as e:
        print(f"fwbot policy: cannot read {name}: {e.strerror}", file=sys.stderr)
        return 1
    try:
        policy = parse_policy(text, name)
    except PolicyError as e:
        print(e.message, file=sys.stderr)
        return 1
    print(f"{name}: a valid policy with {len(policy.rules)} scoped rules.")
    print("Defaults (someone in no group with a rule, in a channel with none):")
    for line in effective_policy(policy, channel=None).describe() or ["(nothing set)"]:
        print(f"  {line}")
    for rule in policy.rules:
        print(f"{rule.source} (line {rule.line}) sets: {', '.join(rule.values) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
