"""The books page and API: a controller reads the open findings per legal entity with their references and
repairs, acknowledges one through the same authenticated path the API uses, and nobody else can."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from playwright.async_api import async_playwright, expect
from sqlmodel import Session
from temporalio.client import Client

from canonical.reconciliation import Finding, FindingKind
from ingress.approvals import create_approvals_app
from ingress.books import Bar, bar_chart
from ingress.identity import mint_token
from intake import ClientProvider
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from stores.findings import findings_engine, list_findings, record_run
from tests.helpers.approvals import DANA
from tests.ingress.conftest import connector_to
from tests.ingress.test_inbox_browser import CHROMIUM, CHROMIUM_ARGS, sign_in


@pytest.fixture
def books_app(client: Client, flow_settings: Settings, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[RunningApp, Settings]]:
    settings = flow_settings.model_copy(update={
        "findings_url": f"sqlite:///{tmp_path_factory.mktemp('books') / 'findings.sqlite'}"})
    provider = ClientProvider(connector_to(client.service_client.config.target_host, client.namespace))
    running = start_in_thread(create_approvals_app(settings=settings, clients=provider))
    yield running, settings
    running.stop()


def _seed(settings: Settings) -> tuple[int, int]:
    """Two open findings: one in EU01 (an ERP receivable billing lacks), one in US01 (missing in the ERP)."""
    tag = uuid.uuid4().hex[:6]
    orphan = Finding(kind=FindingKind.ORPHAN_IN_ERP, key=f"orphan_in_erp:EU01:x-{tag}", legal_entity="EU01",
                     erp_id=f"x-{tag}", erp_amount="120.00 EUR", refs=[f"xero:invoice:x-{tag}"],
                     detail="ERP receivable has no billing reference", repair="void it in the ERP")
    missing = Finding(kind=FindingKind.MISSING_IN_ERP, key=f"missing_in_erp:US01:in_{tag}", legal_entity="US01",
                      billing_id=f"in_{tag}", billing_amount="10.00 USD", refs=[f"stripe:invoice:in_{tag}"],
                      detail=f"billing invoice in_{tag} is not in the ERP",
                      repair=f"starter.py repost ledger-stripe-cus_{tag} --invoice in_{tag}")
    engine = findings_engine(settings.findings_database_url)
    with Session(engine) as session:
        record_run(session=session, scope="all", run_id=f"r-{tag}", findings=[orphan, missing], now=datetime.now(UTC))
        rows = {r.key: r.id for r in list_findings(session=session, limit=10)}
    engine.dispose()
    return int(rows[orphan.key] or 0), int(rows[missing.key] or 0)


def test_books_chart_is_markup_of_numbers_and_escaped_labels() -> None:
    svg = bar_chart("DSO <by> currency", [Bar(label="USD", value=46.0, text="46.0"),
                                          Bar(label="EUR", value=23.0, text="23.0")], unit="days")
    assert svg.startswith("<svg") and "DSO &lt;by&gt; currency" in svg and "<by>" not in svg
    assert svg.count("<rect") == 2 and "46.0 days" in svg


async def test_books_api_refuses_strangers_and_acknowledges_as_the_callers_person(
        books_app: tuple[RunningApp, Settings]) -> None:
    app, settings = books_app
    orphan_id, _missing_id = _seed(settings)
    dana = {"Authorization": f"Bearer {mint_token(settings, DANA.upper())}"}  # the IdP may send any case
    async with httpx.AsyncClient(base_url=app.base_url, timeout=30) as http:
        assert (await http.get("/books")).status_code == 401
        stranger = {"Authorization": f"Bearer {mint_token(settings, 'mallory@revops.example')}"}
        assert (await http.get("/books", headers=stranger)).status_code == 403
        assert (await http.post(f"/findings/{orphan_id}/ack", json={"reason": "x"}, headers=stranger)
                ).status_code == 403

        books = (await http.get("/books", headers=dana)).json()
        by_entity = {e["legal_entity"]: e for e in books["entities"]}
        assert [f["id"] for f in by_entity["EU01"]["findings"]] == [orphan_id]
        assert by_entity["EU01"]["findings"][0]["refs"][0].startswith("xero:invoice:")

        hostile = await http.post(f"/findings/{orphan_id}/ack", json={"reason": "ok\x1b[2J\nforged"}, headers=dana)
        assert hostile.status_code == 422 and "\x1b" not in hostile.text
        assert (await http.post(f"/findings/{orphan_id}/ack", json={"reason": "x", "by": "chris"},
                                headers=dana)).status_code == 422  # who acknowledges is the token's person
        assert (await http.post("/findings/999999/ack", json={"reason": "x"}, headers=dana)).status_code == 404
        done = await http.post(f"/findings/{orphan_id}/ack", json={"reason": "void booked by hand"}, headers=dana)
        assert done.status_code == 200, done.text
        assert (done.json()["acknowledged_by"], done.json()["ack_reason"]) == ("Dana (Finance)", "void booked by hand")


async def test_books_page_lists_findings_per_entity_and_acknowledges_from_the_keyboard(
        books_app: tuple[RunningApp, Settings]) -> None:
    app, settings = books_app
    orphan_id, missing_id = _seed(settings)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page()
            await sign_in(page, app.base_url, mint_token(settings, DANA))
            await page.get_by_role("link", name="Books: findings and KPIs per legal entity").click()
            await expect(page.get_by_role("heading", name="Books", exact=True)).to_be_visible()
            us = page.locator('section[data-entity="US01"]')
            eu = page.locator('section[data-entity="EU01"]')
            missing = us.locator(f'article[data-finding-id="{missing_id}"]')
            await expect(missing).to_contain_text("missing_in_erp")
            await expect(missing).to_contain_text("Repair: starter.py repost ledger-stripe-")
            await expect(eu.locator(f'article[data-finding-id="{orphan_id}"]')).to_contain_text("120.00 EUR")
            await expect(us.locator(f'article[data-finding-id="{orphan_id}"]')).to_have_count(0)

            await missing.get_by_label(f"Reason to acknowledge finding {missing_id}").fill("lost event, re-posted")
            await missing.get_by_role("button", name=f"Acknowledge finding {missing_id}").focus()
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("status")).to_contain_text(f"finding {missing_id} acknowledged")
            await expect(us.locator(f'article[data-finding-id="{missing_id}"]')).to_contain_text(
                "Acknowledged by Dana (Finance): lost event, re-posted")
        finally:
            await browser.close()
