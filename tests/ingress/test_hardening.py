"""The ingress as an attacker tries it: floods of unsigned bodies, deep nesting, huge numbers, hostile IDs,
header injection, log injection, Temporal away. Every answer is a 2xx/4xx (or a bare 503), every
delivery is in the ledger, and nothing of a refused body is kept."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from intake import ClientProvider
from runtime.logs import MAX_VALUE_CHARS, JsonFormatter
from sandbox.serve import free_port
from settings import ROOT, Settings
from tests.helpers.servers import SandboxHandle, vendor_settings
from tests.helpers.webhooks import (
    hubspot_delivery,
    hubspot_property_change,
    stripe_delivery,
    stripe_invoice,
    stripe_sign,
    unique_deal_id,
    xero_delivery,
    xero_event,
)
from tests.ingress.conftest import MakeIngress, RunningIngress, connector_to
from tests.ingress.test_rejections import assert_absent, post

MB = 1024 * 1024


@pytest.fixture
def big_ingress(make_ingress: MakeIngress, ingress_settings: Settings) -> RunningIngress:
    """An ingress that reads bodies up to 2 MB (so 1 MB bodies reach the signature check)."""
    return make_ingress(settings=ingress_settings.model_copy(update={"ingress_max_body_bytes": 2 * MB}))


def ledger_bytes(ingress: RunningIngress) -> int:
    path = Path(ingress.settings.ledger_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + "-*"))


async def test_hardening_flood_of_unsigned_megabyte_posts_leaves_the_ledger_small(
    big_ingress: RunningIngress, client: Client, ironclad_sandbox: SandboxHandle
) -> None:
    before = ledger_bytes(big_ingress)
    prefix = b'{"id":"evt_flood","customer":"'
    junk = prefix + b"A" * (MB - len(prefix) - 2) + b'"}'
    assert len(junk) == MB
    async with httpx.AsyncClient(timeout=30) as http:
        answers = [(await http.post(big_ingress.url(vendor), content=junk,
                                    headers={"Content-Type": "application/json"})).status_code
                   for vendor in ("stripe", "hubspot", "xero", "ironclad") * 10]
    deal_id = unique_deal_id()
    valid = hubspot_delivery(big_ingress.settings, big_ingress.url("hubspot"),
                             [hubspot_property_change(deal_id, "dealstage", "closedwon")])
    accepted = await post(big_ingress.url("hubspot"), valid.body, valid.headers)

    assert answers == [401] * 40 and accepted.status_code == 200
    grown = ledger_bytes(big_ingress) - before
    assert grown < 40 * 2 * 1024, f"the ledger grew by {grown} bytes for 40 refused 1 MB bodies"
    refused = big_ingress.deliveries(outcome="rejected")
    assert len(refused) == 40
    for row in refused:
        assert row.body == "" and row.event is None and row.body_bytes == MB
        assert len(row.body_sha256) == 64 and row.reason and row.status_code == 401
        assert len(row.headers) + len(row.reason) < 1024


async def test_hardening_unsigned_deep_nesting_on_ironclad_is_a_recorded_401(
    ingress: RunningIngress, ironclad_sandbox: SandboxHandle
) -> None:
    """Ironclad's receiver parsed the body before verifying: ``[``x10,000 was a 500 with no ledger row."""
    body = b"[" * 10_000
    forged = {"X-Ironclad-Webhook-Event-Id": "webhookEvent1", "X-Ironclad-Webhook-Verification": json.dumps(
        {"nonce": "n", "signAlgorithm": "RSA-SHA256", "signature": "AAAA", "encoding": "base64"})}

    bare = await post(ingress.url("ironclad"), body, {})
    signed_looking = await post(ingress.url("ironclad"), body, forged)

    assert (bare.status_code, signed_looking.status_code) == (401, 401)
    assert ingress.outcomes() == {"rejected": 2}


