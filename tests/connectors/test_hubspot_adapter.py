"""The HubSpot adapter against the HubSpot emulator over real HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from canonical import Account, Address, BillingInterval, BillingModel
from canonical.requests import AccountFigures, DealWriteBack, ProvisionedEntity, ProvisioningRecord
from connectors.errors import AuthFailed, NotFound, RateLimited, Rejected, Unavailable
from connectors.hubspot import HubSpotCrm, from_settings
from connectors.hubspot.client import retry_after
from connectors.ports import CrmPort
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.helpers.servers import SandboxHandle, build_app, hubspot_auth, with_vendor


def seed_deal(base_url: str, **overrides: Any) -> dict[str, Any]:
    """A complete deal (company, billing contact, two lines) through the emulator's seed route."""
    tag = uuid.uuid4().hex[:8]
    body: dict[str, Any] = {
        "deal": {"dealname": f"Deal {tag}", "amount": "21600.00", "dealstage": "qualifiedtobuy",
                 "deal_currency_code": "eur", "closedate": "2025-01-15T00:00:00Z", "revops_region": "EMEA",
                 "revops_legal_entity": "EU01", "revops_billing_model": "subscription",
                 "revops_start_date": "2025-02-01", "revops_end_date": "2026-01-31",
                 "revops_payment_terms_days": "45", "revops_non_standard_terms": "true"},
        "company": {"name": f"Acme {tag} GmbH", "domain": f"acme-{tag}.de", "country": "Germany",
                    "address": "Hauptstr. 1", "city": "Berlin", "zip": "10115", "state": "BE"},
        "contacts": [{"firstname": "Ann", "lastname": "Ledger", "email": f"ann@{tag}.de",
                      "revops_contact_role": "billing"},
                     {"firstname": "Sam", "lastname": "Signer", "email": f"sam@{tag}.de",
                      "revops_contact_role": "signer"}],
        "line_items": [{"name": "Platform seat", "hs_sku": "SEAT", "quantity": "10", "price": "200",
                        "hs_discount_percentage": "10", "recurringbillingfrequency": "monthly",
                        "revops_billing_model": "subscription"},
                       {"name": "Onboarding", "hs_sku": "ONB", "quantity": "1", "price": "3600",
                        "revops_billing_model": "fixed_fee", "revops_legal_entity": "UK01"}],
    }
    body.update(overrides)
    response = httpx.post(f"{base_url}/_sandbox/seed/deal", json=body, timeout=10)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def deal_properties(base_url: str, deal_id: str) -> dict[str, str]:
    response = httpx.get(f"{base_url}/_sandbox/deals/{deal_id}", timeout=10)
    response.raise_for_status()
    return response.json()["properties"]  # type: ignore[no-any-return]


@pytest_asyncio.fixture
async def crm(settings: Settings, hubspot_sandbox: SandboxHandle) -> AsyncIterator[HubSpotCrm]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


@pytest.fixture
def fresh_portal(settings: Settings) -> Iterator[tuple[RunningApp, Settings]]:
    """A brand-new emulator (standard properties only), for tests about property definitions."""
    running = start_in_thread(build_app("hubspot", settings))
    yield running, with_vendor(settings, "hubspot", base_url=running.base_url)
    running.stop()


async def test_hubspot_adapter_implements_crm_port(crm: HubSpotCrm) -> None:
    assert isinstance(crm, CrmPort)


