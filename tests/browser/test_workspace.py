"""A newcomer's tour of ``fwbot dev`` in headless chromium: deploy through the modal, approve as
another user, watch the tracking message turn READY, answer an idle warning with Keep warm.

Each test drives only the page (the composer, the user switcher, buttons and the modal), then
checks the outcome where it really lives: the bot's database and the stand-in's deliveries.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.dev import DevStack

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package "
                             "(pip install -e '.[test]')").expect

pytestmark = pytest.mark.browser

DEV, APPROVER = "U0DEV", "U0APPROVER"
MODEL = "llama-v3p1-8b-instruct"
READY_TIMEOUT_MS = 20_000  # create_seconds 2 + a 1 s reconcile loop, with room for a slow CI runner
# "READY in 2s" is the READY edit; the Creating message also says "turns READY when it is".


class Workspace:
    """What a person does on the page, in the page's own terms."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def act_as(self, user_id: str) -> None:
        self.page.select_option("#user-switcher", user_id)
        self.page.wait_for_function("id => ui.state && ui.state.me === id", arg=user_id)

    def open_channel(self, name: str) -> None:
        self.page.locator("#channel-list a", has_text=f"# {name}").click()
        expect(self.page.locator("#channel-header")).to_contain_text(f"# {name}")

    def send(self, text: str) -> None:
        composer = self.page.locator("#composer-input")
        composer.fill(text)
        composer.press("Enter")

    def message(self, *needles: str, pane: str = "#messages") -> Locator:
        found = self.page.locator(f"{pane} article.message")
        for needle in needles:
            found = found.filter(has_text=needle)
        return found.last

    def modal(self, title: str) -> Locator:
        return self.page.get_by_role("dialog", name=title)


def unique_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def wait_for_new_hash(modal: Locator, before: str | None) -> None:
    """The app answered a dispatch action with views.update (the page re-rendered the modal)."""
    expect(modal).not_to_have_attribute("data-view-hash", before or "")


def test_deploy_through_the_modal_turns_ready(page: Page, dev: DevStack, artifacts: Path):
    ws = Workspace(page)
    ws.act_as(DEV)
    ws.open_channel("ml-platform")
    ws.send("/fw deploy")

    modal = ws.modal("Deploy a model")
    expect(modal).to_be_visible()
    # Submitting without a model: the inline error, as Slack shows it, and no deploy.
    modal.get_by_role("button", name="Deploy").click()
    model = modal.get_by_label("Model", exact=True)
    expect(model).to_have_attribute("aria-invalid", "true")
    expect(modal.locator(".bk-error")).to_have_text(["Please complete this required field."])
    page.screenshot(path=str(artifacts / "deploy_modal_inline_error.png"))

    # Each pick is a dispatch action; the app answers with views.update and a new live cost.
    hash_before = modal.get_attribute("data-view-hash")
    model.select_option(label=MODEL)
    wait_for_new_hash(modal, hash_before)
    expect(modal.get_by_label("Model", exact=True)).to_have_value(f"accounts/fireworks/models/{MODEL}")
    max_replicas = modal.get_by_label("Max replicas")
    max_replicas.fill("2")
    max_replicas.press("Tab")
    expect(modal.locator(".bk-context", has_text="Worst case")).to_contain_text("$16.00/h")
    dep_id = unique_id("browser-modal")
    modal.get_by_label("Deployment id").fill(dep_id)
    modal.get_by_role("button", name="Deploy").click()
    expect(modal).to_be_hidden()

    tracking = ws.message(dep_id, "Owner")
    expect(tracking).to_contain_text("Creating")
    expect(tracking).to_contain_text("simulated Fireworks")
    expect(tracking).to_contain_text("READY in", timeout=READY_TIMEOUT_MS)
    expect(tracking).to_contain_text("$16.00/h")
    record = dev.bot.services.store.deployment(dep_id)
    assert record is not None
    assert (record.owner, record.channel, record.max_replicas) == (DEV, "C0MLPLAT", 2)