async def test_hardening_signed_deep_nesting_and_huge_numbers_are_recorded_400s(ingress: RunningIngress) -> None:
    secret = vendor_settings(ingress.settings, "stripe").webhook_secret
    for body in (b"[" * 5_000 + b"]" * 5_000, b'{"id": "evt_1", "created": 1' + b"0" * 5_000 + b"}",
                 b'{"a":' * 40 + b"1" + b"}" * 40):
        response = await post(ingress.url("stripe"), body, {"Stripe-Signature": stripe_sign(secret, body)})
        assert response.status_code == 400, response.text
        assert response.json()["field"] == "body"
    assert ingress.outcomes() == {"rejected": 3}


async def test_hardening_stripe_created_out_of_range_is_400(ingress: RunningIngress, client: Client) -> None:
    body = json.dumps({"id": "evt_1234567890", "object": "event", "created": 10**18, "type": "invoice.finalized",
                       "api_version": "2023-08-16",
                       "data": {"object": stripe_invoice("cus_range1")}}).encode()

    response = await post(ingress.url("stripe"), body, {"Stripe-Signature": stripe_sign(
        vendor_settings(ingress.settings, "stripe").webhook_secret, body)})

    assert response.status_code == 400 and response.json()["field"] == "created"
    await assert_absent(client, "ledger-stripe-cus_range1")


@pytest.mark.parametrize("object_id", ["../../properties/deals", True, "12\r\n34", "1\x002", "9" * 200_000, -5,
                                       "12 34", 1.5])
async def test_hardening_hostile_hubspot_ids_are_400_and_start_nothing(
    make_ingress: MakeIngress, ingress_settings: Settings, object_id: object
) -> None:
    ingress = make_ingress(settings=ingress_settings.model_copy(update={"ingress_max_body_bytes": MB}))
    event = hubspot_property_change("1", "dealstage", "closedwon")
    event["objectId"] = object_id
    delivery = hubspot_delivery(ingress.settings, ingress.url("hubspot"), [event])

    response = await post(ingress.url("hubspot"), delivery.body, delivery.headers)

    assert response.status_code == 400, response.text
    assert response.json()["field"] == "[0].objectId" and len(response.text) < 1000
    [row] = ingress.deliveries()
    assert (row.outcome, row.status_code, row.workflow_id, row.body) == ("rejected", 400, None, "")


async def test_hardening_hostile_ids_never_reach_a_response_header(ingress: RunningIngress) -> None:
    """Xero answers in headers: a CRLF from the body must not be echoed (it dropped the connection)."""
    event = xero_event()
    event["resourceId"] = "INVOICE\r\nSet-Cookie: owned=1"  # not a UUID: refused, and the reason names it
    delivery = xero_delivery(ingress.settings, [event])

    response = await post(ingress.url("xero"), delivery.body, delivery.headers)

    assert response.status_code == 400 and "set-cookie" not in response.headers
    assert all(" " <= c <= "~" for value in response.headers.values() for c in value)
    assert "?" in response.headers["x-revops-reason"]


async def test_hardening_503_says_only_try_later(make_ingress: MakeIngress, ingress_settings: Settings) -> None:
    dead = f"127.0.0.1:{free_port()}"
    ingress = make_ingress(provider=ClientProvider(connector_to(dead), timeout=1.0))
    deal_id = unique_deal_id()
    delivery = hubspot_delivery(ingress.settings, ingress.url("hubspot"),
                                [hubspot_property_change(deal_id, "dealstage", "closedwon")])

    response = await post(ingress.url("hubspot"), delivery.body, delivery.headers)

    assert response.status_code == 503 and response.headers["retry-after"]
    assert response.json()["reason"] == "try later"
    assert dead.split(":")[1] not in response.text and "grpc" not in response.text.lower()
    [row] = ingress.deliveries()
    assert row.outcome == "failed" and row.reason  # the detail stays in the ledger


