"""NetSuite's error answers (hand-written bodies as NetSuite sends them, served by ``httpx.MockTransport``) in the
connector error tree, and the adapter's pace per account."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from connectors.errors import AuthFailed, Conflict, ConnectorError, NotFound, RateLimited, Rejected, Unavailable
from connectors.netsuite import from_settings
from settings import Settings
from tests.helpers.servers import with_vendor


def netsuite_error(status: int, code: str, detail: str) -> httpx.Response:
    return httpx.Response(status, json={"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
                                       "title": "Bad Request", "status": status,
                                       "o:errorDetails": [{"detail": detail, "o:errorCode": code}]})


@pytest.mark.parametrize(("answer", "error", "text"), [
    (netsuite_error(400, "NONEXISTENT_ID", "The record instance does not exist."), NotFound, "NONEXISTENT_ID"),
    (netsuite_error(404, "NONEXISTENT_ID", "The record instance does not exist."), NotFound, "does not exist"),
    (netsuite_error(400, "DUP_RCRD", "This record already exists."), Conflict, "DUP_RCRD"),
    (netsuite_error(400, "USER_ERROR", "Please enter value(s) for: Company Name"), Rejected, "Company Name"),
    (netsuite_error(401, "INVALID_LOGIN", "Invalid login attempt."), AuthFailed, "INVALID_LOGIN"),
    (netsuite_error(403, "INSUFFICIENT_PERMISSION", "Permission Violation"), AuthFailed, "Permission"),
    (netsuite_error(429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded."), RateLimited,
     "CONCURRENCY_LIMIT_EXCEEDED"),
    (netsuite_error(500, "UNEXPECTED_ERROR", "An unexpected error occurred."), Unavailable, "UNEXPECTED_ERROR"),
    (httpx.Response(502, text="<html>Bad gateway</html>"), Unavailable, "Bad gateway"),
    (httpx.Response(400, json={"o:errorDetails": "not a list"}), Rejected, "not a list"),
])
async def test_netsuite_error_bodies_become_the_error_tree(settings: Settings, answer: httpx.Response,
                                                           error: type[ConnectorError], text: str) -> None:
    adapter = from_settings(settings, transport=httpx.MockTransport(lambda _request: answer))
    try:
        with pytest.raises(error, match=text) as raised:
            await adapter.get_subsidiary("1")
    finally:
        await adapter.aclose()
    assert raised.value.vendor == "netsuite"
    if isinstance(raised.value, RateLimited):
        assert raised.value.retry_after == 1.0


async def test_netsuite_answer_of_the_wrong_shape_is_a_connector_error(settings: Settings) -> None:
    def suiteql(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"no-id": "x"}], "hasMore": False})

    adapter = from_settings(settings, transport=httpx.MockTransport(suiteql))
    try:
        with pytest.raises(ConnectorError, match="unexpected NetSuite response"):
            await adapter.list_projects("1")
    finally:
        await adapter.aclose()


async def test_netsuite_requests_are_paced_per_account(settings: Settings) -> None:
    sent: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        assert request.headers["Authorization"].startswith('OAuth realm="')
        assert request.headers["Prefer"] == "transient" and json.loads(request.content)["q"].startswith("SELECT")
        return httpx.Response(200, json={"items": [], "hasMore": False, "links": []})

    adapter = from_settings(with_vendor(settings, "netsuite", requests_per_second=20),
                            transport=httpx.MockTransport(answer))
    try:
        for _ in range(6):
            await adapter.find_customers("1", ["a"])
    finally:
        await adapter.aclose()
    assert len(sent) == 6 and sent[-1] - sent[0] >= 5 / 20 - 0.01
