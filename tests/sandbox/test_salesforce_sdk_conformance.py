"""``simple-salesforce``, the widely used Python client of Salesforce's REST API, judges the Salesforce emulator:
used as an integrator uses it, over HTTPS (it builds ``https://`` URLs only), with a session from the org's OAuth
endpoint. Where the client and the emulator disagree, the emulator is wrong."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from settings import Settings
from tests.helpers.servers import build_app, vendor_settings
from tests.helpers.tls import TlsApp, serve_tls


@pytest.fixture(scope="module")
def org(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TlsApp, Any]]:
    app = build_app("salesforce", settings)
    served = serve_tls(app, tmp_path_factory.mktemp("tls"))
    yield served, app
    served.stop()


def login(served: TlsApp, config: Any) -> Salesforce:
    """A session from the client-credentials flow (documented form body), handed to simple-salesforce."""
    token = requests.post(f"{served.base_url}/services/oauth2/token", verify=served.ca, timeout=10, data={
        "grant_type": "client_credentials", "client_id": config.client_id, "client_secret": config.client_secret})
    token.raise_for_status()
    body = token.json()
    assert body["token_type"] == "Bearer" and body["instance_url"].startswith("https://")
    session = requests.Session()
    session.trust_env = False  # a REQUESTS_CA_BUNDLE in the environment would replace our CA
    session.verify = str(served.ca)
    return Salesforce(instance_url=body["instance_url"], session_id=body["access_token"], version="60.0",
                      session=session)


@pytest.fixture
def sf(org: tuple[TlsApp, Any], settings: Settings) -> Salesforce:
    return login(org[0], vendor_settings(settings, "salesforce"))


def uid() -> str:
    return uuid.uuid4().hex[:10]


def test_salesforce_sdk_describe_global_and_object(sf: Salesforce) -> None:
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Account", "Contact", "Opportunity", "OpportunityLineItem", "OpportunityContactRole", "Product2",
            "PricebookEntry"} <= names
    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert fields["Id"]["type"] == "id" and fields["StageName"]["type"] == "picklist"
    assert fields["SystemModstamp"]["type"] == "datetime"
    account = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert account["Revops_External_Ref__c"]["externalId"] is True


def test_salesforce_sdk_create_get_update_delete(sf: Salesforce) -> None:
    created = sf.Account.create({"Name": f"SDK {uid()}", "Website": "sdk.example"})
    assert created["success"] is True and len(created["id"]) == 18

    fetched = sf.Account.get(created["id"])
    by_15 = sf.Account.get(created["id"][:15])
    status = sf.Account.update(created["id"], {"BillingCity": "Leeds"})

    assert fetched["attributes"]["type"] == "Account" and by_15["Id"] == created["id"]
    assert status == 204 and sf.Account.get(created["id"])["BillingCity"] == "Leeds"
    assert sf.Account.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(created["id"])


def test_salesforce_sdk_upsert_by_external_id_201_then_200_with_created(sf: Salesforce) -> None:
    ref = f"domain:{uid()}.example"

    first = sf.Account.upsert(f"Revops_External_Ref__c/{ref}", {"Name": "Upserted"}, raw_response=True)
    again = sf.Account.upsert(f"Revops_External_Ref__c/{ref}", {"Name": "Upserted again"}, raw_response=True)

    assert first.status_code == 201 and first.json()["created"] is True
    assert again.status_code == 200 and again.json() == {"id": first.json()["id"], "success": True, "errors": [],
                                                         "created": False}
    assert sf.Account.get_by_custom_id("Revops_External_Ref__c", ref)["Name"] == "Upserted again"


def test_salesforce_sdk_query_all_follows_next_records_url(sf: Salesforce) -> None:
    tag = uid()
    records = [{"attributes": {"type": "Opportunity"}, "Name": f"{tag} {i:03d}", "StageName": "Prospecting",
                "CloseDate": "2026-01-01", "Amount": i} for i in range(250)]
    for start in (0, 200):
        results = sf.restful("composite/sobjects", method="POST",
                             json={"allOrNone": True, "records": records[start:start + 200]})
        assert len(results) == len(records[start:start + 200]) and all(r["success"] for r in results)
    soql = f"SELECT Id, Name, Amount FROM Opportunity WHERE Name LIKE '{tag}%' ORDER BY Name DESC LIMIT 240"

    first = sf.query(soql, headers={"Sforce-Query-Options": "batchSize=200"})
    everything = sf.query_all(soql, headers={"Sforce-Query-Options": "batchSize=200"})

    assert first["totalSize"] == 240 and len(first["records"]) == 200 and first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v60.0/query/")
    assert [r["Name"] for r in everything["records"]] == [f"{tag} {i:03d}" for i in range(249, 9, -1)]
    count = sf.query(f"SELECT COUNT() FROM Opportunity WHERE Name LIKE '{tag}%' AND Amount >= 100")
    assert count["totalSize"] == 150


def test_salesforce_sdk_relationship_fields_and_where_in(sf: Salesforce) -> None:
    account = sf.Account.create({"Name": f"Rel {uid()}"})["id"]
    contact = sf.Contact.create({"LastName": "Ledger", "Email": "ann@rel.example", "AccountId": account})["id"]
    opportunity = sf.Opportunity.create({"Name": "Rel", "StageName": "Prospecting", "CloseDate": "2026-01-01",
                                         "AccountId": account})["id"]
    sf.OpportunityContactRole.create({"OpportunityId": opportunity, "ContactId": contact, "Role": "Billing Contact",
                                      "IsPrimary": True})

    rows = sf.query_all("SELECT ContactId, Role, Contact.Email, Contact.LastName FROM OpportunityContactRole "
                        f"WHERE OpportunityId IN ('{opportunity[:15]}', '006000000000777AAA') "
                        "AND (Role = 'billing contact' OR IsPrimary = true)")["records"]

    assert len(rows) == 1 and rows[0]["ContactId"] == contact
    assert rows[0]["Contact"]["Email"] == "ann@rel.example" and rows[0]["Contact"]["attributes"]["type"] == "Contact"


def test_salesforce_sdk_products_roll_up_into_the_opportunity_amount(sf: Salesforce) -> None:
    opportunity = sf.Opportunity.create({"Name": f"Lines {uid()}", "StageName": "Prospecting",
                                         "CloseDate": "2026-01-01", "Amount": 1})["id"]
    product = sf.Product2.create({"Name": "Seat", "ProductCode": f"SEAT-{uid()}", "IsActive": True})["id"]
    book = sf.Pricebook2.create({"Name": "Standard", "IsActive": True})["id"]
    entry = sf.PricebookEntry.create({"Pricebook2Id": book, "Product2Id": product, "UnitPrice": 120,
                                      "IsActive": True})["id"]
    line = sf.OpportunityLineItem.create({"OpportunityId": opportunity, "PricebookEntryId": entry, "Quantity": 3,
                                          "UnitPrice": 99.99, "Discount": 10})["id"]
    sf.OpportunityLineItem.create({"OpportunityId": opportunity, "PricebookEntryId": entry, "Quantity": 2,
                                   "TotalPrice": 50})

    read = sf.OpportunityLineItem.get(line)
    # 3 x 99.99 less 10 % = 269.973 -> 269.97; plus a line given its total, 50.00
    assert (read["ListPrice"], read["TotalPrice"], read["ProductCode"]) == (120, 269.97, read["ProductCode"])
    assert read["ProductCode"].startswith("SEAT-")
    assert sf.Opportunity.get(opportunity)["Amount"] == 319.97
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.OpportunityLineItem.update(line, {"ProductCode": "OTHER"})
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_salesforce_sdk_errors_are_salesforce_shaped(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as invalid:
        sf.Account.create({"Name": "X", "Colour__c": "blue"})
    assert invalid.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Opportunity.create({"Name": "No stage"})
    assert missing.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert set(missing.value.content[0]["fields"]) == {"StageName", "CloseDate"}
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.query("SELECT Id FROM Opportunity WHERE")
    assert malformed.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def test_salesforce_sdk_expired_session_and_spent_allowance(sf: Salesforce, org: tuple[TlsApp, Any],
                                                            settings: Settings) -> None:
    served, _app = org
    sf.query("SELECT Id FROM Account LIMIT 1")
    requests.post(f"{served.base_url}/_sandbox/sessions/expire", verify=served.ca, timeout=10).raise_for_status()
    with pytest.raises(SalesforceExpiredSession) as expired:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert expired.value.content[0]["errorCode"] == "INVALID_SESSION_ID"

    fresh = login(served, vendor_settings(settings, "salesforce"))
    limits = fresh.limits()["DailyApiRequests"]
    # simple-salesforce reads Sforce-Limit-Info: the header and /limits agree
    assert fresh.api_usage["api-usage"].used == limits["Max"] - limits["Remaining"]
    assert fresh.api_usage["api-usage"].total == limits["Max"]
    used = limits["Max"] - limits["Remaining"] + 1
    requests.post(f"{served.base_url}/_sandbox/api-limit", json={"max": used, "used": used}, verify=served.ca,
                  timeout=10).raise_for_status()
    try:
        with pytest.raises(SalesforceRefusedRequest) as refused:
            fresh.query("SELECT Id FROM Account LIMIT 1")
        assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    finally:
        requests.post(f"{served.base_url}/_sandbox/api-limit", json={"max": 100_000, "used": 0}, verify=served.ca,
                      timeout=10).raise_for_status()


def test_salesforce_sdk_trailing_slash_and_json_content_type_on_get(sf: Salesforce, org: tuple[TlsApp, Any]) -> None:
    created = sf.Product2.create({"Name": f"Widget {uid()}", "ProductCode": "W-1"})["id"]
    url = f"{sf.base_url}sobjects/Product2/{created}/"
    response = sf.session.get(url, headers={**sf.headers, "Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["ProductCode"] == "W-1"
    assert Path(str(org[0].ca)).exists()