async def test_hardening_healthz_is_liveness_and_readyz_checks_temporal_and_ledger(
    ingress: RunningIngress, make_ingress: MakeIngress
) -> None:
    down = make_ingress(provider=ClientProvider(connector_to(f"127.0.0.1:{free_port()}"), timeout=1.0))
    async with httpx.AsyncClient(timeout=20) as http:
        base, dead = ingress.running.base_url, down.running.base_url
        ready, alive = await http.get(f"{base}/readyz"), await http.get(f"{base}/healthz")
        not_ready, still_alive = await http.get(f"{dead}/readyz"), await http.get(f"{dead}/healthz")

    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "temporal": "ok", "ledger": "ok"})
    assert alive.status_code == still_alive.status_code == 200
    assert not_ready.status_code == 503 and not_ready.json()["temporal"] == "unavailable"
    assert not_ready.json()["ledger"] == "ok" and not_ready.headers["retry-after"]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("revops.ingress")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_hardening_logs_are_one_escaped_bounded_json_object_per_line(
    ingress: RunningIngress, json_log: io.StringIO
) -> None:
    async with httpx.AsyncClient(timeout=20) as http:
        forged = "x%0A%7B%22level%22%3A%22forged%22%7D%0D%0Aevil"
        await http.post(f"{ingress.running.base_url}/webhooks/{forged}", content=b"{}")
        await http.post(ingress.url("stripe"), content=b"{}",
                        headers={"Stripe-Signature": "t=1,v1=" + "f" * 10_000})

    lines = json_log.getvalue().splitlines()
    assert len(lines) >= 2
    entries = [json.loads(line) for line in lines]  # every line is one whole JSON object
    assert not any(e.get("level") == "forged" for e in entries)
    assert all(len(str(v)) <= MAX_VALUE_CHARS + 20 for e in entries for v in e.values())
    assert "ffffffffff" * 30 not in json_log.getvalue()


def test_hardening_log_formatter_escapes_and_truncates() -> None:
    record = logging.LogRecord("revops.ingress", logging.INFO, __file__, 1, "event routed", None, None)
    record.event_id = "x" * 200_000
    record.reason = "a\nforged line\r\n\x00"

    line = JsonFormatter().format(record)

    assert "\n" not in line and "\r" not in line and len(line) < 1000
    entry = json.loads(line)
    assert entry["reason"] == "a\nforged line\r\n\x00" and entry["event_id"].startswith("x" * MAX_VALUE_CHARS)


async def test_hardening_slow_body_is_a_recorded_408(make_ingress: MakeIngress, ingress_settings: Settings) -> None:
    ingress = make_ingress(settings=ingress_settings.model_copy(update={"ingress_read_timeout_seconds": 0.5}))

    async def trickle() -> AsyncIterator[bytes]:
        yield b"{"
        await asyncio.sleep(3)  # a sender that stalls mid-body (slowloris)
        yield b"}"

    async with httpx.AsyncClient(timeout=20) as http:
        try:
            response = await http.post(ingress.url("stripe"), content=trickle())
            status = response.status_code
        except httpx.HTTPError:
            status = 0  # the server may close on us mid-upload; the ledger still has the row
    assert status in (408, 0)
    [row] = ingress.deliveries()
    assert (row.outcome, row.status_code, row.body) == ("rejected", 408, "")


async def test_hardening_accepted_stripe_body_is_encrypted_at_rest(ingress: RunningIngress) -> None:
    delivery = stripe_delivery(ingress.settings, "customer.updated", {"id": "cus_rest1", "object": "customer",
                                                                      "email": "secret-buyer@example.com"})

    response = await post(ingress.url("stripe"), delivery.body, delivery.headers)

    assert response.status_code == 200
    [row] = ingress.deliveries()
    assert "secret-buyer" not in row.body and row.body.startswith("enc:v1:test-2026-11:")
    assert "secret-buyer@example.com" in ingress.ledger.open(row.body)


