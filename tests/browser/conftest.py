"""The browser tests drive Debian's chromium headless through Playwright against ``fwbot dev``'s
own wiring (simulator, Slack stand-in, bot with its scheduler) on free loopback ports.

Playwright cannot download a browser here; ``scripts/test`` installs chromium with apt when it
runs as root. Without chromium or the playwright package every test here is skipped, saying which.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Short windows: READY within a few seconds, an idle warning 15 s after READY (scale to zero at 30 s).
TEST_ENV = {
    "FWBOT_SYNC_INTERVAL": "1s",
    "FWBOT_WARN_BEFORE_SCALE_TO_ZERO": "15s",
    # The demo deployment is idle but paying from the start: its report would join other idle
    # warnings in #ml-platform into one digest. An hour keeps it out of the tests' way.
    "FWBOT_IDLE_PAYING_AFTER": "1h",
}


def _unavailable() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (apt-get install chromium; scripts/test does it as root)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="session", autouse=True)
def _browser_available() -> None:
    reason = _unavailable()
    if reason:
        pytest.skip(f"browser tests need chromium and playwright: {reason}")


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """``fwbot dev`` as a newcomer gets it, on free ports and a fresh database."""
    from bot.app.dev import start
    from tests.harness import clean_env

    clean_env()
    stack = start("127.0.0.1", 0, tmp_path_factory.mktemp("dev") / "fwbot.db", env=TEST_ENV, create_seconds=2.0)
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    """test-artifacts/ at the repository root (screenshots CI keeps)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def snap(artifacts):
    """``snap(page, "name", "text", …)``: wait until the page shows every text, then save
    test-artifacts/name.png, so each screenshot is known to show what it is named after."""
    from playwright.sync_api import expect

    def take(page, name: str, *shows: str, within: str = "body") -> Path:
        for text in shows:
            expect(page.locator(within).first).to_contain_text(text, use_inner_text=True)
        path = artifacts / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take


@pytest.fixture
def page(browser, dev, request, artifacts) -> Iterator:
    """A fresh browser tab on the workspace; its screenshot lands in test-artifacts/ afterwards."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.set_default_timeout(10_000)
    page.goto(dev.url)
    yield page
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    context.close()
    assert not problems, "the page reported errors:\n" + "\n".join(problems)