async def test_hubspot_get_deal_maps_deal_company_contacts_and_lines(
        crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)

    deal = await crm.get_deal(seeded["dealId"])

    assert deal.crm_id == seeded["dealId"]
    assert (deal.stage, deal.amount, deal.currency) == ("qualifiedtobuy", Decimal("21600.00"), "EUR")
    assert (deal.region, deal.legal_entity, deal.billing_model) == ("EMEA", "EU01", BillingModel.SUBSCRIPTION)
    assert (deal.start_date, deal.end_date) == (date(2025, 2, 1), date(2026, 1, 31))
    assert deal.payment_terms_days == 45 and deal.non_standard_terms is True
    assert deal.account is not None and deal.account.crm_id == seeded["companyId"]
    assert deal.account.country == "DE" and deal.account.address is not None
    assert (deal.account.address.city, deal.account.address.postal_code) == ("Berlin", "10115")
    assert [c.crm_id for c in deal.contacts] == seeded["contactIds"]
    assert deal.billing_contact is not None and deal.billing_contact.first_name == "Ann"
    seat, onboarding = deal.lines
    assert (seat.crm_id, seat.product_code, seat.quantity, seat.unit_price) == (
        seeded["lineItemIds"][0], "SEAT", Decimal(10), Decimal(200))
    assert seat.discount_percent == Decimal(10) and seat.interval == BillingInterval.MONTH
    assert onboarding.billing_model == BillingModel.FIXED_FEE and onboarding.legal_entity == "UK01"
    # the value over the term: 12 months x 1,800.00 seats + 3,600.00 onboarding (issue 24)
    assert deal.total().amount == Decimal("25200.00")
    assert deal.missing_commercial_fields() == []


async def test_hubspot_get_deal_without_data_still_loads(crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url, deal={"dealname": "Bare"},
                       company=None, contacts=[], line_items=[{"name": "No sku, no price"}])

    deal = await crm.get_deal(seeded["dealId"])

    assert deal.account is None and deal.contacts == [] and deal.amount is None and deal.currency is None
    assert deal.lines[0].product_code == f"hubspot-line-item-{seeded['lineItemIds'][0]}"
    missing = {m.field for m in deal.missing_commercial_fields()}
    assert {"region", "currency", "start_date", "company", "line_items", "billing_contact"} <= missing


async def test_hubspot_get_deal_unknown_id_raises_not_found(crm: HubSpotCrm) -> None:
    with pytest.raises(NotFound) as caught:
        await crm.get_deal("999999999")
    assert "OBJECT_NOT_FOUND" in caught.value.message


