"""The emulator kit: document store, idempotency replay, faults in a vendor's style, webhooks."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sandbox.kit import (
    IdempotencyGuard,
    Store,
    TokenBucket,
    VendorStyle,
    WebhookSender,
    WebhookTarget,
    create_sandbox_app,
    json_error,
    new_id,
)
from sandbox.serve import RunningApp, free_port, start_in_thread

STYLE = VendorStyle(
    vendor="acme",
    error=lambda status, message: json_error(status, {"error": {"code": status, "message": message}}),
    rate_limited=lambda wait: json_error(429, {"error": {"code": "rate_limited"}},
                                         {"Retry-After": str(math.ceil(wait))}),
)


def mismatch(key: str) -> Response:
    return json_error(400, {"error": {"code": "idempotency_mismatch", "key": key}})


# -- Store ---------------------------------------------------------------------------------------
@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return Store("sqlite://" if request.param == "memory" else f"sqlite:///{tmp_path / 'kit.sqlite'}")


def test_kit_store_put_get_replace(store: Store) -> None:
    assert store.put("customer", "cus_1", {"name": "Acme"}) == {"name": "Acme"}
    store.put("customer", "cus_1", {"name": "Acme GmbH"})
    assert store.get("customer", "cus_1") == {"name": "Acme GmbH"}
    assert store.get("customer", "cus_2") is None
    assert store.count() == {"customer": 1}


def test_kit_store_tenants_are_separate(store: Store) -> None:
    store.put("contact", "c1", {"t": "a"}, tenant="tenant-a")
    store.put("contact", "c1", {"t": "b"}, tenant="tenant-b")
    assert store.get("contact", "c1", tenant="tenant-a") == {"t": "a"}
    assert store.get("contact", "c1") is None
    assert store.list("contact", tenant="tenant-b") == [{"t": "b"}]
    assert store.count("contact") == {"contact": 2}


def test_kit_store_list_in_creation_order_with_filters(store: Store) -> None:
    for n in (3, 1, 2):
        store.put("invoice", f"in_{n}", {"n": n})
    store.put("invoice", "in_3", {"n": 30})  # replacing keeps the original position
    assert [i["n"] for i in store.list("invoice")] == [30, 1, 2]
    assert [i["n"] for i in store.list("invoice", where=lambda i: i["n"] < 10)] == [1, 2]
    assert [i["n"] for i in store.list("invoice", limit=2)] == [30, 1]
    assert [i["n"] for i in store.list("invoice", after_seq=1)] == [1, 2]


def test_kit_store_delete_and_count(store: Store) -> None:
    store.put("deal", "1", {})
    store.put("deal", "2", {})
    store.put("company", "1", {})
    assert store.delete("deal", "1") is True
    assert store.delete("deal", "1") is False
    assert store.count() == {"deal": 1, "company": 1}
    assert store.count("company") == {"company": 1}


def test_kit_store_list_equal_follows_every_write(store: Store) -> None:
    """The look-up by value answers what a scan answers, after replaces, deletes and in another tenant."""
    store.put("inv", "a", {"Ref": "X-1", "Contact": {"ID": "c1"}})
    store.put("inv", "b", {"Ref": "x-1", "Contact": {"ID": "c2"}})
    assert [d["Contact"]["ID"] for d in store.list_equal("inv", "Ref", {"x-1"})] == ["c1", "c2"]
    assert store.list_equal("inv", "Contact.ID", {"c2"}) == [{"Ref": "x-1", "Contact": {"ID": "c2"}}]
    store.put("inv", "a", {"Ref": "Y-2", "Contact": {"ID": "c1"}})  # the index was built: it follows the write
    store.put("inv", "c", {"Ref": "X-1"})
    store.put("inv", "d", {"Ref": "X-1"}, tenant="other")
    assert store.list_equal("inv", "Ref", {"x-1"}) == [{"Ref": "x-1", "Contact": {"ID": "c2"}}, {"Ref": "X-1"}]
    assert store.list_equal("inv", "Ref", {"y-2", "x-1"}, where=lambda d: "Contact" in d) == [
        {"Ref": "Y-2", "Contact": {"ID": "c1"}}, {"Ref": "x-1", "Contact": {"ID": "c2"}}]  # in creation order
    store.delete("inv", "b")
    assert store.list_equal("inv", "Ref", {"x-1"}) == [{"Ref": "X-1"}]
    assert store.list_equal("inv", "Contact.ID", {""}) == [{"Ref": "X-1"}]  # absent: as the scan sees it
    assert store.list_equal("inv", "Ref", {"x-1"}, tenant="other") == [{"Ref": "X-1"}]


def test_kit_store_newest_page_reads_back_from_a_cursor(store: Store) -> None:
    for n in range(7):
        store.put("evt", f"e{n}", {"n": n, "even": n % 2 == 0})
    assert store.newest_page("evt", 2) == ([{"n": 6, "even": True}, {"n": 5, "even": False}], True)
    page, more = store.newest_page("evt", 2, after="e2", where=lambda d: d["even"]) or ([], None)
    assert (page, more) == ([{"n": 0, "even": True}], False)
    assert store.newest_page("evt", 2, after="e9") is None


def test_kit_store_next_number_counts_per_name(store: Store) -> None:
    assert [store.next_number("a"), store.next_number("a"), store.next_number("b")] == [1, 2, 1]
    assert new_id("cus_", store) == "cus_00000000000001"
    assert new_id("cus_", store, width=4) == "cus_0002"


async def test_kit_store_reset_clears_records_counters_and_keys(store: Store) -> None:
    store.put("deal", "1", {"x": 1})
    store.next_number("a")
    await IdempotencyGuard(store, mismatch).run(scope="s", key="k", fingerprint_parts=[], handler=_ok_handler([]))
    assert store.idempotency_get("s", "k") is not None
    store.reset()
    assert store.count() == {} and store.get("deal", "1") is None
    assert store.next_number("a") == 1
    assert store.idempotency_get("s", "k") is None


def test_kit_store_file_url_persists_across_instances(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'persist.sqlite'}"
    Store(url).put("deal", "1", {"name": "kept"})
    assert Store(url).get("deal", "1") == {"name": "kept"}


def test_kit_store_memory_urls_are_private_to_each_store() -> None:
    Store("sqlite://").put("deal", "1", {})
    assert Store("sqlite:///:memory:").count() == {}


# -- IdempotencyGuard ----------------------------------------------------------------------------
def _ok_handler(calls: list[int], status: int = 200, delay: float = 0) -> Any:
    async def handler() -> Response:
        calls.append(1)
        await asyncio.sleep(delay)
        return JSONResponse({"id": f"obj_{len(calls)}"}, status_code=status)

    return handler


async def test_kit_idempotency_replays_the_first_response() -> None:
    guard, calls = IdempotencyGuard(Store(), mismatch), []
    first = await guard.run(scope="customers", key="k1", fingerprint_parts=[{"a": 1}], handler=_ok_handler(calls))
    again = await guard.run(scope="customers", key="k1", fingerprint_parts=[{"a": 1}], handler=_ok_handler(calls))
    assert len(calls) == 1
    assert again.status_code == 200 and bytes(again.body) == bytes(first.body) == b'{"id":"obj_1"}'
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


async def test_kit_idempotency_different_fingerprint_is_a_mismatch() -> None:
    guard, calls = IdempotencyGuard(Store(), mismatch), []
    await guard.run(scope="s", key="k1", fingerprint_parts=[{"a": 1}], handler=_ok_handler(calls))
    refused = await guard.run(scope="s", key="k1", fingerprint_parts=[{"a": 2}], handler=_ok_handler(calls))
    assert len(calls) == 1
    assert refused.status_code == 400 and b"idempotency_mismatch" in bytes(refused.body)


async def test_kit_idempotency_keys_are_scoped_and_optional() -> None:
    guard, calls = IdempotencyGuard(Store(), mismatch), []
    await guard.run(scope="a", key="k", fingerprint_parts=[], handler=_ok_handler(calls))
    await guard.run(scope="b", key="k", fingerprint_parts=[], handler=_ok_handler(calls))
    await guard.run(scope="a", key=None, fingerprint_parts=[], handler=_ok_handler(calls))
    await guard.run(scope="a", key=None, fingerprint_parts=[], handler=_ok_handler(calls))
    assert len(calls) == 4


async def test_kit_idempotency_server_errors_are_not_remembered() -> None:
    guard, calls = IdempotencyGuard(Store(), mismatch), []
    failed = await guard.run(scope="s", key="k", fingerprint_parts=[], handler=_ok_handler(calls, status=503))
    retried = await guard.run(scope="s", key="k", fingerprint_parts=[], handler=_ok_handler(calls))
    replayed = await guard.run(scope="s", key="k", fingerprint_parts=[], handler=_ok_handler(calls))
    assert failed.status_code == 503 and retried.status_code == 200
    assert len(calls) == 2 and replayed.headers["Idempotent-Replayed"] == "true"


async def test_kit_idempotency_client_errors_are_remembered() -> None:
    guard, calls = IdempotencyGuard(Store(), mismatch), []
    await guard.run(scope="s", key="k", fingerprint_parts=[], handler=_ok_handler(calls, status=402))
    replay = await guard.run(scope="s", key="k", fingerprint_parts=[], handler=_ok_handler(calls))
    assert len(calls) == 1 and replay.status_code == 402


async def test_kit_idempotency_concurrent_same_key_runs_the_handler_once() -> None:
    guard, calls = IdempotencyGuard(Store(), mismatch), []
    responses = await asyncio.gather(*(
        guard.run(scope="s", key="k", fingerprint_parts=["x"], handler=_ok_handler(calls, delay=0.05))
        for _ in range(5)))
    assert len(calls) == 1
    assert {bytes(r.body) for r in responses} == {b'{"id":"obj_1"}'}
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 4


# -- TokenBucket ---------------------------------------------------------------------------------
def test_kit_token_bucket_allows_the_burst_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    wait = bucket.take()
    assert 0.4 < wait <= 0.5


def test_kit_token_bucket_refills_over_time() -> None:
    bucket = TokenBucket(rate=50, burst=1)
    assert bucket.take() == 0 and bucket.take() > 0
    time.sleep(0.05)
    assert bucket.take() == 0


# -- The app: faults through the middleware ------------------------------------------------------
def make_app(store: Store | None = None) -> FastAPI:
    store = store or Store()
    app = create_sandbox_app(style=STYLE, store=store, title="Acme sandbox")
    guard = IdempotencyGuard(store, mismatch)

    @app.post("/v1/things")
    async def create_thing(request: Request) -> Response:
        body = await request.json()

        async def handler() -> Response:
            thing_id = new_id("thing_", store, width=3)
            return JSONResponse(store.put("thing", thing_id, {"id": thing_id, **body}))

        return await guard.run(scope="things", key=request.headers.get("Idempotency-Key"),
                               fingerprint_parts=[body], handler=handler)

    @app.get("/v1/things")
    async def list_things() -> dict[str, Any]:
        return {"data": store.list("thing")}

    @app.get("/v2/other")
    async def other() -> dict[str, str]:
        return {"ok": "yes"}

    return app


@pytest_asyncio.fixture
async def app_client() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://acme.test") as client:
        yield app, client


async def faults(client: httpx.AsyncClient, **settings: Any) -> None:
    response = await client.post("/_sandbox/faults", json=settings)
    assert response.status_code == 200, response.text


async def test_kit_app_serves_vendor_routes_without_faults(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = app_client
    created = await client.post("/v1/things", json={"name": "a"})
    assert created.status_code == 200 and created.json() == {"id": "thing_001", "name": "a"}
    assert (await client.get("/v1/things")).json() == {"data": [{"id": "thing_001", "name": "a"}]}
    assert (await client.get("/_sandbox/counts")).json() == {"thing": 1}
    assert app.state.control.stats.requests == 2


async def test_kit_app_replays_idempotent_creates(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = app_client
    first = await client.post("/v1/things", json={"name": "a"}, headers={"Idempotency-Key": "k1"})
    again = await client.post("/v1/things", json={"name": "a"}, headers={"Idempotency-Key": "k1"})
    other = await client.post("/v1/things", json={"name": "b"}, headers={"Idempotency-Key": "k1"})
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 400 and other.json()["error"]["code"] == "idempotency_mismatch"
    assert (await client.get("/_sandbox/counts")).json() == {"thing": 1}


async def test_kit_fault_error_rate_one_answers_in_the_vendor_style(
        app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = app_client
    await faults(client, error_rate=1, status=502)
    for _ in range(3):
        response = await client.post("/v1/things", json={"name": "a"})
        assert response.status_code == 502
        assert response.json() == {"error": {"code": 502, "message": "injected fault: service unavailable"}}
    assert (await client.get("/_sandbox/counts")).json() == {}  # the handler never ran
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["faults"] == 3 and stats["by_status"] == {"502": 3}


async def test_kit_fault_status_429_uses_the_style_rate_limit(
        app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = app_client
    await faults(client, error_rate=1, status=429)
    response = await client.get("/v1/things")
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert response.json() == {"error": {"code": "rate_limited"}}


async def test_kit_fault_rate_limit_answers_with_the_style_429(
        app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = app_client
    await faults(client, rate_limit_per_second=1, rate_limit_burst=2)
    statuses = [(await client.get("/v1/things")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = await client.get("/v1/things")
    assert limited.headers["Retry-After"] == "1" and limited.json()["error"]["code"] == "rate_limited"
    assert (await client.get("/_sandbox/stats")).json()["rate_limited"] == 2


async def test_kit_fault_latency_delays_vendor_paths_only(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = app_client
    await faults(client, latency_ms=200)
    started = time.monotonic()
    assert (await client.get("/v1/things")).status_code == 200
    slow = time.monotonic() - started
    started = time.monotonic()
    assert (await client.get("/_sandbox/health")).status_code == 200
    fast = time.monotonic() - started
    assert slow >= 0.2 and fast < 0.15


async def test_kit_fault_timeout_rate_holds_the_request(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = app_client
    await faults(client, timeout_rate=1, hang_seconds=0.2)
    started = time.monotonic()
    assert (await client.get("/v1/things")).status_code == 200
    assert time.monotonic() - started >= 0.2
    assert (await client.get("/_sandbox/stats")).json()["timeouts"] == 1


async def test_kit_fault_path_prefix_limits_the_fault(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = app_client
    await faults(client, error_rate=1, status=503, path_prefix="/v2/")
    assert (await client.get("/v1/things")).status_code == 200
    assert (await client.get("/v2/other")).status_code == 503


async def test_kit_fault_methods_limit_the_fault(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = app_client
    await faults(client, error_rate=1, status=500, methods=["post"])
    assert (await client.get("/v1/things")).status_code == 200
    assert (await client.post("/v1/things", json={})).status_code == 500


async def test_kit_fault_never_touches_sandbox_paths(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = app_client
    await faults(client, error_rate=1, status=503, latency_ms=0, rate_limit_per_second=1, rate_limit_burst=1)
    for _ in range(3):
        assert (await client.get("/_sandbox/health")).json() == {"status": "ok", "vendor": "acme"}
        assert (await client.get("/_sandbox/faults")).json()["error_rate"] == 1
    assert app.state.control.stats.requests == 0


async def test_kit_fault_seed_makes_partial_error_rates_repeatable(
        app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = app_client
    runs = []
    for _ in range(2):
        await faults(client, error_rate=0.5, status=503, seed=7)
        runs.append([(await client.get("/v1/things")).status_code for _ in range(20)])
    assert runs[0] == runs[1] and {200, 503} == set(runs[0])


async def test_kit_fault_delete_clears_the_faults(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = app_client
    await faults(client, error_rate=1)
    cleared = await client.delete("/_sandbox/faults")
    assert cleared.json()["error_rate"] == 0
    assert (await client.get("/v1/things")).status_code == 200


async def test_kit_fault_settings_are_validated(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = app_client
    assert (await client.post("/_sandbox/faults", json={"error_rate": 2})).status_code == 422
    assert (await client.post("/_sandbox/faults", json={"status": 200})).status_code == 422


async def test_kit_sandbox_reset_clears_state(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = app_client
    await client.post("/v1/things", json={"name": "a"}, headers={"Idempotency-Key": "k1"})
    await client.post("/_sandbox/webhooks", json={"url": "http://127.0.0.1:1/hook", "drop": True})
    app.state.control.webhooks.emit(b"{}", lambda url, body: {})
    await faults(client, error_rate=1, status=503)
    assert (await client.post("/_sandbox/reset")).json() == {"status": "reset"}
    assert (await client.get("/_sandbox/counts")).json() == {}
    assert (await client.get("/_sandbox/faults")).json()["error_rate"] == 0
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["requests"] == 0 and stats["by_status"] == {}
    assert (await client.get("/_sandbox/webhooks")).json()["deliveries"] == []
    again = await client.post("/v1/things", json={"name": "b"}, headers={"Idempotency-Key": "k1"})
    assert again.json() == {"id": "thing_001", "name": "b"} and "Idempotent-Replayed" not in again.headers


async def test_kit_sandbox_webhook_targets_are_managed(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = app_client
    await client.post("/_sandbox/webhooks", json={"url": "http://a.test/hook"})
    listed = await client.post("/_sandbox/webhooks", json={"url": "http://a.test/hook", "drop": True})
    # the same URL replaced, not added
    assert listed.json() == [{"url": "http://a.test/hook", "alternates": [], "drop": True}]
    assert (await client.delete("/_sandbox/webhooks")).json() == {"targets": []}
    assert (await client.get("/_sandbox/webhooks")).json()["targets"] == []


# -- Webhooks ------------------------------------------------------------------------------------
class Receiver:
    """A local webhook receiver that fails its first ``failures`` deliveries."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[str, bytes, dict[str, str]]] = []
        self.app = FastAPI()

        @self.app.post("/{path}")
        async def hook(path: str, request: Request) -> Response:
            self.received.append((path, await request.body(), dict(request.headers)))
            if self.failures:
                self.failures -= 1
                return Response(status_code=500)
            return Response(status_code=204)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, RunningApp]]:
    rec = Receiver(failures=1)
    running = start_in_thread(rec.app)
    yield rec, running
    running.stop()


