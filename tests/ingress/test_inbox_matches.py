"""The finance inbox settles a deal's ambiguous customer match over real HTTP: the approvals app on its own
thread, the dev server, quote-to-cash with in-memory ports. A deal waiting in ``customer_match`` shows its
candidates with a button each (and "create new"); a signed-in person's pick is the ``choose_customer_match``
update ``starter.py match --pick`` sends; an unauthenticated or cross-site pick is refused and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from canonical.exceptions import ExceptionKind
from canonical.matching import CustomerCandidate
from ingress.approvals import create_approvals_app
from ingress.identity import mint_token
from intake import ClientProvider
from runtime.launch import start_quote_to_cash
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.helpers.activities import role_activities
from tests.helpers.approvals import DANA
from tests.helpers.fakes import FakePorts, fake_deal
from tests.helpers.outcomes import deal_outcome
from tests.helpers.waiting import eventually
from tests.ingress.conftest import connector_to
from workflows.invoicing import OneOffInvoicingWorkflow
from workflows.models import QuoteToCashStatus, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


@pytest.fixture
def inbox(client: Client, flow_settings: Settings) -> Iterator[RunningApp]:
    provider = ClientProvider(connector_to(client.service_client.config.target_host, client.namespace))
    running = start_in_thread(create_approvals_app(settings=flow_settings, clients=provider))
    yield running
    running.stop()


async def _status(handle: WorkflowHandle[Any, Any]) -> QuoteToCashStatus:
    return await handle.query(QuoteToCashWorkflow.status)  # type: ignore[no-any-return]


def pick_form(handle: WorkflowHandle[Any, Any], record_id: str) -> dict[str, str]:
    return {"workflow_id": handle.id, "legal_entity": "US01", "system": "erp", "record_id": record_id}


async def test_inbox_shows_a_customer_match_and_a_signed_in_pick_settles_it_a_forged_one_is_refused(
        client: Client, flow_settings: Settings, inbox: RunningApp) -> None:
    ports = FakePorts()
    tenant = flow_settings.entity("US01").erp_tenant_id
    ports.erp.keyed[tenant] = [CustomerCandidate(record_id="hand-a", name="Fake Co", country="US"),
                               CustomerCandidate(record_id="hand-b", name="Fake Co.", country="US",
                                                 email="ap@fake.example")]
    deal_id = ports.add_deal(fake_deal())
    async with Worker(client, task_queue=flow_settings.task_queue,
                      workflows=[QuoteToCashWorkflow, OneOffInvoicingWorkflow],
                      activities=role_activities(flow_settings, **ports.as_kwargs())):
        handle = await start_quote_to_cash(client, flow_settings, deal_id)
        status = await eventually(lambda: _status(handle), lambda s: s.stage is Stage.AWAITING_SIGNATURE,
                                  what="contract out")
        assert status.contract and status.contract.clm_workflow_id
        ports.clm.sign(status.contract.clm_workflow_id)
        await eventually(lambda: _status(handle), lambda s: s.exception_kind is ExceptionKind.CUSTOMER_MATCH,
                         what="customer match asked")

        async with httpx.AsyncClient(base_url=inbox.base_url, timeout=10) as http:
            # not signed in: the pick is refused, nothing is chosen
            forged = await http.post("/inbox/match", data=pick_form(handle, "hand-b"),
                                     headers={"Sec-Fetch-Site": "same-origin"})
            assert forged.status_code == 401 and "Sign in" in forged.text

            signed = await http.post("/inbox/login", data={"token": mint_token(flow_settings, DANA)})
            assert signed.status_code == 303
            page = await eventually(lambda: http.get("/inbox"), lambda r: handle.id in r.text,
                                    what="the match listed in the inbox")
            assert "Which customer is it? (1)" in page.text
            assert "Pick Fake Co (hand-a)" in page.text and "Pick Fake Co. (hand-b)" in page.text
            assert "None of them: create a new customer" in page.text and "ap@fake.example" in page.text

            # posted from another site with the person's cookie: refused (CSRF)
            cross = await http.post("/inbox/match", data=pick_form(handle, "hand-b"),
                                    headers={"Sec-Fetch-Site": "cross-site"})
            assert cross.status_code == 400 and "could not be accepted" in cross.text
            # a record that is not a candidate: the workflow's validator refuses it
            wrong = await http.post("/inbox/match", data=pick_form(handle, "hand-z"),
                                    headers={"Sec-Fetch-Site": "same-origin"})
            assert wrong.status_code == 409 and "not one of the candidates" in wrong.text
            assert (await _status(handle)).exception_kind is ExceptionKind.CUSTOMER_MATCH, "nothing chosen yet"

            picked = await http.post("/inbox/match", data=pick_form(handle, "hand-b"),
                                     headers={"Sec-Fetch-Site": "same-origin"})
            assert picked.status_code == 303 and picked.headers["location"].startswith("/inbox?matched=")
        result = await deal_outcome(handle)
        final = await _status(handle)
    assert result.outcome is Stage.PROVISIONED
    assert ports.erp.links == [(tenant, "hand-b", ports.erp.links[0][2])], "the picked contact is linked"
    assert any(f"{DANA} chose contact hand-b" in e.note for e in final.timeline), "chosen as the signed-in person"


async def test_inbox_match_picked_by_clicking_in_a_browser_creates_nothing_new(
        client: Client, flow_settings: Settings, inbox: RunningApp) -> None:
    """As finance does it: headless Chromium, signed in, the "create new" and "Pick" buttons of the deal's match
    section; the click on a candidate links it and the section goes away."""
    from playwright.async_api import async_playwright, expect

    from tests.ingress.test_inbox_browser import CHROMIUM, CHROMIUM_ARGS, sign_in

    ports = FakePorts()
    tenant = flow_settings.entity("US01").erp_tenant_id
    ports.erp.keyed[tenant] = [CustomerCandidate(record_id="keyed-1", name="Fake Co", country="US"),
                               CustomerCandidate(record_id="keyed-2", name="Fake Co Inc", country="US")]
    deal_id = ports.add_deal(fake_deal())
    async with Worker(client, task_queue=flow_settings.task_queue,
                      workflows=[QuoteToCashWorkflow, OneOffInvoicingWorkflow],
                      activities=role_activities(flow_settings, **ports.as_kwargs())):
        handle = await start_quote_to_cash(client, flow_settings, deal_id)
        status = await eventually(lambda: _status(handle), lambda s: s.stage is Stage.AWAITING_SIGNATURE,
                                  what="contract out")
        assert status.contract and status.contract.clm_workflow_id
        ports.clm.sign(status.contract.clm_workflow_id)
        await eventually(lambda: _status(handle), lambda s: s.exception_kind is ExceptionKind.CUSTOMER_MATCH,
                         what="customer match asked")

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = await browser.new_page()
                await sign_in(page, inbox.base_url, mint_token(flow_settings, DANA))
                section = page.locator(f'section.match[data-workflow-id="{handle.id}"]')
                await expect(section).to_be_visible()
                await expect(section.get_by_role("button", name="None of them: create a new customer")).to_be_visible()
                await section.get_by_role("button", name="Pick Fake Co Inc (keyed-2)").click()
                await expect(page.get_by_role("status")).to_contain_text(f"{handle.id}: customer match settled")
                await expect(section).to_have_count(0)
            finally:
                await browser.close()
        result = await deal_outcome(handle)
    assert result.outcome is Stage.PROVISIONED
    assert [(t, record) for t, record, _ref in ports.erp.links] == [(tenant, "keyed-2")]
    held = [a.erp_contact_id for a in ports.erp.contacts.get(tenant, {}).values()]
    assert held == ["keyed-2"], "a match was picked: no new customer in the ERP"