# -- issue 23: hostile text cannot bend an operator's terminal ------------------------------------------------
ESC = "\x1b"


def _starter(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:

    env = {**os.environ, "DATA_DIR": str(tmp_path), "FINDINGS_URL": f"sqlite:///{tmp_path / 'findings.sqlite'}"}
    return subprocess.run([sys.executable, "starter.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_ack_and_exceptions_refuse_and_escape_ansi_and_newlines(tmp_path: Path) -> None:
    """A finding whose stored detail carries ANSI escapes and a newline (vendor data), an ``ack`` whose reason
    and ``--by`` try the same, and an unknown finding ID that does: nothing reaches the terminal raw."""
    from datetime import UTC, datetime

    from sqlmodel import Session

    from canonical.reconciliation import Finding, FindingKind
    from stores.findings import findings_engine, record_run

    hostile = f"{ESC}[2J{ESC}[1;1Hall clear\nFINDING #99 [closed] nothing to see"
    engine = findings_engine(f"sqlite:///{tmp_path / 'findings.sqlite'}")
    with Session(engine) as session:
        record_run(session=session, scope="all", run_id="r1", now=datetime.now(UTC), findings=[
            Finding(kind=FindingKind.ORPHAN_IN_ERP, key="orphan_in_erp:EU01:x1", legal_entity="EU01", erp_id="x1",
                    detail=hostile)])
    engine.dispose()

    listed = _starter(tmp_path, "exceptions")
    assert listed.returncode == 0, listed.stderr
    assert ESC not in listed.stdout and "\\x1b[2J" in listed.stdout
    assert len(listed.stdout.strip().splitlines()) == 1, "one finding, one line: no forged second line"

    for reason, by in ((f"ok{ESC}[31m", "Dana"), ("fine\nFINDING #1 [closed]", "Dana"), ("fine", f"Dana\n{ESC}[0m"),
                       ("fine", "Dana\u202eevil"), ("x" * 501, "Dana")):
        refused = _starter(tmp_path, "ack", "1", "--reason", reason, "--by", by)
        assert refused.returncode == 1, (reason, by, refused.stdout, refused.stderr)
        assert ESC not in refused.stderr + refused.stdout and "refused:" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    unknown = _starter(tmp_path, "ack", f"9{ESC}]0;pwned\x07\nFAKE", "--reason", "fine")
    assert unknown.returncode == 2
    assert ESC not in unknown.stderr and "\x07" not in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1

    done = _starter(tmp_path, "ack", "1", "--reason", "bank confirms", "--by", "Dana")
    assert done.returncode == 0, done.stderr
    after = _starter(tmp_path, "exceptions")
    assert "acknowledged by Dana: bank confirms" in after.stdout and ESC not in after.stdout


def test_served_ingress_and_approvals_log_json_lines_only(tmp_path: Path) -> None:
    """``starter.py serve`` as a process: start-up, both servers' own lines, a refused approval with a hostile
    path and shutdown are all one JSON object per line on stderr (no uvicorn plain-text line)."""
    import signal
    import time

    ingress_port, approvals_port = free_port(), free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path), "INGRESS_PORT": str(ingress_port),
           "APPROVALS_PORT": str(approvals_port), "INGRESS_METRICS_PORT": "0",
           "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    served = subprocess.Popen([sys.executable, "starter.py", "serve"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{approvals_port}/inbox", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert served.poll() is None and time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)
        httpx.get(f"http://127.0.0.1:{ingress_port}/healthz", timeout=5)
        httpx.post(f"http://127.0.0.1:{approvals_port}/approvals/q2c-hubspot-1%0A%1B[2J", json={"approved": True},
                   timeout=5)
    finally:
        served.send_signal(signal.SIGTERM)
        out, err = served.communicate(timeout=60)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "the processes logged nothing"
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not_json == [], not_json[:5]
    assert "\x1b" not in err
