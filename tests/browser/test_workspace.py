"""A newcomer's tour of ``fwbot dev`` in headless chromium: deploy through the modal, approve as
another user, watch the tracking message turn READY, answer an idle warning with Keep warm, read
the audit trail, the cost answer and the digest's chart, type a #channel and an @user.

Screenshots of the key views go to test-artifacts/ (CI keeps them); each is taken once the page
shows the text it is named after.

Each test drives only the page (the composer, the user switcher, buttons and the modal), then
checks the outcome where it really lives: the bot's database and the stand-in's deliveries.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.app import dev as dev_mode
from bot.app.dev import DevStack

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package "
                             "(pip install -e '.[test]')").expect

pytestmark = pytest.mark.browser

DEV, APPROVER, ADMIN = "U0DEV", "U0APPROVER", "U0ADMIN"
MODEL = "llama-v3p1-8b-instruct"
BIG_MODEL = "llama-v3p1-70b-instruct"  # needs 2 × H100 per replica
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


def test_approve_as_another_user(page: Page, dev: DevStack, snap):
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
    snap(page, "approval_request", dep_id, "$32.00/h", "Approve", within="#messages")
    request.get_by_role("button", name="Approve").click()
    expect(ws.message(dep_id)).to_contain_text("Approved by")
    expect(ws.message(dep_id).get_by_role("button", name="Approve")).to_have_count(0)
    snap(page, "approval_decision", dep_id, "Approved by", within="#messages")

    ws.act_as(DEV)
    ws.open_channel("ml-platform")
    tracking = ws.message(dep_id, "Owner")
    expect(tracking).to_contain_text("READY in", timeout=READY_TIMEOUT_MS)
    expect(tracking).to_contain_text("$32.00/h")
    record = dev.bot.services.store.deployment(dep_id)
    assert record is not None and record.owner == DEV

    # The audit trail tells the story: who asked, who approved, what ran.
    ws.send(f"/fw audit {dep_id}")
    trail = ws.message(f"Audit trail of {dep_id}")
    expect(trail).to_contain_text("avi")
    expect(trail).to_contain_text("dana")
    snap(page, "audit", f"Audit trail of {dep_id}", within="#messages")


def test_keep_warm_from_an_idle_warning(page: Page, dev: DevStack, snap):
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
    snap(page, "idle_warning", "scale to zero", "Keep warm 1h", within="#thread-messages")
    clicks_before = len(dev.ws.deliveries)
    warning.get_by_role("button", name="Keep warm 1h").click()
    click = dev.ws.wait_for(lambda: next((d for kind, d in dev.ws.deliveries[clicks_before:]
                                          if kind == "block_actions"), None))
    assert click.status == 200, f"the app answered the Keep warm click with HTTP {click.status}: {click.body}"
    # Answered: the warning no longer offers its buttons, well before the window would have ended.
    expect(warning.get_by_role("button", name="Keep warm 1h")).to_have_count(0, timeout=8_000)
    expect(page.locator("#toast")).to_be_hidden()
    snap(page, "idle_warning_answered", dep_id, within="#thread-messages")


def option_texts(select: Locator) -> list[str]:
    return [t.strip() for t in select.locator("option").all_inner_texts()]


def test_the_deploy_form_prices_the_model_and_the_shape_it_shows(page: Page, dev: DevStack, snap):
    """A 70B model needs 2 GPUs a replica: priced so without a shape; a picked shape's hardware
    replaces the accelerator fields; shape labels are distinct; GPUs without a price come last."""
    ws = Workspace(page)
    ws.act_as(DEV)
    ws.open_channel("ml-platform")
    ws.send("/fw deploy")
    modal = ws.modal("Deploy a model")
    expect(modal).to_be_visible()
    shape = modal.get_by_label("Validated shape")
    expect(shape.locator("option").first).to_have_text("Pick a model to see its shapes")

    hash_before = modal.get_attribute("data-view-hash")
    modal.get_by_label("Model", exact=True).select_option(label=BIG_MODEL)
    wait_for_new_hash(modal, hash_before)
    cost = modal.locator(".bk-context", has_text="Worst case")
    # No shape, no GPU count: what /fw deploy would create, the model's own 2 GPUs a replica.
    expect(cost).to_contain_text("$16.00/h (1 replica × 2 × H100)")
    expect(modal.get_by_label("GPUs per replica")).to_have_attribute("placeholder", "2 (the model's default)")
    expect(shape.locator("option").first).to_contain_text(f"validated shapes for {BIG_MODEL}")
    accelerators = option_texts(modal.get_by_label("Accelerator type"))[1:]  # after the placeholder
    # Only what fwbot has a price for is offered, each with its price.
    assert accelerators and all("$" in a and "per GPU" in a for a in accelerators), accelerators
    shapes = option_texts(shape)[2:]  # after the placeholder and "No shape"
    assert len(shapes) == len(set(shapes)) >= 2, shapes
    assert sum(label.startswith("Minimal") for label in shapes) >= 2, shapes  # told apart by more than the name

    hash_before = modal.get_attribute("data-view-hash")
    minimal = next(label for label in shapes if label.startswith("Minimal · 2 × H100"))
    shape.select_option(label=minimal)
    wait_for_new_hash(modal, hash_before)
    # The shape decides the hardware: no editable GPU fields that could say otherwise.
    expect(modal.get_by_label("GPUs per replica")).to_have_count(0)
    expect(modal.get_by_label("Accelerator type")).to_have_count(0)
    expect(modal).to_contain_text("Hardware per replica: 2 × H100, set by the shape")
    expect(cost).to_contain_text("(1 replica × 2 × H100)")
    hash_before = modal.get_attribute("data-view-hash")
    max_replicas = modal.get_by_label("Max replicas")
    max_replicas.fill("2")
    max_replicas.press("Tab")
    wait_for_new_hash(modal, hash_before)
    expect(cost).to_contain_text("$32.00/h (2 replicas × 2 × H100)")
    snap(page, "deploy_form_shape_picked", "Hardware per replica: 2 × H100", "$32.00/h", within=".modal")

    # Back to no shape: the hardware fields return, empty, priced on the model's needs again.
    hash_before = modal.get_attribute("data-view-hash")
    shape.select_option(value="none")
    wait_for_new_hash(modal, hash_before)
    expect(modal.get_by_label("GPUs per replica")).to_have_value("")
    expect(cost).to_contain_text("$32.00/h (2 replicas × 2 × H100)")
    modal.get_by_role("button", name="Cancel").click()
    expect(modal).to_be_hidden()


def test_the_cost_answer_and_the_weekly_chart(page: Page, dev: DevStack, snap):
    """The demo deployment's two days of history: /fw cost shows them day by day (and Fireworks'
    billing agrees); the owner's weekly digest in the DM carries the chart."""
    ws = Workspace(page)
    ws.act_as(DEV)
    ws.open_channel("ml-platform")
    s = dev.bot.services
    today = s.clock.now().astimezone(s.settings.tz).date()
    ws.send(f"/fw cost {today - timedelta(days=2)}..{today - timedelta(days=1)}")
    answer = ws.message("GPU cost", "billingUsage")
    expect(answer).to_contain_text(dev_mode.DEMO_ID)
    expect(answer).to_contain_text("Daily")
    expect(answer).to_contain_text("difference +0.0%")
    snap(page, "cost_answer", "GPU cost", "Daily", dev_mode.DEMO_ID, within="#messages")

    page.locator("#dm-list a").first.click()
    digest = ws.message("You own", dev_mode.DEMO_ID)
    digest.locator(".replies").click()  # the chart is posted in the digest's thread
    chart = ws.message("Daily GPU spend", pane="#thread-messages")
    image = chart.locator("img.file-image")
    expect(image).to_be_visible(timeout=20_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=image.element_handle())
    image.scroll_into_view_if_needed()
    snap(page, "cost_digest_chart", "You own", "Daily GPU spend", within="#thread-messages")


