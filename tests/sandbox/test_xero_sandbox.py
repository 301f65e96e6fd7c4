"""The Xero emulator over HTTP: identity, Xero's refusals, idempotency replay and key reuse,
``where`` filters and paging, validation shapes, faults answered Xero's way, webhook emission and
signing, and the ``/_sandbox`` human acts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from fastapi import FastAPI, Request, Response

from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.helpers.prism import spec_path
from tests.helpers.servers import SandboxHandle, vendor_settings


def _xero(settings: Settings) -> Any:
    return vendor_settings(settings, "xero")

API = "/api.xro/2.0"
PROJECTS = "/projects.xro/2.0"


def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def tenant(settings: Settings) -> str:
    return settings.entity("EU01").erp_tenant_id


@pytest.fixture
def xero(settings: Settings, xero_sandbox: SandboxHandle, tenant: str) -> Iterator[httpx.Client]:
    """A raw client with a token and the EU01 tenant header."""
    token = httpx.post(f"{xero_sandbox.base_url}/connect/token", data={"grant_type": "client_credentials"},
                       auth=(_xero(settings).client_id, _xero(settings).client_secret)).json()["access_token"]
    with httpx.Client(base_url=xero_sandbox.base_url, timeout=30, headers={
            "Authorization": f"Bearer {token}", "xero-tenant-id": tenant, "Accept": "application/json"}) as client:
        yield client


def new_contact(xero: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"Name": f"Contact {uid()}", **fields}
    response = xero.put(f"{API}/Contacts", json={"Contacts": [body]})
    assert response.status_code == 200, response.text
    return response.json()["Contacts"][0]  # type: ignore[no-any-return]


def new_invoice(xero: httpx.Client, contact_id: str, **fields: Any) -> dict[str, Any]:
    body = {"Type": "ACCREC", "Contact": {"ContactID": contact_id}, "Status": "AUTHORISED", "Date": "2024-05-01",
            "DueDate": "2024-05-31", "Reference": f"in_{uid()}",
            "LineItems": [{"Description": "Seat", "Quantity": 2, "UnitAmount": 50, "AccountCode": "200"}], **fields}
    response = xero.put(f"{API}/Invoices", json={"Invoices": [body]})
    assert response.status_code == 200, response.text
    return response.json()["Invoices"][0]  # type: ignore[no-any-return]


# -- identity and refusals ----------------------------------------------------------------------
def test_token_refuses_a_wrong_client_and_grant(settings: Settings, xero_sandbox: SandboxHandle) -> None:
    url = f"{xero_sandbox.base_url}/connect/token"
    wrong = httpx.post(url, data={"grant_type": "client_credentials"}, auth=(_xero(settings).client_id, "nope"))
    assert (wrong.status_code, wrong.json()) == (400, {"error": "invalid_client"})
    grant = httpx.post(url, data={"grant_type": "authorization_code"},
                       auth=(_xero(settings).client_id, _xero(settings).client_secret))
    assert (grant.status_code, grant.json()) == (400, {"error": "unsupported_grant_type"})
    form = httpx.post(url, data={"grant_type": "client_credentials", "client_id": _xero(settings).client_id,
                                 "client_secret": _xero(settings).client_secret})
    assert form.status_code == 200 and form.json()["token_type"] == "Bearer" and form.json()["expires_in"] == 1800


def test_api_refuses_a_missing_token_xeros_way(xero_sandbox: SandboxHandle, tenant: str) -> None:
    response = httpx.get(f"{xero_sandbox.base_url}{API}/Contacts", headers={"xero-tenant-id": tenant})
    assert response.status_code == 401
    assert response.json() | {"Instance": None} == {"Type": None, "Title": "Unauthorized", "Status": 401,
                                                    "Detail": "AuthenticationUnsuccessful", "Instance": None,
                                                    "Extensions": {}}


def test_api_refuses_an_unconnected_tenant_with_403(xero: httpx.Client) -> None:
    for headers in ({"xero-tenant-id": str(uuid.uuid4())}, {"xero-tenant-id": ""}):
        response = xero.get(f"{API}/Contacts", headers=headers)
        assert response.status_code == 403 and response.json()["Detail"] == "AuthorizationUnsuccessful"
    projects = xero.get(f"{PROJECTS}/Projects", headers={"xero-tenant-id": str(uuid.uuid4())})
    assert projects.status_code == 403


def test_connections_lists_every_legal_entity(xero: httpx.Client, settings: Settings) -> None:
    connections = xero.get("/connections").json()
    assert {c["tenantId"] for c in connections} == {e.erp_tenant_id for e in settings.legal_entities}
    assert all(c["tenantType"] == "ORGANISATION" for c in connections)


def test_revoked_tokens_are_refused(xero: httpx.Client, xero_sandbox: SandboxHandle) -> None:
    assert xero.get(f"{API}/Contacts", params={"page": 1}).status_code == 200
    assert xero_sandbox.post_control("tokens/revoke").json()["revoked"] >= 1
    assert xero.get(f"{API}/Contacts", params={"page": 1}).status_code == 401


def test_paths_are_case_insensitive(xero: httpx.Client) -> None:
    contact = new_contact(xero)
    assert xero.get(f"/API.XRO/2.0/contacts/{contact['ContactID']}").json()["Contacts"][0]["Name"] == contact["Name"]
    created = xero.post(f"{PROJECTS}/projects", json={"contactId": contact["ContactID"], "name": "lower"})
    assert created.status_code == 201


# -- idempotency --------------------------------------------------------------------------------
def test_idempotent_replay_returns_the_first_response(xero: httpx.Client, xero_sandbox: SandboxHandle,
                                                      tenant: str) -> None:
    key, name = f"key-{uid()}", f"Replay {uid()}"
    first = xero.put(f"{API}/Contacts", json={"Contacts": [{"Name": name}]}, headers={"Idempotency-Key": key})
    second = xero.put(f"{API}/Contacts", json={"Contacts": [{"Name": name}]}, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json() and second.headers["Idempotent-Replayed"] == "true"
    assert len(xero_sandbox.store.list("contact", tenant=tenant, where=lambda d: d["Name"] == name)) == 1


def test_idempotency_key_reused_with_other_parameters_is_refused(xero: httpx.Client, xero_sandbox: SandboxHandle,
                                                                 tenant: str) -> None:
    key = f"key-{uid()}"
    assert xero.put(f"{API}/Contacts", json={"Contacts": [{"Name": f"A {key}"}]},
                    headers={"Idempotency-Key": key}).status_code == 200
    other = xero.put(f"{API}/Contacts", json={"Contacts": [{"Name": f"B {key}"}]}, headers={"Idempotency-Key": key})
    assert other.status_code == 409
    assert other.json()["Title"] == "Conflict" and key in other.json()["Detail"]
    elsewhere = xero.post(f"{PROJECTS}/Projects", json={"name": "x"}, headers={"Idempotency-Key": key})
    assert elsewhere.status_code == 409  # keys are per organisation, not per endpoint
    assert not xero_sandbox.store.list("contact", tenant=tenant, where=lambda d: d["Name"] == f"B {key}")


def test_idempotency_key_over_128_characters_is_refused(xero: httpx.Client) -> None:
    response = xero.put(f"{API}/Contacts", json={"Contacts": [{"Name": f"Long {uid()}"}]},
                        headers={"Idempotency-Key": "k" * 129})
    assert response.status_code == 400 and "128" in response.json()["Message"]
    ok = xero.put(f"{API}/Contacts", json={"Contacts": [{"Name": f"Long {uid()}"}]},
                  headers={"Idempotency-Key": f"{uid()}{'k' * 118}"})
    assert ok.status_code == 200


# -- reading: where, paging ----------------------------------------------------------------------
def test_where_filters_by_contact_number_and_combined_clauses(xero: httpx.Client) -> None:
    number = f"CN-{uid()}"
    contact = new_contact(xero, ContactNumber=number)
    found = xero.get(f"{API}/Contacts", params={"where": f'ContactNumber=="{number}"'}).json()["Contacts"]
    assert [c["ContactID"] for c in found] == [contact["ContactID"]]
    invoice = new_invoice(xero, contact["ContactID"])
    where = (f'Type=="ACCREC" AND Reference=="{invoice["Reference"]}" AND '
             f'Contact.ContactID==Guid("{contact["ContactID"]}") AND Status!="DELETED"')
    assert [i["InvoiceID"] for i in xero.get(f"{API}/Invoices", params={"where": where}).json()["Invoices"]] == [
        invoice["InvoiceID"]]
    bad = xero.get(f"{API}/Contacts", params={"where": 'Name.StartsWith("x")'})
    assert bad.status_code == 400 and bad.json()["Type"] == "QueryParseException"


def test_pagination_pages_and_reports_counts(xero: httpx.Client) -> None:
    term = uid()
    ids = [new_contact(xero, Name=f"Paged {term} {n}")["ContactID"] for n in range(3)]
    first = xero.get(f"{API}/Contacts", params={"searchTerm": term, "page": 1, "pageSize": 2}).json()
    second = xero.get(f"{API}/Contacts", params={"searchTerm": term, "page": 2, "pageSize": 2}).json()
    assert first["pagination"] == {"page": 1, "pageSize": 2, "pageCount": 2, "itemCount": 3}
    assert [c["ContactID"] for c in first["Contacts"] + second["Contacts"]] == ids
    assert "pagination" not in xero.get(f"{API}/Contacts", params={"searchTerm": term}).json()


def test_unpaged_invoice_lists_leave_out_line_items(xero: httpx.Client) -> None:
    invoice = new_invoice(xero, new_contact(xero)["ContactID"])
    where = {"where": f'Reference=="{invoice["Reference"]}"'}
    assert "LineItems" not in xero.get(f"{API}/Invoices", params=where).json()["Invoices"][0]
    assert xero.get(f"{API}/Invoices", params={**where, "page": 1}).json()["Invoices"][0]["LineItems"]


def test_invoice_totals_are_exact_decimals(xero: httpx.Client) -> None:
    invoice = new_invoice(xero, new_contact(xero)["ContactID"], LineItems=[
        {"Description": "a", "Quantity": 3, "UnitAmount": 33.33, "AccountCode": "200", "TaxType": "OUTPUT2"}])
    raw = xero.get(f"{API}/Invoices/{invoice['InvoiceID']}")
    doc = json.loads(raw.text, parse_float=str)["Invoices"][0]
    assert (doc["SubTotal"], doc["TotalTax"], doc["Total"]) == ("99.99", "20.00", "119.99")
    assert doc["DateString"] == "2024-05-01T00:00:00" and doc["Date"].startswith("/Date(")


# -- validation ---------------------------------------------------------------------------------
def test_duplicate_contact_name_is_a_validation_exception(xero: httpx.Client) -> None:
    name = f"Unique {uid()}"
    new_contact(xero, Name=name)
    response = xero.put(f"{API}/Contacts", json={"Contacts": [{"Name": name}]})
    body = response.json()
    assert response.status_code == 400
    assert (body["ErrorNumber"], body["Type"], body["Message"]) == (10, "ValidationException",
                                                                   "A validation exception occurred")
    assert body["Elements"][0]["ValidationErrors"][0]["Message"] == (
        f"The contact name {name} is already assigned to another contact. "
        "The contact name must be unique across all active contacts.")


def test_overpayment_and_bad_account_are_refused(xero: httpx.Client) -> None:
    invoice = new_invoice(xero, new_contact(xero)["ContactID"])
    response = xero.put(f"{API}/Payments", json={"Payments": [
        {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "200"}, "Amount": 500,
         "Date": "2024-05-02"}]})
    messages = [e["Message"] for e in response.json()["Elements"][0]["ValidationErrors"]]
    assert response.status_code == 400
    assert "Payment amount exceeds the amount outstanding on this document" in messages
    assert "Account type is invalid for making a payment to/from." in messages


def test_deleting_a_payment_gives_its_amount_back_to_the_invoice(xero: httpx.Client) -> None:
    """Xero's deletePayment (``POST /Payments/{PaymentID}`` with ``Status: DELETED``), as a bookkeeper removes a
    payment typed in by mistake: the invoice owes the amount again and is AUTHORISED; the payment lists DELETED."""
    invoice = new_invoice(xero, new_contact(xero)["ContactID"])
    paid = xero.put(f"{API}/Payments", json={"Payments": [
        {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 100,
         "Date": "2024-05-02"}]})
    assert paid.status_code == 200, paid.text
    payment_id = paid.json()["Payments"][0]["PaymentID"]
    assert xero.get(f"{API}/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]["Status"] == "PAID"

    deleted = xero.post(f"{API}/Payments/{payment_id}", json={"Payments": [{"Status": "DELETED"}]})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["Payments"][0]["Status"] == "DELETED"
    after = json.loads(xero.get(f"{API}/Invoices/{invoice['InvoiceID']}").text, parse_float=Decimal)["Invoices"][0]
    assert (after["Status"], after["AmountDue"], after["AmountPaid"]) == ("AUTHORISED", Decimal(100), 0)
    again = xero.post(f"{API}/Payments/{payment_id}", json={"Payments": [{"Status": "DELETED"}]})
    assert again.status_code == 400  # already deleted
    listed = xero.get(f"{API}/Payments", params={"where": f'PaymentID==Guid("{payment_id}")'}).json()["Payments"]
    assert [p["Status"] for p in listed] == ["DELETED"]


def test_projects_errors_use_the_projects_shape(xero: httpx.Client) -> None:
    contact = new_contact(xero)
    missing = xero.post(f"{PROJECTS}/Projects", json={"contactId": contact["ContactID"]})
    assert missing.status_code == 400
    assert missing.json() == {"message": "The request is invalid.",
                              "modelState": {"name": ["The name field is required."]}}
    project = xero.post(f"{PROJECTS}/Projects", json={"contactId": contact["ContactID"], "name": "P"}).json()
    time_entry = xero.post(f"{PROJECTS}/Projects/{project['projectId']}/Time",
                           json={"userId": str(uuid.uuid4()), "taskId": str(uuid.uuid4()),
                                 "dateUtc": "2024-05-01T00:00:00Z", "duration": 0})
    assert set(time_entry.json()["modelState"]) == {"userId", "taskId", "duration"}


# -- faults --------------------------------------------------------------------------------------
def test_fault_error_rate_answers_with_the_status(xero: httpx.Client, xero_sandbox: SandboxHandle) -> None:
    with xero_sandbox.faults(error_rate=1, status=503):
        response = xero.get(f"{API}/Contacts", params={"page": 1})
        assert response.status_code == 503 and response.json()["Title"] == "Service Unavailable"
        assert httpx.get(f"{xero_sandbox.base_url}/_sandbox/health").status_code == 200  # control stays up
    assert xero.get(f"{API}/Contacts", params={"page": 1}).status_code == 200


def test_fault_latency_delays_responses(xero: httpx.Client, xero_sandbox: SandboxHandle) -> None:
    with xero_sandbox.faults(latency_ms=400):
        started = time.monotonic()
        assert xero.get(f"{API}/Contacts", params={"page": 1}).status_code == 200
        assert time.monotonic() - started >= 0.4


def test_rate_limit_answers_429_with_xeros_headers(xero: httpx.Client, xero_sandbox: SandboxHandle) -> None:
    with xero_sandbox.faults(rate_limit_per_second=0.5, rate_limit_burst=1):
        statuses = [xero.get(f"{API}/Contacts", params={"page": 1}) for _ in range(2)]
    limited = statuses[-1]
    assert statuses[0].status_code == 200 and limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-Rate-Limit-Problem"] == "minute"
    assert limited.headers["X-MinLimit-Remaining"] == "0"


def test_rate_limit_per_tenant_leaves_other_tenants_their_own_allowance(
        xero: httpx.Client, xero_sandbox: SandboxHandle, settings: Settings, tenant: str) -> None:
    """Xero's minute limit is per connected organisation: one tenant spending its allowance leaves another's
    whole, and the statistics say which tenant was refused."""
    other = settings.entity("UK01").erp_tenant_id
    assert other != tenant
    before = httpx.get(f"{xero_sandbox.base_url}/_sandbox/stats").json()["by_tenant"]
    with xero_sandbox.faults(rate_limit_per_second=0.5, rate_limit_burst=1, rate_limit_per_tenant=True):
        spent = [xero.get(f"{API}/Contacts", params={"page": 1}).status_code for _ in range(2)]
        theirs = xero.get(f"{API}/Contacts", params={"page": 1}, headers={"xero-tenant-id": other})
    assert spent == [200, 429] and theirs.status_code == 200
    after = httpx.get(f"{xero_sandbox.base_url}/_sandbox/stats").json()["by_tenant"]
    was = {t: before.get(t, {"requests": 0, "rate_limited": 0}) for t in (tenant, other)}
    assert after[tenant]["requests"] - was[tenant]["requests"] == 2
    assert after[tenant]["rate_limited"] - was[tenant]["rate_limited"] == 1
    assert (after[other]["requests"] - was[other]["requests"], after[other]["rate_limited"]
            - was[other]["rate_limited"]) == (1, 0)


# -- webhooks -----------------------------------------------------------------------------------
class Catcher:
    """Receives deliveries and keeps headers and bodies; answers ``status_for(signature_ok)``."""

    def __init__(self, key: str, honest: bool = True) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            self.deliveries.append((dict(request.headers), body))
            expected = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
            good = hmac.compare_digest(request.headers.get("x-xero-signature", ""), expected)
            return Response(status_code=200 if good or not honest else 401)


@pytest.fixture
def catcher(settings: Settings, xero_sandbox: SandboxHandle) -> Iterator[tuple[Catcher, RunningApp]]:
    box = Catcher(_xero(settings).webhook_key)
    running = start_in_thread(box.app)
    xero_sandbox.post_control("webhooks", {"url": f"{running.base_url}/hook"})
    yield box, running
    httpx.delete(f"{xero_sandbox.base_url}/_sandbox/webhooks", timeout=10)
    running.stop()


def wait_for(predicate: Any, seconds: float = 5) -> None:
    """Poll (bounded): deliveries arrive from the emulator's and the catcher's own threads."""
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


def webhook_schema() -> dict[str, Any]:
    with spec_path("xero/xero-webhooks.yaml").open() as handle:
        spec = yaml.safe_load(handle)
    return {"$ref": "#/components/schemas/WebhookEvent", "components": spec["components"]}


def test_changes_emit_signed_webhooks_in_xeros_shape(catcher: tuple[Catcher, RunningApp], settings: Settings,
                                                           xero: httpx.Client, tenant: str) -> None:
    box, _ = catcher
    contact = new_contact(xero)
    invoice = new_invoice(xero, contact["ContactID"])
    xero.put(f"{API}/Payments", json={"Payments": [{"Invoice": {"InvoiceID": invoice["InvoiceID"]},
                                                    "Account": {"Code": "090"}, "Amount": 100, "Date": "2024-05-02"}]})
    wait_for(lambda: len(box.deliveries) >= 3)
    payloads = [json.loads(body) for _, body in box.deliveries]
    seen = [(p["events"][0]["eventCategory"], p["events"][0]["eventType"], p["events"][0]["resourceId"])
            for p in payloads]
    assert seen[:3] == [("CONTACT", "CREATE", contact["ContactID"]), ("INVOICE", "CREATE", invoice["InvoiceID"]),
                        ("INVOICE", "UPDATE", invoice["InvoiceID"])]
    for headers, body in box.deliveries:
        expected = base64.b64encode(hmac.new(_xero(settings).webhook_key.encode(), body,
                                             hashlib.sha256).digest())
        assert headers["x-xero-signature"] == expected.decode()
    schema = webhook_schema()
    for payload in payloads:
        jsonschema.validate(payload, schema)
        assert payload["events"][0]["tenantId"] == tenant
    sequences = [p["firstEventSequence"] for p in payloads]
    assert sequences == sorted(set(sequences))


def test_intent_to_receive_sends_a_good_and_a_bad_signature(catcher: tuple[Catcher, RunningApp],
                                                            xero_sandbox: SandboxHandle) -> None:
    box, running = catcher
    result = httpx.post(f"{xero_sandbox.base_url}/_sandbox/webhooks/intent", timeout=30).json()
    assert result["intent_ok"] is True
    assert [(r["signature"], r["status"]) for r in result["results"]] == [("valid", 200), ("invalid", 401)]
    assert all(json.loads(body)["events"] == [] for _, body in box.deliveries)


def test_intent_to_receive_fails_a_receiver_that_accepts_anything(settings: Settings,
                                                                  xero_sandbox: SandboxHandle) -> None:
    gullible = Catcher(_xero(settings).webhook_key, honest=False)
    running = start_in_thread(gullible.app)
    try:
        xero_sandbox.post_control("webhooks", {"url": f"{running.base_url}/hook"})
        result = httpx.post(f"{xero_sandbox.base_url}/_sandbox/webhooks/intent", timeout=30).json()
        assert result["intent_ok"] is False
        assert [r["status"] for r in result["results"]] == [200, 200]
    finally:
        httpx.delete(f"{xero_sandbox.base_url}/_sandbox/webhooks", timeout=10)
        running.stop()


# -- /_sandbox ----------------------------------------------------------------------------------
def test_sandbox_tenants_lists_organisations_users_and_accounts(xero_sandbox: SandboxHandle,
                                                                settings: Settings) -> None:
    tenants = httpx.get(f"{xero_sandbox.base_url}/_sandbox/tenants").json()["tenants"]
    assert [(t["tenantId"], t["legalEntity"], t["currency"]) for t in tenants] == [
        (e.erp_tenant_id, e.code, e.currency) for e in settings.legal_entities]
    assert all(len(t["users"]) == 2 for t in tenants)
    codes = {a["Code"]: a["Type"] for a in tenants[0]["accounts"]}
    assert (codes["200"], codes["090"], codes["485"]) == ("REVENUE", "BANK", "EXPENSE")


def test_sandbox_contacts_seeds_and_edits_like_a_person(xero_sandbox: SandboxHandle, xero: httpx.Client,
                                                        tenant: str) -> None:
    number = f"SEED-{uid()}"
    seeded = xero_sandbox.post_control("contacts", {"tenantId": tenant, "Name": f"Seeded {number}",
                                                    "ContactNumber": number, "TaxNumber": "DE123",
                                                    "PaymentTermsDays": 21})
    assert seeded.status_code == 201
    doc = xero.get(f"{API}/Contacts/{number}").json()["Contacts"][0]
    assert (doc["TaxNumber"], doc["PaymentTerms"]["Sales"]) == ("DE123", {"Day": 21, "Type": "DAYSAFTERBILLDATE"})
    edited = xero_sandbox.post_control("contacts", {"tenantId": tenant, "ContactID": doc["ContactID"],
                                                    "TaxNumber": "DE456"}).json()
    assert (edited["TaxNumber"], edited["Name"]) == ("DE456", f"Seeded {number}")
    clash = httpx.post(f"{xero_sandbox.base_url}/_sandbox/contacts", json={"tenantId": tenant,
                                                                           "Name": f"Seeded {number}"})
    assert clash.status_code == 400 and clash.json()["Type"] == "ValidationException"


def test_sandbox_counts_include_xero_records(xero_sandbox: SandboxHandle, xero: httpx.Client) -> None:
    new_contact(xero)
    counts = httpx.get(f"{xero_sandbox.base_url}/_sandbox/counts").json()
    assert counts["contact"] >= 1
