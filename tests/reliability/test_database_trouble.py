"""A database fwbot cannot use: at start, at run time, and a second ``fwbot dev`` beside a running one.

At start the real console script runs as a process (``fwbot run``, ``fwbot dev``) and the test
reads what an operator sees: exit status 2 and exactly one line on stderr naming the file and the
problem, never a traceback. The files are made unusable for real: a directory, a file that is not
SQLite, a path under a regular file, an immutable file (``chattr +i``: root ignores permission
bits), a read-only mount and a full disk (a small tmpfs in a private mount namespace), a lock held
by another connection. Cases this machine cannot make (no ``chattr``, no ``unshare``) are skipped
with the reason. The SQLite errors met at run time (locked, full, read-only, corrupt, a missing
table) are produced for real in-process and mapped by :func:`storage.db.database_problem`; a
request through the HTTP boundary that meets a locked database tells the user so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

import storage.db
from handlers.acking import INTERNAL_ERROR, describe_failure
from storage.db import Database, DatabaseProblem, database_problem
from tests.harness import BOT_TOKEN, SIGNING_SECRET, message_text, start_stack

REPO = Path(__file__).resolve().parents[2]
FWBOT = REPO / ".venv" / "bin" / "fwbot"
MODEL = "llama-v3p1-8b-instruct"


def fwbot() -> list[str]:
    return [str(FWBOT)] if FWBOT.exists() else [sys.executable, "-m", "bot.app.cli"]


def env(**extra: str) -> dict[str, str]:
    """What ``fwbot run`` needs and nothing from the developer's shell. Slack's URL is a closed
    loopback port: every case here stops at the database, before anything is called."""
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
            "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": "http://127.0.0.1:9/api/", "PORT": "0", **extra}


def run(argv: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env(**extra), capture_output=True, text=True, timeout=60)


def one_line(proc: subprocess.CompletedProcess, *needles: str, status: int = 2) -> str:
    """The process said exactly one line on stderr, containing every needle, and exited ``status``."""
    shown = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr + proc.stdout, shown
    assert proc.returncode == status, shown
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, shown
    for needle in needles:
        assert needle in lines[0], shown
    return lines[0]


def migrated(path: Path) -> Path:
    db = Database(path)
    db.migrate()
    db.close()
    return path


def tables(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@contextlib.contextmanager
def immutable(path: Path):
    """``chattr +i``: not even root may write the file (root ignores permission bits)."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed: no read-only file can be made as root")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"this filesystem has no immutable flag: {made.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def in_tmpfs(mount: Path, prepare: str, options: str = "") -> list[str]:
    """A command that runs fwbot with a tmpfs at ``mount`` in a mount namespace of its own (so
    nothing outlives it), after the shell commands ``prepare``."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed: no private mount can be made")
    mount.mkdir(exist_ok=True)
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs tmpfs {mount}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no private tmpfs mount here: {probe.stderr.strip()}")
    opts = f"-o {options} " if options else ""
    script = f'mount -t tmpfs {opts}tmpfs "{mount}" && {prepare} && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh", *fwbot()]


# -- start-up: fwbot run and fwbot dev ---------------------------------------------------------
def _directory(tmp: Path) -> Path:
    (tmp / "adir").mkdir()
    return tmp / "adir"


def _garbage(tmp: Path) -> Path:
    path = tmp / "garbage.db"
    path.write_bytes(b"these are not the bytes of a SQLite database\n" * 100)
    return path


def _under_a_file(tmp: Path) -> Path:
    (tmp / "file.txt").write_text("a file, not a directory")
    return tmp / "file.txt" / "fwbot.db"  # its directory cannot be created


UNUSABLE = {
    "directory": (_directory, "it is a directory"),
    "not sqlite": (_garbage, "it is not a SQLite database (file is not a database)"),
    "directory cannot be made": (_under_a_file, "file.txt is not a directory"),
}


@pytest.mark.parametrize("command", ["run", "dev"])
@pytest.mark.parametrize("case", list(UNUSABLE))
def test_an_unusable_database_file_is_one_line_at_start(tmp_path, case, command):
    make, problem = UNUSABLE[case]
    path = make(tmp_path)
    if command == "run":
        proc = run([*fwbot(), "run"], tmp_path, FWBOT_DB=str(path))
        line = one_line(proc, f"fwbot: cannot use the database {path}: ", problem)
    else:
        proc = run([*fwbot(), "dev", "--port", "0", "--db", str(path)], tmp_path)
        line = one_line(proc, f"fwbot dev: cannot use the database {path}: ", problem)
    assert line.count(str(path)) == 1
    if case == "not sqlite":
        assert path.read_bytes().startswith(b"these are not")  # never "repaired" or replaced


def test_fwbot_dev_with_an_unusable_default_database_is_one_line(tmp_path):
    (tmp_path / ".fwbot-dev").write_text("a file where the directory should be")
    proc = run([*fwbot(), "dev", "--port", "0"], tmp_path)
    one_line(proc, "fwbot dev: cannot use the database .fwbot-dev/fwbot.db: .fwbot-dev is not a directory")


def test_a_read_only_database_file_is_one_line_at_start(tmp_path):
    path = migrated(tmp_path / "fwbot.db")
    with immutable(path):
        proc = run([*fwbot(), "run"], tmp_path, FWBOT_DB=str(path))
    # migrate() writes at every start, so a file that opens read-only is found now, not at the
    # first request.
    one_line(proc, f"fwbot: cannot use the database {path}: it is read-only",
             "(attempt to write a readonly database)")


def test_a_read_only_filesystem_is_one_line_at_start(tmp_path):
    good = migrated(tmp_path / "good.db")
    mount = tmp_path / "mnt"
    argv = in_tmpfs(mount, f'cp "{good}" "{mount}/fwbot.db" && mount -o remount,ro "{mount}"')
    proc = subprocess.run([*argv, "run"], cwd=tmp_path, env=env(FWBOT_DB=str(mount / "fwbot.db")),
                          capture_output=True, text=True, timeout=60)
    one_line(proc, f"fwbot: cannot use the database {mount / 'fwbot.db'}: its filesystem is mounted read-only")


def test_a_full_disk_is_one_line_at_start(tmp_path):
    mount = tmp_path / "mnt"
    argv = in_tmpfs(mount, "true", options="size=32k")  # far less than the migrations need
    proc = subprocess.run([*argv, "run"], cwd=tmp_path, env=env(FWBOT_DB=str(mount / "fwbot.db")),
                          capture_output=True, text=True, timeout=60)
    one_line(proc, f"fwbot: cannot use the database {mount / 'fwbot.db'}: the disk is full")


def test_a_database_locked_past_the_busy_timeout_is_one_line_at_start(tmp_path):
    path = migrated(tmp_path / "fwbot.db")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        # The real entry point, with the busy timeout cut from 10 s to 0.3 s to keep the test short.
        code = ("import storage.db; storage.db.BUSY_TIMEOUT_MS = 300\n"
                "from bot.app.cli import main\nraise SystemExit(main(['run']))")
        proc = run([sys.executable, "-c", code], tmp_path, FWBOT_DB=str(path))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    one_line(proc, f"fwbot: cannot use the database {path}: another process held it locked for longer "
                   "than fwbot waits (0.3 s)", "(database is locked)")


# -- the mapping, with real SQLite errors ------------------------------------------------------
def _raised(fn) -> BaseException:
    try:
        fn()
    except BaseException as e:  # noqa: BLE001 - the error is what the test looks at
        return e
    raise AssertionError("nothing was raised")


def test_sqlite_troubles_become_a_sentence_naming_the_file(tmp_path):
    # locked past the busy timeout, at start (migrate) and at run time (a write)
    locked = migrated(tmp_path / "locked.db")
    db = Database(locked, busy_timeout_ms=100)
    db.scalar("SELECT 1")
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        at_start = _raised(db.migrate)
        at_run = _raised(lambda: db.execute("INSERT INTO kv (key, value, updated_at) VALUES ('k', 'v', 'now')"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(at_start, DatabaseProblem) and at_start.path == str(locked)
    assert "locked for longer than fwbot waits (0.1 s)" in at_start.message
    assert isinstance(at_run, DBAPIError) and isinstance(at_run.orig, sqlite3.OperationalError)
    problem = database_problem(at_run)
    assert problem is not None and problem.path == str(locked) and "(0.1 s)" in problem.problem
    assert db.scalar("SELECT count(*) FROM kv WHERE key = 'k'") == 0  # rolled back
    db.execute("INSERT INTO kv (key, value, updated_at) VALUES ('k', 'v', 'now')")  # and usable again
    db.close()

    # full: the page limit is SQLite's own "database or disk is full" (SQLITE_FULL)
    full = Database(tmp_path / "full.db")
    full.execute("CREATE TABLE t (x BLOB)")
    with full.write() as conn:  # a per-connection setting: on the one connection that writes next
        conn.exec_driver_sql(f"PRAGMA max_page_count = {full.scalar('PRAGMA page_count') + 1}")

    def fill() -> None:
        with full.write():
            full.execute("INSERT INTO t VALUES (:x)", {"x": os.urandom(50_000)})

    problem = database_problem(_raised(fill))
    assert problem is not None
    assert problem.message == f"cannot use the database {tmp_path / 'full.db'}: the disk is full (database or disk is full)"
    full.close()

    # read-only: a connection that may only read, as on a read-only file
    ro_path = migrated(tmp_path / "ro.db")
    with contextlib.closing(sqlite3.connect(f"file:{ro_path}?mode=ro", uri=True)) as ro:
        error = _raised(lambda: ro.execute("INSERT INTO kv (key, value, updated_at) VALUES ('k', 'v', 'now')"))
    problem = database_problem(error, str(ro_path))
    assert problem is not None and problem.path == str(ro_path) and problem.problem.startswith("it is read-only")

    # corrupt: data pages overwritten (the first page, and so the schema, intact)
    bad = tmp_path / "corrupt.db"
    with contextlib.closing(sqlite3.connect(bad)) as conn:
        conn.execute("CREATE TABLE t (x BLOB)")
        conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(500),) for _ in range(200)])
        conn.commit()
    with open(bad, "r+b") as f:
        f.seek(4096)
        f.write(b"\xff" * (bad.stat().st_size - 4096))
    corrupt = Database(bad)
    problem = database_problem(_raised(lambda: corrupt.query("SELECT count(*) FROM t")))
    assert problem is not None and problem.path == str(bad)
    assert problem.problem.startswith("it is corrupt") and problem.detail == "database disk image is malformed"
    corrupt.close()

    # a table missing: the file was replaced under a running fwbot (what a second `fwbot dev` did)
    empty = Database(tmp_path / "replaced.db")
    problem = database_problem(_raised(lambda: empty.query("SELECT * FROM deployments")))
    assert problem is not None and "was the file deleted or replaced" in problem.problem
    empty.close()

    # fwbot's own mistakes are not database problems: they stay internal errors with a traceback
    plain = Database(tmp_path / "plain.db")
    plain.execute("CREATE TABLE u (k TEXT PRIMARY KEY)")
    plain.execute("INSERT INTO u VALUES ('a')")
    assert database_problem(_raised(lambda: plain.execute("INSERT INTO u VALUES ('a')"))) is None
    assert database_problem(_raised(lambda: plain.query("SELEC 1"))) is None
    assert database_problem(ValueError("no")) is None
    plain.close()


def test_describe_failure_names_the_database_and_logs_one_line(tmp_path, caplog):
    path = migrated(tmp_path / "fwbot.db")
    db = Database(path, busy_timeout_ms=50)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        error = _raised(lambda: db.execute("INSERT INTO kv (key, value, updated_at) VALUES ('k', 'v', 'now')"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        db.close()
    with caplog.at_level(logging.ERROR, logger="fwbot"):
        text = describe_failure(error)
    assert text.startswith("fwbot could not use its database (`fwbot.db`: another process held it locked")
    assert "If it had already asked Fireworks for a change, that change stands" in text
    assert str(path) not in text  # the user is told the file's name, the log its whole path
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in logged] == [
        f"a request failed: cannot use the database {path}: another process held it locked for longer "
        "than fwbot waits (0.05 s) (database is locked)"]
    assert logged[0].exc_info is None
    assert describe_failure(RuntimeError("a bug")) == INTERNAL_ERROR


# -- at run time, through the HTTP boundary ----------------------------------------------------
@pytest.fixture
def locked_stack(tmp_path, monkeypatch):
    """A bot over HTTP whose database waits 0.3 s for a lock, and a way to hold that lock."""
    monkeypatch.setattr(storage.db, "BUSY_TIMEOUT_MS", 300)
    stack = start_stack(tmp_path)

    @contextlib.contextmanager
    def held():
        holder = sqlite3.connect(stack.db_path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()

    stack.held = held
    yield stack
    stack.stop()


def _all_messages(stack) -> list[str]:
    return [message_text(m) for channel in list(stack.ws._messages) for m in stack.ws.messages(channel)]


def test_a_form_that_meets_a_locked_database_tells_the_user_it_was_the_database(locked_stack, caplog):
    stack = locked_stack
    view, picked = stack.open_deploy_form(MODEL)
    values = {**picked, "acc_count": {"v": "1"}, "min": {"v": "0"}, "max": {"v": "1"}, "stz": {"v": ""},
              "deployment_id": {"v": "while-locked"}}
    with caplog.at_level(logging.ERROR, logger="fwbot"), stack.held():
        assert stack.ws.submit_view("U_DEV", view.id, values=values).status == 200
        told = stack.ws.wait_for(
            lambda: next((t for t in _all_messages(stack) if "could not use its database" in t), None), timeout=15)
    assert "(`fwbot.db`: another process held it locked for longer than fwbot waits (0.3 s))" in told
    assert INTERNAL_ERROR not in told
    # It stopped at its first write, before asking Fireworks for anything.
    assert [d.name for d in stack.sdk().deployments.list()] == []
    lines = [r.getMessage() for r in caplog.records if "cannot use the database" in r.getMessage()]
    assert lines == [f"a request failed: cannot use the database {stack.db_path}: another process held it "
                     "locked for longer than fwbot waits (0.3 s) (database is locked)"]


def test_fw_that_meets_a_locked_database_tells_the_user_it_was_the_database(locked_stack):
    stack = locked_stack
    with stack.held():
        stack.fw(f"deploy {MODEL} --dry-run")
        told = stack.wait_ephemeral("could not use its database", timeout=15)
    assert "`fwbot.db`: another process held it locked" in told
    assert [d.name for d in stack.sdk().deployments.list()] == []


def test_a_scheduled_job_that_meets_a_database_problem_logs_one_line(tmp_path, caplog):
    from bot.adapters.metrics import Metrics
    from bot.jobs import base as scheduler

    db = Database(tmp_path / "fwbot.db")
    job = scheduler.Job("sync", lambda: db.query("SELECT * FROM deployments"))
    with caplog.at_level(logging.ERROR, logger="fwbot"):
        scheduler._guarded(job, Metrics())()
    db.close()
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and logged[0].exc_info is None
    assert f"cannot use the database {tmp_path / 'fwbot.db'}: a table fwbot made is missing" in logged[0].getMessage()


# -- a second fwbot dev ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_dev(cwd: Path, port: int) -> tuple[subprocess.Popen, str, Path]:
    log_path = cwd / "first.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*fwbot(), "dev", "--port", str(port)], cwd=cwd, env=env(),
                                stdout=subprocess.PIPE, stderr=log, text=True)
    ready = threading.Event()
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("fwbot dev: open http") and not ready.is_set():
                found.append(line)
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(30):
        proc.kill()
        raise AssertionError(f"fwbot dev did not start:\n{log_path.read_text()[-3000:]}")
    bot_url = re.search(r"bot at (http://[\d.]+:\d+)", found[0]).group(1)
    return proc, bot_url, log_path


def _healthy(bot_url: str) -> dict:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{bot_url}/healthz", timeout=5) as r:
        assert r.status == 200
        return json.loads(r.read())


def test_a_second_fwbot_dev_never_touches_the_running_ones_database(tmp_path):
    port = _free_port()
    first, bot_url, first_log = _start_dev(tmp_path, port)
    db = tmp_path / ".fwbot-dev" / "fwbot.db"
    try:
        before = db.stat().st_ino
        assert "alembic_version" in tables(db)
        assert _healthy(bot_url)["ok"] is True
        message = (f"fwbot dev: another fwbot dev is running with .fwbot-dev/fwbot.db (pid {first.pid}); "
                   "stop it or use --db/--port")
        same_port = run([*fwbot(), "dev", "--port", str(port)], tmp_path)
        other_port = run([*fwbot(), "dev", "--port", str(_free_port())], tmp_path)
        given = run([*fwbot(), "dev", "--port", str(_free_port()), "--db", ".fwbot-dev/fwbot.db"], tmp_path)
        for proc in (same_port, other_port, given):
            assert one_line(proc, status=1) == message
        # The running one's file is the same file, whole, and it still serves.
        assert db.stat().st_ino == before
        assert "alembic_version" in tables(db) and "deployments" in tables(db)
        assert _healthy(bot_url)["ok"] is True
        time.sleep(0.5)
        assert "no such table" not in first_log.read_text()
        assert first.poll() is None
    finally:
        first.terminate()
        try:
            first.wait(timeout=20)
        except subprocess.TimeoutExpired:
            first.kill()
    assert first.returncode == 0, first_log.read_text()[-3000:]


def test_fwbot_dev_checks_the_port_before_it_deletes_anything(tmp_path):
    """Something else on the port (not a fwbot dev: the lock is free): nothing is deleted."""
    db = tmp_path / ".fwbot-dev" / "fwbot.db"
    db.parent.mkdir()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE kept (x)")
        conn.commit()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run([*fwbot(), "dev", "--port", str(port)], tmp_path)
    one_line(proc, f"fwbot dev: port {port} on 127.0.0.1 is in use", status=1)
    assert tables(db) == {"kept"}
