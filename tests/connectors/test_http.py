"""The httpx client factory: error translation, correlation header and client-credentials auth."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import time
from collections.abc import Callable

import httpx
import pytest

from connectors.errors import AuthFailed, Conflict, NotFound, RateLimited, Rejected, Unavailable
from connectors.http import (
    CORRELATION_HEADER,
    USER_AGENT,
    ClientCredentialsAuth,
    build_client,
    correlation_id,
    parse_retry_after,
    send,
)
from sandbox.serve import free_port

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, **kwargs: object) -> httpx.AsyncClient:
    return build_client(base_url="https://vendor.test", transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


def vendor_message(response: httpx.Response) -> str:
    return str(response.json()["message"])


async def call(client: httpx.AsyncClient, path: str = "/things") -> httpx.Response:
    return await send(client, "GET", path, vendor="acme", error_message=vendor_message)


async def test_http_send_returns_a_success_response() -> None:
    async with client_for(lambda r: httpx.Response(200, json={"ok": True})) as client:
        response = await call(client)
    assert response.json() == {"ok": True}


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_http_send_server_error_is_unavailable(status: int) -> None:
    async with client_for(lambda r: httpx.Response(status, json={"message": "down for maintenance"})) as client:
        with pytest.raises(Unavailable) as info:
            await call(client)
    assert info.value.status == status and info.value.vendor == "acme"
    assert info.value.message == "down for maintenance"


async def test_http_send_429_with_seconds_is_rate_limited() -> None:
    response = httpx.Response(429, json={"message": "too many"}, headers={"Retry-After": "7"})
    async with client_for(lambda r: response) as client:
        with pytest.raises(RateLimited) as info:
            await call(client)
    assert info.value.retry_after == 7
    assert info.value.status == 429


async def test_http_send_429_with_http_date_is_rate_limited() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    response = httpx.Response(429, json={"message": "too many"}, headers={"Retry-After": when})
    async with client_for(lambda r: response) as client:
        with pytest.raises(RateLimited) as info:
            await call(client)
    assert info.value.retry_after is not None and 28 <= info.value.retry_after <= 30


async def test_http_send_429_without_retry_after_leaves_it_unknown() -> None:
    async with client_for(lambda r: httpx.Response(429, json={"message": "too many"})) as client:
        with pytest.raises(RateLimited) as info:
            await call(client)
    assert info.value.retry_after is None


async def test_http_send_uses_the_vendor_retry_after_reader() -> None:
    response = httpx.Response(429, json={"message": "too many"}, headers={"X-RateLimit-Reset-After": "3"})
    async with client_for(lambda r: response) as client:
        with pytest.raises(RateLimited) as info:
            await send(client, "GET", "/x", vendor="acme", error_message=vendor_message,
                       retry_after=lambda r: float(r.headers["X-RateLimit-Reset-After"]))
    assert info.value.retry_after == 3


@pytest.mark.parametrize("status", [400, 422])
async def test_http_send_validation_error_is_rejected_with_the_vendor_message(status: int) -> None:
    body = {"message": "email is not a valid address"}
    async with client_for(lambda r: httpx.Response(status, json=body)) as client:
        with pytest.raises(Rejected) as info:
            await call(client)
    assert info.value.message == "email is not a valid address"
    assert str(info.value) == "acme: email is not a valid address"
    assert info.value.status == status


@pytest.mark.parametrize(
    ("status", "cls"), [(401, AuthFailed), (403, AuthFailed), (404, NotFound), (409, Conflict)]
)
async def test_http_send_maps_client_errors(status: int, cls: type[Exception]) -> None:
    async with client_for(lambda r: httpx.Response(status, json={"message": "nope"})) as client:
        with pytest.raises(cls, match="nope"):
            await call(client)


async def test_http_send_broken_error_body_falls_back_to_the_text() -> None:
    async with client_for(lambda r: httpx.Response(400, text="<html>bad gateway page</html>")) as client:
        with pytest.raises(Rejected) as info:
            await call(client)
    assert info.value.message == "<html>bad gateway page</html>"


async def test_http_send_empty_error_body_uses_the_reason_phrase() -> None:
    async with client_for(lambda r: httpx.Response(404)) as client:
        with pytest.raises(NotFound) as info:
            await send(client, "GET", "/x", vendor="acme", error_message=lambda r: "")
    assert info.value.message == "Not Found"


async def test_http_send_timeout_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with client_for(handler) as client:
        with pytest.raises(Unavailable, match="timeout on GET /things: ReadTimeout") as info:
            await call(client)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


async def test_http_send_connection_refused_is_unavailable() -> None:
    async with build_client(base_url=f"http://127.0.0.1:{free_port()}", timeout=2.0) as client:
        with pytest.raises(Unavailable, match="network error") as info:
            await call(client)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_http_correlation_header_comes_from_the_contextvar() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get(CORRELATION_HEADER))
        return httpx.Response(200, json={})

    async with client_for(handler) as client:
        await call(client)
        token = correlation_id.set("q2c-hubspot-42/load_deal#1")
        try:
            await call(client)
            await send(client, "GET", "/x", vendor="acme", error_message=vendor_message,
                       headers={CORRELATION_HEADER: "explicit"})
        finally:
            correlation_id.reset(token)
        await call(client)
    assert seen == [None, "q2c-hubspot-42/load_deal#1", "explicit", None]


async def test_http_build_client_sets_user_agent_and_headers() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200)

    async with client_for(handler, headers={"Stripe-Version": "2023-08-16"}) as client:
        await call(client)
    assert seen[0]["User-Agent"] == USER_AGENT and seen[0]["Stripe-Version"] == "2023-08-16"


def test_http_parse_retry_after_handles_seconds_dates_and_garbage() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0
    assert parse_retry_after(email.utils.formatdate(now + 60, usegmt=True), now=now) == 60
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None and parse_retry_after("") is None


# -- ClientCredentialsAuth -----------------------------------------------------------------------
class TokenServer:
    """A token endpoint and an API that accepts only the newest token (or refuses one on demand)."""

    def __init__(self) -> None:
        self.fetches: list[httpx.Request] = []
        self.api_auth: list[str] = []
        self.revoked: set[str] = set()

    def token(self, request: httpx.Request) -> httpx.Response:
        self.fetches.append(request)
        return httpx.Response(200, json={"access_token": f"tok-{len(self.fetches)}", "expires_in": 3600})

    def api(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("Authorization", "")
        self.api_auth.append(auth)
        if auth.removeprefix("Bearer ") in self.revoked:
            return httpx.Response(401, json={"message": "token revoked"})
        return httpx.Response(200, json={"ok": True})


def auth_client(server: TokenServer, **auth_kwargs: object) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    token_client = httpx.AsyncClient(transport=httpx.MockTransport(server.token))
    auth = ClientCredentialsAuth(token_url="https://auth.test/oauth/token", client_id="cid", client_secret="secret",
                                 vendor="acme", token_client=token_client, **auth_kwargs)  # type: ignore[arg-type]
    return client_for(server.api, auth=auth), token_client


async def test_http_client_credentials_fetches_once_and_reuses_the_token() -> None:
    server = TokenServer()
    client, token_client = auth_client(server, scope="read write")
    async with client, token_client:
        await call(client)
        await call(client)
    assert len(server.fetches) == 1
    assert server.api_auth == ["Bearer tok-1", "Bearer tok-1"]
    fetch = server.fetches[0]
    assert fetch.headers["Authorization"] == "Basic " + base64.b64encode(b"cid:secret").decode()
    assert fetch.content == b"grant_type=client_credentials&scope=read+write"


async def test_http_client_credentials_refetches_after_a_401() -> None:
    server = TokenServer()
    client, token_client = auth_client(server)
    async with client, token_client:
        await call(client)
        server.revoked.add("tok-1")
        response = await call(client)
        await call(client)
    assert response.json() == {"ok": True}
    assert len(server.fetches) == 2
    assert server.api_auth == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2", "Bearer tok-2"]


async def test_http_client_credentials_second_401_is_auth_failed() -> None:
    server = TokenServer()
    server.revoked.update({"tok-1", "tok-2"})
    client, token_client = auth_client(server)
    async with client, token_client:
        with pytest.raises(AuthFailed, match="token revoked"):
            await call(client)
    assert len(server.fetches) == 2


async def test_http_client_credentials_json_body_format() -> None:
    server = TokenServer()
    client, token_client = auth_client(server, body_format="json")
    async with client, token_client:
        await call(client)
    assert json.loads(server.fetches[0].content) == {"grant_type": "client_credentials"}


async def test_http_client_credentials_refused_credentials_are_auth_failed() -> None:
    token_client = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda r: httpx.Response(401, text="invalid_client")))
    auth = ClientCredentialsAuth(token_url="https://auth.test/oauth/token", client_id="cid", client_secret="bad",
                                 vendor="acme", token_client=token_client)
    calls: list[httpx.Request] = []
    async with client_for(lambda r: calls.append(r) or httpx.Response(200), auth=auth) as client, token_client:
        with pytest.raises(AuthFailed, match="invalid_client"):
            await call(client)
    assert calls == []


async def test_http_client_credentials_concurrent_401s_share_one_refetch() -> None:
    server = TokenServer()
    sent: list[str] = []

    async def slow_api(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["Authorization"])
        await asyncio.sleep(0.05)  # both requests hold tok-1 before either learns it is revoked
        return server.api(request)

    token_client = httpx.AsyncClient(transport=httpx.MockTransport(server.token))
    auth = ClientCredentialsAuth(token_url="https://auth.test/t", client_id="cid", client_secret="s", vendor="acme",
                                 token_client=token_client)
    async with client_for(slow_api, auth=auth) as client, token_client:  # type: ignore[arg-type]
        await call(client)
        server.revoked.add("tok-1")
        results = await asyncio.gather(call(client), call(client))
    assert [r.json() for r in results] == [{"ok": True}, {"ok": True}]
    assert len(server.fetches) == 2  # tok-1, then one tok-2 shared by both refused requests
    assert sent == ["Bearer tok-1"] * 3 + ["Bearer tok-2"] * 2


async def test_http_client_credentials_token_answer_without_token_is_auth_failed() -> None:
    token_client = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={"error": "temporarily_unavailable"})))
    auth = ClientCredentialsAuth(token_url="https://auth.test/oauth/token", client_id="cid", client_secret="s",
                                 vendor="acme", token_client=token_client)
    async with client_for(lambda r: httpx.Response(200), auth=auth) as client, token_client:
        with pytest.raises(AuthFailed, match="access_token") as info:
            await call(client)
    assert info.value.vendor == "acme"
