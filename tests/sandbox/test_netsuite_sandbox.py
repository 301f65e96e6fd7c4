"""The NetSuite emulator on its own: the TBA verifier (signatures made by oauthlib and authlib, not by us), the
SuiteQL subset's parser, the concurrency limit, faults and the people's acts, all over real HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
import warnings
from decimal import Decimal
from typing import Any

import httpx
import pytest
from oauthlib import oauth1

from sandbox.netsuite.suiteql import SuiteQLError, parse, tokenize
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import netsuite.rest_api_base  # noqa: F401 - registers HMAC-SHA256 with authlib
    from authlib.integrations.httpx_client import OAuth1Auth

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def uid() -> str:
    return uuid.uuid4().hex[:10]


def signed(settings: Settings, method: str, url: str, *, realm: str | None = None, timestamp: int | None = None,
           nonce: str | None = None) -> dict[str, str]:
    """The Authorization header oauthlib makes for ``method url`` with the emulator's TBA values."""
    ns = vendor_settings(settings, "netsuite")
    client = oauth1.Client(ns.consumer_key, client_secret=ns.consumer_secret, resource_owner_key=ns.token_id,
                           resource_owner_secret=ns.token_secret, signature_method=oauth1.SIGNATURE_HMAC_SHA256,
                           realm=realm or ns.account_id, timestamp=str(timestamp or int(time.time())),
                           nonce=nonce or uuid.uuid4().hex)
    _uri, headers, _body = client.sign(url, http_method=method)
    return {"Authorization": headers["Authorization"]}


def error_code(response: httpx.Response) -> str:
    return str(response.json()["o:errorDetails"][0]["o:errorCode"])


def url(sandbox: SandboxHandle, path: str) -> str:
    return f"{sandbox.base_url}/services/rest{path}"