def sign(url: str, body: bytes) -> dict[str, str]:
    return {"X-Acme-Signature": f"sig:{len(body)}:{url.rsplit('/', 1)[-1]}"}


async def test_kit_webhook_sender_delivers_and_retries(receiver: tuple[Receiver, RunningApp]) -> None:
    rec, running = receiver
    sender = WebhookSender("acme")
    sender.targets = [WebhookTarget(url=f"{running.base_url}/hook")]
    sender.emit(b'{"event":"deal.updated"}', sign)
    await sender.drain()
    assert [(p, b) for p, b, _ in rec.received] == [("hook", b'{"event":"deal.updated"}')] * 2
    headers = rec.received[-1][2]
    assert headers["x-acme-signature"] == "sig:24:hook" and headers["content-type"] == "application/json"
    assert sender.deliveries == [{"url": f"{running.base_url}/hook", "body": '{"event":"deal.updated"}',
                                  "status": 204, "attempts": 2, "dropped": False}]


async def test_kit_webhook_sender_alternates_between_replicas_of_a_receiver() -> None:
    """``make up REPLICAS=2``: two ingress processes behind one target; deliveries go to each in turn."""
    first, second = Receiver(), Receiver()
    one, two = start_in_thread(first.app), start_in_thread(second.app)
    try:
        sender = WebhookSender("acme")
        sender.targets = [WebhookTarget(url=f"{one.base_url}/hook", alternates=[f"{two.base_url}/hook"])]
        for n in range(4):
            sender.emit(f'{{"n":{n}}}'.encode(), sign)
        await sender.drain()
        assert sorted(b for _p, b, _h in first.received) == [b'{"n":0}', b'{"n":2}']
        assert sorted(b for _p, b, _h in second.received) == [b'{"n":1}', b'{"n":3}']
        assert [d["status"] for d in sender.deliveries] == [204] * 4
    finally:
        one.stop()
        two.stop()


