"""Salesforce Outbound Messages: the SOAP notifications built here as Salesforce documents them, verified by the
secret in the endpoint URL's query and the organisation ID, parsed with a parser that refuses DTDs and entities,
and answered by the real ingress with Salesforce's ``Ack``."""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from temporalio.testing import WorkflowEnvironment

from canonical import DealChanged, DealStageReached
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.salesforce.webhooks import SalesforceOutboundMessages, from_settings
from ingress.app import create_app
from intake import ClientProvider
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from stores.events import EventLedger
from tests.helpers.servers import SandboxHandle, vendor_settings
from tests.ingress.conftest import connector_to

ORG = "00D5g000004Xyz1EAC"  # an 18-character org ID (checksum computed by Salesforce's rule)
SECRET = "outbound-secret-for-tests"
URL = f"https://ingress.example.com/webhooks/salesforce?revops_token={SECRET}"
ACK_NS = "{http://soap.sforce.com/2005/09/outbound}"
SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"


def message(*, org: str = ORG, opportunity_id: str = "0065g00000AbCdE", stage: str = "Closed Won",
            notification_id: str = "04l5g000001AbCdAAA", sobject_type: str = "sf:Opportunity",
            prolog: str = "") -> bytes:
    """An Outbound Message as Salesforce sends it (namespaces and nil attributes included)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            '<soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
            f"<OrganizationId>{org}</OrganizationId><ActionId>04k5g0000008OiLAAU</ActionId>"
            '<SessionId xsi:nil="true"/>'
            "<EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/60.0/00D5g000004Xyz1</EnterpriseUrl>"
            "<PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/60.0/00D5g000004Xyz1</PartnerUrl>"
            f"<Notification><Id>{notification_id}</Id>"
            f'<sObject xsi:type="{sobject_type}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
            f"<sf:Id>{opportunity_id}</sf:Id><sf:Amount>12000.0</sf:Amount><sf:StageName>{stage}</sf:StageName>"
            "<sf:SystemModstamp>2026-05-04T10:11:12.000Z</sf:SystemModstamp>"
            "</sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>").encode()


BILLION_LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                  '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>')
EXTERNAL = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@pytest.fixture
def receiver() -> SalesforceOutboundMessages:
    return SalesforceOutboundMessages(org_id=ORG[:15], secret=SECRET, secret_param="revops_token",
                                      approval_stage="Negotiation/Review", closed_won_stage="Closed Won")


async def test_salesforce_outbound_valid_message_verifies_and_parses(receiver: SalesforceOutboundMessages) -> None:
    body = message()
    await receiver.verify(method="POST", url=URL, headers={}, body=body)
    events = receiver.parse(headers={}, body=body)

    assert [type(e) for e in events] == [DealStageReached, DealChanged]
    event = events[0]
    assert events[1].source_event_id == "04l5g000001AbCdAAA:changed" and events[1].deal_id == event.deal_id
    # the 15-character ID in its 18-character form: AbCdE has upper-case letters at 0, 2, 4 -> 21 -> "V"
    assert event.deal_id == "0065g00000AbCdEAAV"
    assert event.is_closed_won and event.source_event_id == "04l5g000001AbCdAAA"
    assert event.occurred_at.isoformat() == "2026-05-04T10:11:12+00:00"


def test_salesforce_outbound_approval_stage_and_other_changes(receiver: SalesforceOutboundMessages) -> None:
    approval = receiver.parse(headers={}, body=message(stage="Negotiation/Review"))
    other = receiver.parse(headers={}, body=message(stage="Prospecting"))

    assert isinstance(approval[0], DealStageReached) and not approval[0].is_closed_won
    # another stage, or an edit of the deal's data: a run waiting for corrected data re-reads the deal
    assert len(other) == 1 and isinstance(other[0], DealChanged) and other[0].properties["StageName"] == "Prospecting"


async def test_salesforce_outbound_wrong_org_is_refused(receiver: SalesforceOutboundMessages) -> None:
    with pytest.raises(SignatureInvalid, match="OrganizationId"):
        await receiver.verify(method="POST", url=URL, headers={}, body=message(org="00D000000000999AAA"))


@pytest.mark.parametrize("url", [
    "https://ingress.example.com/webhooks/salesforce",
    "https://ingress.example.com/webhooks/salesforce?revops_token=guess",
    f"https://ingress.example.com/webhooks/salesforce?token={SECRET}",
    f"https://ingress.example.com/webhooks/salesforce?revops_token={SECRET}&revops_token=x",
])
async def test_salesforce_outbound_wrong_or_missing_secret_is_refused(receiver: SalesforceOutboundMessages,
                                                                      url: str) -> None:
    with pytest.raises(SignatureInvalid, match="revops_token"):
        await receiver.verify(method="POST", url=url, headers={}, body=message())


@pytest.mark.parametrize("prolog", [BILLION_LAUGHS, EXTERNAL, "<!DOCTYPE x>"])
async def test_salesforce_outbound_dtd_and_entities_are_refused(receiver: SalesforceOutboundMessages,
                                                                prolog: str) -> None:
    body = message(prolog=prolog)
    with pytest.raises(SignatureInvalid, match="DTD"):
        await receiver.verify(method="POST", url=URL, headers={}, body=body)
    with pytest.raises(PayloadInvalid, match="DTD"):
        receiver.parse(headers={}, body=body)


def test_salesforce_outbound_other_objects_are_dropped(receiver: SalesforceOutboundMessages) -> None:
    assert receiver.parse(headers={}, body=message(sobject_type="sf:Lead")) == []


@pytest.mark.parametrize(("body", "field"), [
    (b"not xml", "body"),
    (b"<Envelope/>", "Envelope.Body.notifications"),
    (message(opportunity_id="bad id!"), "Notification[0].sObject.Id"),
    (message(notification_id=""), "Notification[0].Id"),
])
def test_salesforce_outbound_malformed_message_names_the_field(receiver: SalesforceOutboundMessages, body: bytes,
                                                              field: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        receiver.parse(headers={}, body=body)
    assert caught.value.field == field


# -- through the real ingress ------------------------------------------------------------------------
@pytest.fixture
def sf_ingress(settings: Settings, task_queue: str, tmp_path: Path,
               temporal_env: WorkflowEnvironment) -> Iterator[tuple[str, Settings]]:
    """The ingress serving the Salesforce receiver (CRM_ADAPTER=salesforce) over real HTTP."""
    s = settings.model_copy(update={"task_queue": task_queue, "data_dir": tmp_path, "crm_adapter": "salesforce",
                                    "ingress_temporal_timeout_seconds": 3.0})
    target = temporal_env.client.service_client.config.target_host
    provider = ClientProvider(connector_to(target, temporal_env.client.namespace), timeout=3.0)
    ledger = EventLedger.from_settings(s)
    app = create_app(settings=s, client_provider=provider, receivers={"salesforce": from_settings(s)},
                     ledger=ledger, clm=None)
    running = start_in_thread(app)
    yield f"{running.base_url}/webhooks/salesforce", s
    running.stop()
    ledger.close()


def _ack(response: httpx.Response) -> str | None:
    root = ET.fromstring(response.content)
    found = root.find(f"{SOAP}Body/{ACK_NS}notificationsResponse/{ACK_NS}Ack")
    return None if found is None else found.text


async def test_salesforce_ingress_acks_an_opportunity_no_flow_acts_on(sf_ingress: tuple[str, Settings]) -> None:
    url, s = sf_ingress
    config = vendor_settings(s, "salesforce")
    body = message(org=config.org_id, stage="Prospecting", notification_id=f"04l{uuid.uuid4().hex[:12]}",
                   opportunity_id=f"006{uuid.uuid4().int % 10**12:012d}")
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(f"{url}?{config.outbound_secret_param}={config.outbound_secret}", content=body,
                                   headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    assert _ack(response) == "true"


@pytest.mark.parametrize("case", ["wrong secret", "missing secret", "wrong org", "entity bomb"])
async def test_salesforce_ingress_refuses_with_a_4xx_soap_fault(sf_ingress: tuple[str, Settings], case: str) -> None:
    url, s = sf_ingress
    config = vendor_settings(s, "salesforce")
    secret = {"wrong secret": "nope", "missing secret": None}.get(case, config.outbound_secret)
    body = message(org="00D000000000999AAA" if case == "wrong org" else config.org_id,
                   prolog=BILLION_LAUGHS if case == "entity bomb" else "")
    target = url if secret is None else f"{url}?{config.outbound_secret_param}={secret}"
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(target, content=body, headers={"Content-Type": "text/xml"})

    assert 400 <= response.status_code < 500
    assert _ack(response) is None and b"<faultcode>soapenv:Client</faultcode>" in response.content


# -- the emulator's own messages verify --------------------------------------------------------------
@pytest.fixture(scope="module")
def capture() -> Iterator[tuple[RunningApp, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/webhooks/salesforce")
    async def hook(request: Request) -> Response:
        received.append({"url": str(request.url), "headers": dict(request.headers), "body": await request.body()})
        return Response(content=b"<Ack>true</Ack>", media_type="text/xml")

    running = start_in_thread(app)
    yield running, received
    running.stop()


async def test_salesforce_emulator_sends_an_outbound_message_on_a_stage_change(
        settings: Settings, salesforce_sandbox: SandboxHandle,
        capture: tuple[RunningApp, list[dict[str, Any]]]) -> None:
    running, received = capture
    target = f"{running.base_url}/webhooks/salesforce"
    salesforce_sandbox.post_control("webhooks", {"url": target})
    control = httpx.AsyncClient(base_url=f"{salesforce_sandbox.base_url}/_sandbox", timeout=10)
    config = vendor_settings(settings, "salesforce")
    try:
        seeded = (await control.post("/seed/deal", json={"opportunity": {
            "Name": "Outbound deal", "StageName": "Prospecting", "CloseDate": "2026-01-01"}})).json()
        opportunity_id = seeded["opportunityId"]
        await control.post(f"/opportunities/{opportunity_id}/stage", json={"stage": config.closed_won_stage})
        delivery = None
        for _ in range(100):
            delivery = next((d for d in received if opportunity_id.encode() in d["body"]
                             and config.closed_won_stage.encode() in d["body"]), None)
            if delivery:
                break
            await asyncio.sleep(0.05)
    finally:
        await control.delete("/webhooks")
        await control.aclose()
    assert delivery is not None, "the emulator sent no outbound message for the stage change"
    receiver = from_settings(settings)

    await receiver.verify(method="POST", url=delivery["url"], headers=delivery["headers"], body=delivery["body"])
    events = receiver.parse(headers=delivery["headers"], body=delivery["body"])

    assert f"{config.outbound_secret_param}=" in delivery["url"]
    assert delivery["headers"]["soapaction"] == '""' and delivery["headers"]["content-type"].startswith("text/xml")
    assert [type(e) for e in events] == [DealStageReached, DealChanged]
    assert events[0].deal_id == opportunity_id and events[0].is_closed_won