async def test_hubspot_get_deal_reads_paged_associations_through_v4(
        crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    lines = [{"name": f"Line {i}", "hs_sku": f"SKU-{i}", "quantity": "1", "price": str(10 + i)} for i in range(5)]
    seeded = seed_deal(hubspot_sandbox.base_url, line_items=lines)
    app_state = hubspot_sandbox.running.app.state
    app_state.inline_association_limit = 2  # v3 reads now page after two IDs
    try:
        deal = await crm.get_deal(seeded["dealId"])
    finally:
        app_state.inline_association_limit = 100
    assert [line.crm_id for line in deal.lines] == seeded["lineItemIds"]
    assert [line.product_code for line in deal.lines] == [f"SKU-{i}" for i in range(5)]


async def test_hubspot_write_back_sets_revops_properties(crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)

    await crm.write_back(seeded["dealId"], DealWriteBack(revops_status="awaiting_signature",
                                                         clm_workflow_id="wf-123", contract_value="21600.00"))

    props = deal_properties(hubspot_sandbox.base_url, seeded["dealId"])
    assert props["revops_status"] == "awaiting_signature"
    assert props["revops_clm_workflow_id"] == "wf-123"
    assert props["revops_contract_value"] == "21600.00"
    assert props["dealstage"] == "qualifiedtobuy"  # nothing CRM-owned touched
    deal = await crm.get_deal(seeded["dealId"])
    assert deal.write_backs == DealWriteBack(revops_status="awaiting_signature", clm_workflow_id="wf-123",
                                             contract_value="21600.00")


async def test_hubspot_provisioning_record_round_trips_as_one_property(
        crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)
    record = ProvisioningRecord(entities=[
        ProvisionedEntity(legal_entity="US01", tenant_id="t-us", project_code="P-1-US01", project_id="p1",
                          erp_contact_id="c1", billing_customer_id="cus_1", budget="1200.00"),
        ProvisionedEntity(legal_entity="EU01", tenant_id="t-eu", project_code="P-1-EU01", project_id="p2")],
        billing_ids=["sub_1", "price_2"])

    await crm.write_back(seeded["dealId"], DealWriteBack(provisioned=record))

    assert (await crm.get_deal(seeded["dealId"])).write_backs.provisioned == record
    stored = deal_properties(hubspot_sandbox.base_url, seeded["dealId"])["revops_provisioned"]
    assert ProvisioningRecord.model_validate_json(stored) == record


async def test_hubspot_provisioning_record_edited_by_hand_reads_as_missing(
        crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)
    await crm.write_back(seeded["dealId"], DealWriteBack(revops_status="provisioned"))
    async with httpx.AsyncClient(timeout=10) as http:  # a person pastes old-style IDs into the property
        edited = await http.patch(f"{hubspot_sandbox.base_url}/_sandbox/deals/{seeded['dealId']}",
                                  json={"properties": {"revops_provisioned": "P-1-US01,P-1-EU01"}})
        edited.raise_for_status()

    deal = await crm.get_deal(seeded["dealId"])

    assert deal.write_backs.provisioned is None and deal.write_backs.revops_status == "provisioned"


async def test_hubspot_write_back_clears_exception_with_empty_string(
        crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)
    await crm.write_back(seeded["dealId"], DealWriteBack(revops_exception="region missing"))
    assert deal_properties(hubspot_sandbox.base_url, seeded["dealId"])["revops_exception"] == "region missing"

    await crm.write_back(seeded["dealId"], DealWriteBack(revops_exception=""))

    assert "revops_exception" not in deal_properties(hubspot_sandbox.base_url, seeded["dealId"])


async def test_hubspot_ensure_properties_creates_definitions_on_a_fresh_portal(
        fresh_portal: tuple[RunningApp, Settings]) -> None:
    running, settings = fresh_portal
    portal = httpx.AsyncClient(base_url=running.base_url,
                               headers=hubspot_auth(settings))
    before = (await portal.get("/crm/v3/properties/deals")).json()["results"]
    assert "revops_status" not in {p["name"] for p in before}
    seeded = seed_deal(running.base_url)
    crm = from_settings(settings)
    try:
        await crm.write_back(seeded["dealId"], DealWriteBack(revops_status="provisioning"))  # lazily ensures
        for object_type, name in (("deals", "revops_status"), ("deals", "revops_clm_record_id"),
                                  ("companies", "revops_external_ref"), ("contacts", "revops_contact_role"),
                                  ("line_items", "revops_billing_model")):
            found = await portal.get(f"/crm/v3/properties/{object_type}/{name}")
            assert found.status_code == 200, (object_type, name)
        unique = await portal.get("/crm/v3/properties/companies/revops_external_ref")
    finally:
        await crm.aclose()
        await portal.aclose()
    assert unique.json()["hasUniqueValue"] is True
    assert deal_properties(running.base_url, seeded["dealId"])["revops_status"] == "provisioning"


async def test_hubspot_write_back_recreates_a_deleted_property(fresh_portal: tuple[RunningApp, Settings]) -> None:
    running, settings = fresh_portal
    seeded = seed_deal(running.base_url)
    crm = from_settings(settings)
    try:
        await crm.ensure_properties()
        running.app.state.store.delete("hs:property:deals", "revops_status")  # an admin deleted it

        await crm.write_back(seeded["dealId"], DealWriteBack(revops_status="provisioned"))
    finally:
        await crm.aclose()
    assert deal_properties(running.base_url, seeded["dealId"])["revops_status"] == "provisioned"


async def test_hubspot_search_deals_modified_since_pages_oldest_first(
        crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    await asyncio.sleep(0.01)
    since = datetime.now(UTC)
    seeded = [seed_deal(hubspot_sandbox.base_url)["dealId"] for _ in range(3)]
    await asyncio.sleep(0.01)
    await crm.write_back(seeded[0], DealWriteBack(revops_status="touched"))  # now the newest change

    first = await crm.search_deals_modified_since(since, limit=2)
    second = await crm.search_deals_modified_since(since, after=first.next_after, limit=2)

    assert [d.crm_id for d in first.deals] == [seeded[1], seeded[2]]
    assert first.next_after is not None and second.next_after is None
    assert [d.crm_id for d in second.deals] == [seeded[0]]
    assert second.deals[0].region == "EMEA" and second.deals[0].stage == "qualifiedtobuy"
    assert first.checkpoint is not None and second.checkpoint is not None
    assert since <= first.checkpoint <= second.checkpoint
    later = await crm.search_deals_modified_since(second.checkpoint + timedelta(milliseconds=1))
    assert later.deals == [] and later.checkpoint is None


async def test_hubspot_upsert_companies_twice_creates_each_once(
        crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    tag = uuid.uuid4().hex[:8]
    accounts = [Account(name=f"Alpha {tag}", domain=f"https://www.alpha-{tag}.com/"),
                Account(name=f"Beta {tag}", erp_contact_id=f"xero-{tag}",
                        address=Address(line1="1 Main St", city="Austin", region="TX", country="US"))]

    first = await crm.upsert_companies(accounts)
    second = await crm.upsert_companies(accounts)

    assert first.ids == second.ids and len(set(first.ids)) == 2
    assert (first.created, first.updated, second.created, second.updated) == (2, 0, 0, 2)
    refs = [f"domain:alpha-{tag}.com", f"xero:contact:xero-{tag}"]
    stored = hubspot_sandbox.store.list(
        "hs:companies", where=lambda c: c["properties"].get("revops_external_ref") in refs)
    assert sorted(c["id"] for c in stored) == sorted(first.ids)
    beta = next(c for c in stored if c["id"] == first.ids[1])["properties"]
    assert (beta["city"], beta["state"], beta["country"]) == ("Austin", "TX", "US")


async def test_hubspot_upsert_companies_chunks_large_batches(crm: HubSpotCrm) -> None:
    tag = uuid.uuid4().hex[:8]
    accounts = [Account(name=f"Bulk {i}", domain=f"bulk-{i}-{tag}.io") for i in range(130)]
    accounts.append(accounts[0])  # the same company twice in one call

    result = await crm.upsert_companies(accounts)

    assert len(result.ids) == 131 and len(set(result.ids)) == 130 and result.ids[-1] == result.ids[0]
    assert result.created == 130


async def test_hubspot_upsert_companies_updates_known_companies_by_id(
        crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)
    tag = uuid.uuid4().hex[:8]

    result = await crm.upsert_companies([Account(crm_id=seeded["companyId"], name=f"Renamed {tag}",
                                                 domain=f"renamed-{tag}.de")])

    assert result.ids == [seeded["companyId"]] and (result.created, result.updated) == (0, 1)
    company = hubspot_sandbox.store.get("hs:companies", seeded["companyId"])
    assert company is not None and company["properties"]["revops_external_ref"] == f"domain:renamed-{tag}.de"


async def test_hubspot_upsert_companies_without_any_key_is_rejected(crm: HubSpotCrm) -> None:
    with pytest.raises(Rejected, match="no domain"):
        await crm.upsert_companies([Account(name="Nameless Ltd")])


async def test_hubspot_write_account_figures_per_currency(crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)
    figures = [AccountFigures(currency="USD", billed="1000.00", paid="400.00", outstanding="600.00",
                              overdue="100.00", credited="0.00", last_payment_date=date(2025, 3, 1), dso_days="21"),
               AccountFigures(currency="eur", billed="50.00", paid="50.00", outstanding="0.00", overdue="0.00",
                              credited="5.00", last_payment_date=date(2025, 4, 2))]

    await crm.write_account_figures(seeded["companyId"], figures)

    company = hubspot_sandbox.store.get("hs:companies", seeded["companyId"])
    assert company is not None
    props = company["properties"]
    assert (props["revops_billed_usd"], props["revops_outstanding_usd"], props["revops_overdue_usd"]) == (
        "1000.00", "600.00", "100.00")
    assert (props["revops_paid_eur"], props["revops_credited_eur"]) == ("50.00", "5.00")
    assert props["revops_dso_days_usd"] == "21" and "revops_dso_days_eur" not in props
    assert props["revops_last_payment_date"] == "2025-04-02"


# -- error translation ------------------------------------------------------------------------------
async def test_hubspot_server_error_raises_unavailable(crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)
    with hubspot_sandbox.faults(error_rate=1, status=503), pytest.raises(Unavailable) as caught:
        await crm.get_deal(seeded["dealId"])
    assert caught.value.status == 503 and "injected fault" in caught.value.message


async def test_hubspot_rate_limit_raises_rate_limited_with_retry_after(
        crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)
    with hubspot_sandbox.faults(rate_limit_per_second=0.5, rate_limit_burst=1, path_prefix="/crm/v3/objects/deals/"):
        await crm.search_deals_modified_since(datetime.now(UTC))  # takes the only token
        with pytest.raises(RateLimited) as caught:
            await crm.get_deal(seeded["dealId"])
    assert caught.value.retry_after == 2.0
    assert "secondly limit" in caught.value.message


def _hubspot_429(body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(429, content=json.dumps(body).encode(), headers={"Content-Type": "application/json",
                                                                           **(headers or {})})


def test_hubspot_rate_limit_without_retry_after_uses_the_policy() -> None:
    secondly = _hubspot_429({"status": "error", "errorType": "RATE_LIMIT", "policyName": "SECONDLY",
                             "message": "You have reached your secondly limit."})
    rolling = _hubspot_429({"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING",
                            "message": "You have reached your ten_secondly_rolling limit."})
    unnamed = _hubspot_429({"status": "error"}, {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    explicit = _hubspot_429({"policyName": "DAILY"}, {"Retry-After": "7"})
    assert [retry_after(r) for r in (secondly, rolling, unnamed, explicit)] == [1.0, 10.0, 10.0, 7.0]


async def test_hubspot_validation_error_raises_rejected_with_vendor_message(
        crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)
    with pytest.raises(Rejected) as caught:
        await crm.write_back(seeded["dealId"], DealWriteBack(contract_value="twelve thousand"))
    assert caught.value.status == 400
    assert "VALIDATION_ERROR" in caught.value.message
    assert "twelve thousand was not a valid number" in caught.value.message


async def test_hubspot_timeout_raises_unavailable(settings: Settings, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)
    crm = from_settings(settings, timeout=0.3)
    try:
        with hubspot_sandbox.faults(timeout_rate=1, hang_seconds=1.5), pytest.raises(Unavailable) as caught:
            await crm.get_deal(seeded["dealId"])
    finally:
        await crm.aclose()
    assert "timeout" in caught.value.message


async def test_hubspot_wrong_token_raises_auth_failed(settings: Settings, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)
    crm = from_settings(with_vendor(settings, "hubspot", access_token="pat-revoked"))
    try:
        with pytest.raises(AuthFailed) as caught:
            await crm.get_deal(seeded["dealId"])
    finally:
        await crm.aclose()
    assert caught.value.status == 401 and "INVALID_AUTHENTICATION" in caught.value.message


async def test_hubspot_malformed_success_body_raises_unavailable(settings: Settings) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"<html>maintenance</html>"))
    crm = from_settings(settings, transport=transport)
    try:
        with pytest.raises(Unavailable, match="malformed JSON"):
            await crm.get_deal("1")
    finally:
        await crm.aclose()


async def test_hubspot_unbilled_is_written_per_currency_only_when_known(crm: HubSpotCrm,
                                                                        hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed_deal(hubspot_sandbox.base_url)
    await crm.write_deal_figures(seeded["dealId"], [
        AccountFigures(currency="USD", billed="12000.00", paid="0.00", outstanding="12000.00", overdue="0.00",
                       credited="0.00", unbilled="18000.00"),
        AccountFigures(currency="EUR", billed="5.00", paid="0.00", outstanding="5.00", overdue="0.00",
                       credited="0.00")])

    deal = hubspot_sandbox.store.get("hs:deals", seeded["dealId"])
    assert deal is not None
    assert deal["properties"]["revops_unbilled_usd"] == "18000.00"
    assert "revops_unbilled_eur" not in deal["properties"], "no contract in EUR: nothing written"
