"""The codec server: authenticated, CORS for the UI origin only, everything else refused; and in a real
browser (headless Debian Chromium via Playwright), a workflow page of the Temporal UI shows decoded
payloads with the codec token and ciphertext without it."""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from runtime.attributes import SEARCH_ATTRIBUTES
from runtime.codec_server import COOKIE, codec_token, create_codec_app
from runtime.connect import data_converter
from runtime.devserver import dev_server_path
from sandbox.serve import RunningApp, free_port, start_in_thread
from settings import Settings
from tests.helpers.codec import keyring_for_tests
from workflows.models import QuoteToCashInput

TOKEN = "test-codec-token-" + "x" * 16
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MARKER = "Zebra Industries GmbH"


def _codec_server(ui_origin: str) -> RunningApp:
    return start_in_thread(create_codec_app(keyring=keyring_for_tests(), token=TOKEN, cors_origins=[ui_origin]))


@pytest.fixture
def codec_server() -> Iterator[RunningApp]:
    running = _codec_server("http://localhost:8233")
    yield running
    running.stop()


async def _encoded(text: str) -> dict[str, Any]:
    [payload] = await data_converter(keyring=keyring_for_tests()).encode([text])
    return {"metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
            "data": base64.b64encode(payload.data).decode()}


async def test_codec_server_decodes_only_with_the_token(codec_server: RunningApp) -> None:
    body = {"payloads": [await _encoded(MARKER)]}
    url = f"{codec_server.base_url}/decode"
    async with httpx.AsyncClient(timeout=10) as http:
        anonymous = await http.post(url, json=body)
        wrong = await http.post(url, json=body, headers={"Authorization": "Bearer not-the-token-at-all"})
        bearer = await http.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    async with httpx.AsyncClient(timeout=10, cookies={COOKIE: TOKEN}) as signed_in:
        cookie = await signed_in.post(url, json=body)

    assert anonymous.status_code == wrong.status_code == 401 and MARKER not in anonymous.text
    for answer in (bearer, cookie):
        [payload] = answer.json()["payloads"]
        assert json.loads(base64.b64decode(payload["data"])) == MARKER
        assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"


