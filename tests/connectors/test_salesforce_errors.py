"""Salesforce's error array decides the error class, not the HTTP status (a unit test of the connector's
translation with ``httpx.MockTransport`` answering as Salesforce does)."""

from __future__ import annotations

import httpx
import pytest

from canonical import Account
from canonical.requests import DealWriteBack
from connectors.errors import AuthFailed, Conflict, ConnectorError, NotFound, RateLimited, Rejected, Unavailable
from connectors.salesforce import SalesforceCrm
from connectors.salesforce.errors import error_for


def answering(status: int, code: str, fields: list[str] | None = None) -> SalesforceCrm:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=[{"message": f"refused ({code})", "errorCode": code,
                                             "fields": fields or []}])

    client = httpx.AsyncClient(base_url="https://acme.my.salesforce.com", transport=httpx.MockTransport(handler))
    return SalesforceCrm(client)


@pytest.mark.parametrize(("status", "code", "expected"), [
    (403, "REQUEST_LIMIT_EXCEEDED", RateLimited),
    (400, "UNABLE_TO_LOCK_ROW", Unavailable),
    (400, "INVALID_FIELD", Rejected),
    (400, "REQUIRED_FIELD_MISSING", Rejected),
    (400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", Rejected),
    (404, "NOT_FOUND", NotFound),
    (400, "ENTITY_IS_DELETED", NotFound),
    (400, "DUPLICATE_VALUE", Conflict),
    (401, "INVALID_SESSION_ID", AuthFailed),
    (403, "INSUFFICIENT_ACCESS", AuthFailed),
    (503, "SERVER_UNAVAILABLE", Unavailable),
])
async def test_salesforce_errors_by_code(status: int, code: str, expected: type[ConnectorError]) -> None:
    crm = answering(status, code, ["Revops_Status__c"])
    try:
        with pytest.raises(expected) as caught:
            await crm.write_back("006000000000001AAA", DealWriteBack(revops_status="x"))
    finally:
        await crm.aclose()
    assert type(caught.value) is expected
    assert caught.value.message.startswith(code) and "Revops_Status__c" in caught.value.message


def test_salesforce_request_limit_waits_before_retrying() -> None:
    refused = error_for("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", status=403)
    assert isinstance(refused, RateLimited) and refused.retry_after and refused.retry_after > 0


def test_salesforce_concurrent_request_limit_waits_seconds_not_the_daily_allowances_minute() -> None:
    """Salesforce answers REQUEST_LIMIT_EXCEEDED both for a spent daily allowance (frees up over the hour) and for
    too many long-running requests at once (free again as soon as one ends): the second is retried in seconds, so
    a busy org's step does not sit out a minute per refusal (found by chaos on Salesforce: amendments waited
    minutes in "loading")."""
    daily = error_for("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", status=403)
    concurrent = error_for("REQUEST_LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED: ConcurrentPerOrgLongTxn Limit exceeded.",
                           status=403)
    told = error_for("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.", status=403, retry_after=7)
    assert isinstance(daily, RateLimited) and daily.retry_after == 60
    assert isinstance(concurrent, RateLimited) and concurrent.retry_after is not None
    assert 0 < concurrent.retry_after <= 5
    assert isinstance(told, RateLimited) and told.retry_after == 7  # a Retry-After the answer gives wins


async def test_salesforce_collection_failure_is_translated_too() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"id": None, "success": False, "errors": [
            {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Name]",
             "fields": ["Name"]}]}])

    crm = SalesforceCrm(httpx.AsyncClient(base_url="https://acme.my.salesforce.com",
                                          transport=httpx.MockTransport(handler)))
    try:
        with pytest.raises(Rejected, match="REQUIRED_FIELD_MISSING"):
            await crm.upsert_companies([Account(name="X", domain="x.example")])
    finally:
        await crm.aclose()