def test_approve_as_another_user(page: Page, dev: DevStack):
    """$32/h is above the $20/h threshold: the deploy waits for Avi, who approves it in #fw-approvals."""
    ws = Workspace(page)
    ws.act_as(DEV)
    ws.open_channel("ml-platform")
    dep_id = unique_id("browser-approve")
    ws.send(f"/fw deploy {MODEL} --accelerator-type h100 --max-replica-count 4 --deployment-id {dep_id}")
    expect(ws.message(dep_id)).to_be_visible()

    ws.open_channel("fw-approvals")
    request = ws.message(dep_id, "Approve")
    try:
        expect(request).to_be_visible()
    except AssertionError:
        pytest.fail(f"no approval request for {dep_id} ($32/h, threshold $20/h, FWBOT_APPROVERS=U0APPROVER) "
                    f"appeared in #fw-approvals; #ml-platform shows:\n{page.locator('#messages').inner_text()}")
    assert dev.bot.services.store.deployment(dep_id) is None, "created before anyone approved it"

    ws.act_as(APPROVER)
    ws.open_channel("fw-approvals")
    request = ws.message(dep_id, "Approve")
    request.get_by_role("button", name="Approve").click()
    expect(ws.message(dep_id)).to_contain_text("Approved by")
    expect(ws.message(dep_id).get_by_role("button", name="Approve")).to_have_count(0)

    ws.act_as(DEV)
    ws.open_channel("ml-platform")
    tracking = ws.message(dep_id, "Owner")
    expect(tracking).to_contain_text("READY in", timeout=READY_TIMEOUT_MS)
    expect(tracking).to_contain_text("$32.00/h")
    record = dev.bot.services.store.deployment(dep_id)
    assert record is not None and record.owner == DEV


def test_keep_warm_from_an_idle_warning(page: Page, dev: DevStack):
    """Idle for 15 s of a 30 s scale-to-zero window: a warning in the thread; Keep warm answers it."""
    ws = Workspace(page)
    ws.act_as(DEV)
    ws.open_channel("ml-platform")
    dep_id = unique_id("browser-warm")
    ws.send(f"/fw deploy {MODEL} --scale-to-zero-window 30s --deployment-id {dep_id}")
    tracking = ws.message(dep_id, "Owner")
    expect(tracking).to_contain_text("READY in", timeout=READY_TIMEOUT_MS)

    replies = tracking.locator(".replies")
    try:
        expect(replies).to_be_visible(timeout=30_000)
        replies.click()
        offer = ws.page.locator("#thread-messages article.message").filter(
            has=ws.page.get_by_role("button", name="Keep warm 1h")).first
        expect(offer).to_be_visible(timeout=30_000)
    except AssertionError:
        pytest.fail(f"no idle warning with a Keep warm button in the thread of {dep_id} within 30 s "
                    f"(FWBOT_WARN_BEFORE_SCALE_TO_ZERO=15s, --scale-to-zero-window 30s)")

    # Pin the warning by its ts: once answered it no longer matches "has a Keep warm button".
    warning = ws.page.locator(f'#thread-messages article.message[data-ts="{offer.get_attribute("data-ts")}"]')
    expect(warning).to_contain_text("scale to zero")
    clicks_before = len(dev.ws.deliveries)
    warning.get_by_role("button", name="Keep warm 1h").click()
    click = dev.ws.wait_for(lambda: next((d for kind, d in dev.ws.deliveries[clicks_before:]
                                          if kind == "block_actions"), None))
    assert click.status == 200, f"the app answered the Keep warm click with HTTP {click.status}: {click.body}"
    # Answered: the warning no longer offers its buttons, well before the window would have ended.
    expect(warning.get_by_role("button", name="Keep warm 1h")).to_have_count(0, timeout=8_000)
    expect(page.locator("#toast")).to_be_hidden()