async def test_codec_server_encode_round_trips_and_refuses_everything_else(codec_server: RunningApp) -> None:
    plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
             "data": base64.b64encode(b'"hello"').decode()}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    base = codec_server.base_url
    async with httpx.AsyncClient(timeout=10) as http:
        encoded = await http.post(f"{base}/encode", json={"payloads": [plain]}, headers=auth)
        decoded = await http.post(f"{base}/decode", json=encoded.json(), headers=auth)
        junk = await http.post(f"{base}/decode", content=b"[" * 50_000, headers=auth)
        unknown_path = await http.post(f"{base}/keys", json={}, headers=auth)
        wrong_method = await http.get(f"{base}/decode", headers=auth)
        foreign = await http.options(f"{base}/decode", headers={"Origin": "https://evil.example",
                                                                "Access-Control-Request-Method": "POST"})
        ui = await http.options(f"{base}/decode", headers={
            "Origin": "http://localhost:8233", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace"})
        bad_login = await http.post(f"{base}/login", content=b"token=nope",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        login = await http.post(f"{base}/login", content=f"token={TOKEN}".encode(),
                                headers={"Content-Type": "application/x-www-form-urlencoded"})

    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert base64.b64decode(sealed["metadata"]["encryption-key-id"]) == b"test-2026-11"
    assert decoded.json()["payloads"][0]["data"] == plain["data"]
    assert junk.status_code == 400 and unknown_path.status_code == 404 and wrong_method.status_code == 405
    assert "access-control-allow-origin" not in foreign.headers
    assert ui.headers["access-control-allow-origin"] == "http://localhost:8233"
    assert ui.headers["access-control-allow-credentials"] == "true"
    assert bad_login.status_code == 401 and COOKIE not in bad_login.cookies
    assert login.status_code == 200 and login.cookies[COOKIE] == TOKEN
    cookie_header = login.headers["set-cookie"].lower()
    assert "httponly" in cookie_header and "samesite=strict" in cookie_header
    # the login page cannot be framed, and decoded payloads are never cached
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
    assert login.headers["x-frame-options"] == "DENY" and decoded.headers["cache-control"] == "no-store"


def test_codec_server_token_comes_from_settings_or_a_local_file(tmp_path: Any) -> None:
    configured = Settings(_env_file=None, data_dir=tmp_path, codec_server_token="t" * 20)  # type: ignore[call-arg]
    local = Settings(_env_file=None, data_dir=tmp_path / "fresh")  # type: ignore[call-arg]
    assert codec_token(configured) == "t" * 20
    first = codec_token(local)
    assert len(first) >= 32 and codec_token(local) == first
    with pytest.raises(ValueError):
        create_codec_app(keyring=keyring_for_tests(), token="short", cors_origins=[])


# -- the Temporal UI in a real browser ------------------------------------------------------------------
@pytest_asyncio.fixture
async def ui_stack() -> AsyncIterator[tuple[WorkflowEnvironment, int, RunningApp]]:
    """A dev server with its UI pointed at a codec server (as ``make up`` starts them)."""
    ui_port = free_port()
    codec = _codec_server(f"http://localhost:{ui_port}")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_path(), data_converter=data_converter(keyring=keyring_for_tests()),
        search_attributes=SEARCH_ATTRIBUTES, dev_server_log_level="error", ui=True, ui_port=ui_port,
        dev_server_extra_args=["--ui-codec-endpoint", f"http://localhost:{codec.port}"])
    yield env, ui_port, codec
    await env.shutdown()
    codec.stop()


def _chromium_or_skip() -> None:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")


async def _page_text(browser: Any, url: str, codec_url: str, *, token: str | None, expect: str,
                     statuses: list[int]) -> str:
    context = await browser.new_context()
    # The UI's own codec settings ("Include cross-origin credentials", browser setting over the cluster's),
    # as an operator sets them once in Settings > Codec Server; the UI keeps them in localStorage.
    await context.add_init_script(f"""
        localStorage.setItem('endpoint', JSON.stringify('{codec_url}'));
        localStorage.setItem('includeCredentials', 'true');
        localStorage.setItem('overrideRemoteCodecConfiguration', 'true');
    """)
    if token is not None:  # the operator signed in on the codec server's /login page
        login = await context.request.post(f"{codec_url}/login", form={"token": token})
        assert login.status == 200
    page = await context.new_page()
    try:
        async with page.expect_response(lambda r: r.url.startswith(f"{codec_url}/decode"),
                                        timeout=30_000) as decoding:
            await page.goto(url)
        statuses.append((await decoding.value).status)
        await page.get_by_text(expect).first.wait_for(timeout=30_000)
    finally:
        text = await page.locator("body").inner_text()
        await context.close()
    return text


async def test_codec_server_ui_shows_decoded_payloads_with_the_token_and_ciphertext_without(
    ui_stack: tuple[WorkflowEnvironment, int, RunningApp]
) -> None:
    _chromium_or_skip()
    from playwright.async_api import async_playwright

    env, ui_port, codec = ui_stack
    workflow_id = f"codec-ui-{uuid.uuid4().hex[:8]}"
    await env.client.start_workflow("QuoteToCashWorkflow", QuoteToCashInput(deal_id="4242", trigger=MARKER),
                                    id=workflow_id, task_queue=f"no-worker-{uuid.uuid4()}")
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    [stored] = history.events[0].workflow_execution_started_event_attributes.input.payloads
    ciphertext = base64.b64encode(stored.data).decode()
    url = f"http://localhost:{ui_port}/namespaces/default/workflows/{workflow_id}"
    codec_url = f"http://localhost:{codec.port}"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            statuses: list[int] = []
            decoded = await _page_text(browser, url, codec_url, token=TOKEN, expect=MARKER, statuses=statuses)
            sealed = await _page_text(browser, url, codec_url, token=None, expect=ciphertext[:40],
                                      statuses=statuses)
        finally:
            await browser.close()

    assert statuses == [200, 401]  # the codec server decoded for the signed-in operator only
    assert MARKER in decoded and ciphertext not in decoded
    assert MARKER not in sealed and ciphertext in sealed  # without the token: the stored ciphertext
