"""The finance inbox in a real browser: headless Debian Chromium driven by Playwright, the approvals app over
real HTTP, the production worker on the dev server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Page, async_playwright, expect
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from ingress.approvals import create_approvals_app
from ingress.identity import mint_token
from intake import ClientProvider
from runtime.launch import start_quote_to_cash
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.helpers.approvals import DANA, SAM
from tests.helpers.deals import DealSpec, Line, seed_deal
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.ingress.conftest import connector_to
from workflows.models import QuoteToCashStatus, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def inbox(client: Client, flow_settings: Settings) -> Iterator[RunningApp]:
    provider = ClientProvider(connector_to(client.service_client.config.target_host, client.namespace))
    running = start_in_thread(create_approvals_app(settings=flow_settings, clients=provider))
    yield running
    running.stop()


async def _status(handle: WorkflowHandle) -> QuoteToCashStatus:
    return await handle.query(QuoteToCashWorkflow.status)  # type: ignore[no-any-return]


async def sign_in(page: Page, base_url: str, token: str) -> None:
    await page.goto(f"{base_url}/inbox")
    await page.get_by_label("Your access token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Finance inbox", exact=True)).to_be_visible()


async def test_inbox_sign_in_refusal_over_limit_then_approve_by_keyboard(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle], inbox: RunningApp
) -> None:
    name = "Inbox deal " + flow_settings.task_queue[-8:]
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(name=name, lines=[
        Line("PLAT-ENT", "Enterprise seats", quantity="100", price="100.00", discount="25", model="subscription",
             frequency="monthly")]))
    handle = await start_quote_to_cash(client, flow_settings, deal_id)
    await eventually(lambda: _status(handle), lambda s: s.stage is Stage.AWAITING_APPROVAL, what="awaiting approval")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page()
            # a forged token is refused at sign-in
            await page.goto(f"{inbox.base_url}/inbox")
            await page.get_by_label("Your access token").fill("not-a-token")
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("alert")).to_contain_text("Sign-in refused")

            # sales ops sees the deal but is over their limit: the workflow's refusal is explained
            await sign_in(page, inbox.base_url, mint_token(flow_settings, SAM))
            deal = page.locator(f'section[data-workflow-id="{handle.id}"]')
            await page.goto(f"{inbox.base_url}/inbox")
            await expect(deal).to_be_visible()
            await expect(deal).to_contain_text("90000.00 USD")
            await expect(deal).to_contain_text("25%")
            await expect(deal).to_contain_text("discount 25% exceeds 15%")
            await expect(deal).to_contain_text("payment 30 days")
            await deal.get_by_role("button", name=f"Approve {name}").click()
            await expect(page.get_by_role("alert")).to_contain_text("over Sam (Sales Ops)'s limit of 10%")
            assert (await _status(handle)).approval.decisions == []  # type: ignore[union-attr]
            await page.get_by_role("button", name="Sign out").click()

            # the finance manager approves with a note, from the keyboard
            await sign_in(page, inbox.base_url, mint_token(flow_settings, DANA))
            await expect(deal).to_be_visible()
            await deal.get_by_label(f"Note for {name}").fill("strategic account")
            await deal.get_by_role("button", name=f"Approve {name}").focus()
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("status")).to_contain_text(f"{handle.id}: approved")
            await expect(deal).to_have_count(0)
        finally:
            await browser.close()

    status = await eventually(lambda: _status(handle), lambda s: s.stage is Stage.AWAITING_SIGNATURE,
                              what="contract out after the inbox approval")
    [decided] = status.approval.decisions  # type: ignore[union-attr]
    assert (decided.approver, decided.channel, decided.note) == (DANA, "inbox", "strategic account")
    await handle.terminate("test done")


async def test_inbox_cannot_be_framed_by_another_page_and_sends_no_cacheable_business_data(
    flow_settings: Settings, inbox: RunningApp
) -> None:
    """Click-jacking: an attacker's page on another origin frames the inbox under a decoy button. The browser
    must refuse to render it (CSP ``frame-ancestors 'none'``, ``X-Frame-Options: DENY``), while the inbox
    itself still renders with its stylesheet under its own strict CSP."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    attacker = FastAPI()

    @attacker.get("/", response_class=HTMLResponse)
    async def bait() -> str:
        return (f'<html><body><button>Win a prize</button><iframe id="victim" src="{inbox.base_url}/inbox" '
                f'width="800" height="600"></iframe></body></html>')

    evil = start_in_thread(attacker, host="127.0.0.2")
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = await browser.new_page()
                loaded = await page.goto(f"{inbox.base_url}/inbox")
                assert loaded is not None
                headers = loaded.headers
                assert "frame-ancestors 'none'" in headers["content-security-policy"]
                assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
                assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"
                font = await page.evaluate("getComputedStyle(document.body).fontFamily")
                assert "system-ui" in font, "the stylesheet loads under the page's own CSP"

                await page.goto(evil.base_url)
                await page.wait_for_load_state("load")
                frame = next(f for f in page.frames if f != page.main_frame)
                body = ""
                try:
                    body = await frame.evaluate("document.body ? document.body.innerText : ''")
                except Exception:  # noqa: BLE001 (a blocked frame may be an error page the test cannot read)
                    body = ""
                assert "access token" not in body.lower() and "Finance inbox" not in body, \
                    "the inbox rendered inside another site's frame"
            finally:
                await browser.close()
    finally:
        evil.stop()
