"""HubSpot's own Python SDK (hubspot-api-client) judges the HubSpot emulator: pointed at the emulator's base URL
and used as an integrator uses it. Where the SDK and the emulator disagree, the emulator is wrong."""

from __future__ import annotations

import time
import uuid

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import AssociationSpec
from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyCreate
from hubspot.crm.deals import ApiException as DealsApiException
from hubspot.crm.deals import BatchReadInputSimplePublicObjectId, PublicObjectSearchRequest, SimplePublicObjectId
from hubspot.crm.deals import SimplePublicObjectInput as DealUpdate
from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealCreate
from hubspot.crm.properties import PropertyCreate
from hubspot.utils.signature import Signature

from connectors.hubspot import webhooks_from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings

#: HubSpot-defined association type "deal to company" (primary)
DEAL_TO_COMPANY = 5


def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def sdk(settings: Settings, hubspot_sandbox: SandboxHandle) -> HubSpot:
    return HubSpot(access_token=vendor_settings(settings, "hubspot").access_token, host=hubspot_sandbox.base_url)


def company_and_deal(sdk: HubSpot, amount: str = "1200") -> tuple[str, str]:
    company = sdk.crm.companies.basic_api.create(simple_public_object_input_for_create=CompanyCreate(
        properties={"name": f"SDK Co {uid()}", "domain": f"{uid()}.example"}))
    deal = sdk.crm.deals.basic_api.create(simple_public_object_input_for_create=DealCreate(
        properties={"dealname": f"SDK deal {uid()}", "amount": amount, "dealstage": "qualifiedtobuy",
                    "pipeline": "default"}))
    return str(company.id), str(deal.id)


def test_hubspot_sdk_companies_and_deals_create_read_update(sdk: HubSpot) -> None:
    company_id, deal_id = company_and_deal(sdk)

    company = sdk.crm.companies.basic_api.get_by_id(company_id, properties=["name", "domain"])
    deal = sdk.crm.deals.basic_api.get_by_id(deal_id, properties=["dealname", "amount"])
    updated = sdk.crm.deals.basic_api.update(deal_id, simple_public_object_input=DealUpdate(
        properties={"amount": "1500"}))

    assert company.properties["name"].startswith("SDK Co") and company.properties["domain"].endswith(".example")
    assert deal.properties["amount"] == "1200" and deal.properties["dealname"].startswith("SDK deal")
    assert updated.properties["amount"] == "1500"


def test_hubspot_sdk_associations_v4(sdk: HubSpot) -> None:
    company_id, deal_id = company_and_deal(sdk)

    sdk.crm.associations.v4.basic_api.create(
        object_type="deals", object_id=deal_id, to_object_type="companies", to_object_id=company_id,
        association_spec=[AssociationSpec(association_category="HUBSPOT_DEFINED",
                                           association_type_id=DEAL_TO_COMPANY)])
    page = sdk.crm.associations.v4.basic_api.get_page(object_type="deals", object_id=deal_id,
                                                       to_object_type="companies")

    assert [str(r.to_object_id) for r in page.results] == [company_id]
    assert any(t.type_id == DEAL_TO_COMPANY for t in page.results[0].association_types)


def test_hubspot_sdk_properties_create_and_list(sdk: HubSpot) -> None:
    name = f"revops_sdk_{uid()}"
    created = sdk.crm.properties.core_api.create(object_type="deals", property_create=PropertyCreate(
        name=name, label="SDK test", type="string", field_type="text", group_name="dealinformation"))
    listed = sdk.crm.properties.core_api.get_all(object_type="deals")

    assert created.name == name and created.type == "string"
    assert name in {p.name for p in listed.results} and "dealname" in {p.name for p in listed.results}


def test_hubspot_sdk_batch_read_search_and_archive(sdk: HubSpot) -> None:
    marker = uid()
    ids = [company_and_deal(sdk, amount=str(100 + i))[1] for i in range(3)]
    for deal_id in ids:
        sdk.crm.deals.basic_api.update(deal_id, simple_public_object_input=DealUpdate(
            properties={"description": marker}))

    batch = sdk.crm.deals.batch_api.read(batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in ids], properties=["amount"]))
    found = sdk.crm.deals.search_api.do_search(public_object_search_request=PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "description", "operator": "EQ", "value": marker}]}],
        properties=["amount"], limit=10))
    sdk.crm.deals.basic_api.archive(ids[0])

    assert sorted(str(r.id) for r in batch.results) == sorted(ids)
    assert sorted(r.properties["amount"] for r in batch.results) == ["100", "101", "102"]
    assert found.total == 3 and sorted(str(r.id) for r in found.results) == sorted(ids)
    with pytest.raises(DealsApiException) as gone:
        sdk.crm.deals.basic_api.get_by_id(ids[0])
    assert gone.value.status == 404
    archived = sdk.crm.deals.basic_api.get_by_id(ids[0], archived=True)
    assert archived.archived is True


async def test_hubspot_sdk_signed_webhook_is_accepted_by_our_receiver(settings: Settings) -> None:
    """The SDK signs the decoded URI (as HubSpot documents); our receiver gets the URI as sent, escaped."""
    url = "https://ingress.example.com/webhooks/hubspot?portal=a%3Ab%40c&x=%20y"
    body = (b'[{"eventId": 1, "subscriptionType": "deal.propertyChange", "objectId": 7, "occurredAt": 1735689600000, '
            b'"propertyName": "dealstage", "propertyValue": "closedwon"}]')
    timestamp = str(int(time.time() * 1000))
    signature = Signature.get_signature(vendor_settings(settings, "hubspot").client_secret, body.decode(), "v3",
                                        http_uri="https://ingress.example.com/webhooks/hubspot?portal=a:b@c&x=%20y",
                                        http_method="POST", timestamp=timestamp)
    receiver = webhooks_from_settings(settings)

    headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp}
    await receiver.verify(method="POST", url=url, body=body, headers=headers)
    assert [(e.kind, e.source_event_id) for e in receiver.parse(headers=headers, body=body)] == [
        ("deal.stage_reached", "1")]