# -- TBA ------------------------------------------------------------------------------------------------------
def test_netsuite_sandbox_accepts_oauthlib_signature_with_plus_and_percent20_in_query(
        settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    for query in ("?expandSubResources=true&q=a+b", "?expandSubResources=true&q=a%20b"):
        target = url(netsuite_sandbox, "/record/v1/subsidiary/1") + query
        answer = httpx.get(target, headers=signed(settings, "GET", target))
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(("change", "reason"), [
    ({"realm": "7654321_SB1"}, "wrong realm"),
    ({"timestamp": int(time.time()) - 3600}, "stale timestamp"),
])
def test_netsuite_sandbox_refuses_wrong_realm_and_stale_timestamp(
        settings: Settings, netsuite_sandbox: SandboxHandle, change: dict[str, Any], reason: str) -> None:
    target = url(netsuite_sandbox, "/record/v1/subsidiary/1")
    answer = httpx.get(target, headers=signed(settings, "GET", target, **change))
    assert answer.status_code == 401 and error_code(answer) == "INVALID_LOGIN"
    assert reason in answer.json()["o:errorDetails"][0]["detail"]


def test_netsuite_sandbox_refuses_a_replayed_nonce(settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    target = url(netsuite_sandbox, "/record/v1/currency/1")
    header = signed(settings, "GET", target)
    assert httpx.get(target, headers=header).status_code == 200
    again = httpx.get(target, headers=header)
    assert again.status_code == 401 and "replayed nonce" in again.json()["o:errorDetails"][0]["detail"]


def test_netsuite_sandbox_refuses_a_signature_over_another_query(settings: Settings,
                                                                 netsuite_sandbox: SandboxHandle) -> None:
    target = url(netsuite_sandbox, "/record/v1/subsidiary/1")
    answer = httpx.get(target + "?expandSubResources=true", headers=signed(settings, "GET", target))
    assert answer.status_code == 401 and "signature does not match" in answer.text


def test_netsuite_sandbox_checks_the_body_hash_authlib_sends(settings: Settings,
                                                             netsuite_sandbox: SandboxHandle) -> None:
    ns = vendor_settings(settings, "netsuite")
    auth = OAuth1Auth(client_id=ns.consumer_key, client_secret=ns.consumer_secret, token=ns.token_id,
                      token_secret=ns.token_secret, realm=ns.account_id, force_include_body=True,
                      signature_method="HMAC-SHA256")
    target = url(netsuite_sandbox, "/query/v1/suiteql") + "?limit=5&offset=0"
    body = b'{"q": "SELECT id FROM subsidiary"}'
    request = httpx.Request("POST", target, content=body, headers={"Content-Type": "application/json",
                                                                   "Prefer": "transient"})
    header = next(auth.auth_flow(request)).headers["Authorization"]
    assert "oauth_body_hash" in header
    sent = {"Content-Type": "application/json", "Prefer": "transient"}
    good = httpx.post(target, content=body, headers={**sent, "Authorization": header})
    request = httpx.Request("POST", target, content=body, headers={"Content-Type": "application/json",
                                                                   "Prefer": "transient"})
    header = next(auth.auth_flow(request)).headers["Authorization"]
    tampered = httpx.post(target, content=b'{"q": "SELECT id FROM customer"}',
                          headers={**sent, "Authorization": header})
    assert good.status_code == 200 and {i["id"] for i in good.json()["items"]} >= {"1"}
    assert tampered.status_code == 401 and "oauth_body_hash" in tampered.text


# -- SuiteQL parser --------------------------------------------------------------------------------------------
ROWS: list[dict[str, Any]] = [
    {"id": "1", "name": "Alpha", "amount": "10.5", "when": "2024-01-01T00:00:00Z", "kind": "A"},
    {"id": "2", "name": "beta", "amount": "9", "when": "2024-06-01T12:00:00Z", "kind": "B"},
    {"id": "10", "name": "O'Brien", "amount": None, "when": "2025-01-01T00:00:00Z", "kind": "A"}]


@pytest.mark.parametrize(("where", "ids"), [
    ("id > 1", ["2", "10"]),  # numbers compare as numbers, not text
    ("amount >= 9 AND amount < 10.5", ["2"]),
    ("amount <> 9", ["1"]),  # NULL matches nothing
    ("amount IS NULL", ["10"]),
    ("name LIKE 'A%' OR name = 'O''Brien'", ["1", "10"]),
    ("NOT (kind = 'A') AND name LIKE '_eta'", ["2"]),
    ("kind IN ('B', 'C') OR id IN (1)", ["1", "2"]),
    ("when >= TO_DATE('2024-06-01 12:00:00', 'YYYY-MM-DD HH24:MI:SS')", ["2", "10"]),
    ("when < TO_DATE('2024-06-01', 'YYYY-MM-DD')", ["1"]),
    ("kind = 'A' AND (id = 1 OR id = 10) AND name NOT LIKE 'O%'", ["1"]),
])
def test_netsuite_suiteql_where(where: str, ids: list[str]) -> None:
    assert [r["id"] for r in parse(f"SELECT id FROM t WHERE {where} ORDER BY id").run(ROWS)] == ids


def test_netsuite_suiteql_columns_order_and_case() -> None:
    query = parse("select ID, Name from T order by KIND desc, id")
    assert query.table == "t" and query.run(ROWS) == [{"id": "2", "name": "beta"}, {"id": "1", "name": "Alpha"},
                                                      {"id": "10", "name": "O'Brien"}]


@pytest.mark.parametrize("text", [
    "DELETE FROM customer", "SELECT id FROM customer WHERE", "SELECT id FROM customer; DROP TABLE x",
    "SELECT id FROM customer WHERE id = ", "SELECT id FROM a, b", "SELECT id FROM customer WHERE name LIKE",
    "SELECT id FROM t WHERE TO_DATE('2024-13-01', 'YYYY-MM-DD') < id", "SELECT id FROM t WHERE id NOT = 1",
])
def test_netsuite_suiteql_outside_the_subset_is_refused(text: str) -> None:
    with pytest.raises(SuiteQLError):
        parse(text)


def test_netsuite_suiteql_tokenizer_keeps_quotes_and_keywords_apart() -> None:
    kinds = [(t.kind, t.text) for t in tokenize("SELECT x FROM t WHERE name = 'select '' from'")]
    assert kinds[-2] == ("string", "select ' from") and kinds[0] == ("keyword", "select")


# -- concurrency, faults and acts ---------------------------------------------------------------------------------
async def test_netsuite_sandbox_concurrency_limit_answers_429_with_netsuites_body(
        settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    limit = vendor_settings(settings, "netsuite").concurrency
    target = url(netsuite_sandbox, "/record/v1/subsidiary/1")
    with netsuite_sandbox.faults(latency_ms=400):
        async with httpx.AsyncClient(timeout=10) as http:
            answers = await asyncio.gather(*(http.get(target, headers=signed(settings, "GET", target))
                                             for _ in range(limit + 3)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) >= 1 and statuses.count(429) >= 3
    refused = next(a for a in answers if a.status_code == 429)
    assert error_code(refused) == "CONCURRENCY_LIMIT_EXCEEDED" and refused.json()["status"] == 429


def test_netsuite_sandbox_injected_fault_is_answered_netsuites_way(settings: Settings,
                                                                    netsuite_sandbox: SandboxHandle) -> None:
    target = url(netsuite_sandbox, "/record/v1/subsidiary/1")
    with netsuite_sandbox.faults(error_rate=1.0, status=503, path_prefix="/services/rest/record"):
        answer = httpx.get(target, headers=signed(settings, "GET", target))
    assert answer.status_code == 503 and error_code(answer) == "UNEXPECTED_ERROR"


def _put(settings: Settings, sandbox: SandboxHandle, path: str, body: dict[str, Any]) -> str:
    target = url(sandbox, path)
    answer = httpx.put(target, json=body, headers=signed(settings, "PUT", target))
    assert answer.status_code == 204, answer.text
    return answer.headers["Location"].rsplit("/", 1)[-1]


def test_netsuite_sandbox_person_records_a_payment_and_edits_a_budget(settings: Settings,
                                                                       netsuite_sandbox: SandboxHandle) -> None:
    eid = uid()
    customer = _put(settings, netsuite_sandbox, f"/record/v1/customer/eid:c-{eid}",
                    {"companyName": f"Hand {eid}", "subsidiary": {"id": "1"}})
    invoice = _put(settings, netsuite_sandbox, f"/record/v1/invoice/eid:i-{eid}", {
        "entity": {"id": customer}, "subsidiary": {"id": "1"},
        "item": {"items": [{"item": {"id": "1"}, "amount": 80}]}})
    job = _put(settings, netsuite_sandbox, f"/record/v1/job/eid:P-{eid}", {
        "companyName": "Delivery", "parent": {"id": customer}, "subsidiary": {"id": "1"}, "jobPrice": 1000})

    paid = netsuite_sandbox.post_control("acts/payment", {"invoiceId": invoice, "amount": "30.00"}).json()
    netsuite_sandbox.post_control("acts/project-budget", {"projectId": job, "jobPrice": "1500.00"})

    target = url(netsuite_sandbox, f"/record/v1/invoice/{invoice}")
    held = httpx.get(target, headers=signed(settings, "GET", target)).json()
    target = url(netsuite_sandbox, f"/record/v1/job/{job}")
    project = httpx.get(target, headers=signed(settings, "GET", target)).json()
    assert "externalId" not in paid and paid["apply"]["items"][0]["doc"]["id"] == invoice
    assert Decimal(str(held["amountRemaining"])) == Decimal("50") and Decimal(str(project["jobPrice"])) == 1500


def test_netsuite_sandbox_refuses_external_ids_netsuite_does_not_allow(settings: Settings,
                                                                        netsuite_sandbox: SandboxHandle) -> None:
    for path in ("/record/v1/customer/eid:a%3Ab", "/record/v1/customer/eid:a%20b"):
        target = url(netsuite_sandbox, path)
        answer = httpx.put(target, json={"companyName": "X", "subsidiary": {"id": "1"}},
                           headers=signed(settings, "PUT", target))
        assert answer.status_code == 400 and error_code(answer) == "INVALID_PARAMETER"
    target = url(netsuite_sandbox, "/record/v1/customer")
    answer = httpx.post(target, json={"companyName": "X", "subsidiary": {"id": "1"}, "externalId": "a.b"},
                        headers=signed(settings, "POST", target))
    assert answer.status_code == 400 and "externalId" in answer.text