async def test_kit_webhook_sender_moves_to_the_next_replica_when_one_is_down() -> None:
    """One ingress replica killed: every delivery still arrives, at the replica still up, signed for its URL."""
    alive = Receiver()
    running = start_in_thread(alive.app)
    dead = f"http://127.0.0.1:{free_port()}/hook"
    try:
        sender = WebhookSender("acme")
        sender.targets = [WebhookTarget(url=dead, alternates=[f"{running.base_url}/hook"])]
        for n in range(3):
            sender.emit(f'{{"n":{n}}}'.encode(), sign)
        await sender.drain()
        assert sorted(b for _p, b, _h in alive.received) == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
        assert all(d["url"] == f"{running.base_url}/hook" and d["status"] == 204 for d in sender.deliveries)
    finally:
        running.stop()


async def test_kit_webhook_sender_drop_records_without_delivering(receiver: tuple[Receiver, RunningApp]) -> None:
    rec, running = receiver
    sender = WebhookSender("acme")
    sender.targets = [WebhookTarget(url=f"{running.base_url}/lost", drop=True)]
    sender.emit(b"{}", sign)
    await sender.drain()
    await asyncio.sleep(0.1)
    assert rec.received == []
    assert sender.deliveries == [{"url": f"{running.base_url}/lost", "body": "{}", "status": None, "attempts": 0,
                                  "dropped": True}]


async def test_kit_webhook_sender_gives_up_after_max_attempts() -> None:
    sender = WebhookSender("acme")
    sender.max_attempts = 2
    sender.targets = [WebhookTarget(url=f"http://127.0.0.1:{free_port()}/hook")]
    started = time.monotonic()
    sender.emit(b"{}", sign)
    await sender.drain()
    assert sender.deliveries[0]["attempts"] == 2
    assert sender.deliveries[0]["status"] == "error: ConnectError"
    assert time.monotonic() - started < 0.8  # one 0.4 s pause between the two, none after the last


async def test_kit_webhook_sender_emits_through_the_app(receiver: tuple[Receiver, RunningApp]) -> None:
    rec, running = receiver
    rec.failures = 0
    app = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://acme.test") as client:
        await client.post("/_sandbox/webhooks", json={"url": f"{running.base_url}/via-app"})
        app.state.control.webhooks.emit(b'{"n":1}', sign)
        await app.state.control.webhooks.drain()
        deliveries = (await client.get("/_sandbox/webhooks")).json()["deliveries"]
    assert [(p, b) for p, b, _ in rec.received] == [("via-app", b'{"n":1}')]
    assert deliveries[0]["status"] == 204 and deliveries[0]["attempts"] == 1