def test_channel_and_user_mentions_typed_in_the_composer(page: Page, dev: DevStack, snap):
    """Typed #channel and @user reach fwbot as Slack's entities, so /fw budget and /fw owner work."""
    ws = Workspace(page)
    ws.act_as(ADMIN)
    ws.open_channel("ml-platform")
    sent_before = len(dev.ws.deliveries)
    ws.send("/fw budget #ml-platform 500")
    note = ws.message("set the GPU budget of")
    expect(note).to_contain_text("#ml-platform")
    expect(note).to_contain_text("$500.00 per month")
    texts = [d.payload.get("text") for _, d in dev.ws.deliveries[sent_before:] if d.payload]
    assert "budget <#C0MLPLAT|ml-platform> 500" in texts, texts
    assert dev.bot.services.store.budget("C0MLPLAT")["usd_per_month"] == 500
    ws.send(f"/fw owner {dev_mode.DEMO_ID} @avi")
    expect(ws.message("now owns", dev_mode.DEMO_ID)).to_contain_text("avi")
    assert dev.bot.services.store.deployment(dev_mode.DEMO_ID).owner == APPROVER
    snap(page, "mentions_typed", "set the GPU budget of", "now owns", within="#messages")
    ws.send(f"/fw owner {dev_mode.DEMO_ID} @nobody-here")
    expect(ws.message("@nobody-here")).to_contain_text("not a Slack user")


def test_fw_alerts_shows_what_was_made_outside_fwbot(page: Page, dev: DevStack, snap):
    """fwbot dev seeds a deployment made outside fwbot; the alert channel is where it is offered.
    (A later sync turns the offer into a tracking message: tests/app/test_dev.py has the
    expected failure that describes it.)"""
    ws = Workspace(page)
    ws.act_as(DEV)
    ws.open_channel("fw-alerts")
    expect(ws.message(dev_mode.OUTSIDE_ID)).to_be_visible(timeout=20_000)
    offers = [c for c in dev.ws.calls_to("chat.postMessage") if (c.response or {}).get("channel") == "C0ALERTS"
              and "created outside fwbot" in str(c.params.get("text"))]
    assert offers and dev_mode.OUTSIDE_ID in str(offers[0].params.get("text"))
    snap(page, "fw_alerts", dev_mode.OUTSIDE_ID, within="#messages")
