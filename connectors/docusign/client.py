"""The DocuSign eSignature adapter: ``ClmPort`` over REST v2.1.

Auth is DocuSign's JWT grant: an RS256 assertion (``iss`` integration key, ``sub`` user, ``aud`` the account
server's host, ``scope``) exchanged at ``<base>/oauth/token`` for an access token; ``<base>/oauth/userinfo``
then names the account's ``base_uri``, under which the API lives (``/restapi/v2.1/accounts/{accountId}``).

DocuSign has no idempotency header, so a launch first lists envelopes by our ``revopsKey`` custom field
(``custom_field=revopsKey=<key>``) and sends only when none exists. Errors are DocuSign's ``{errorCode,
message}``, translated by code where the code says more than the status. The limits are DocuSign's
``X-RateLimit-Limit/-Remaining/-Reset`` headers: when a window is used up the adapter waits for its reset
(or raises ``RateLimited`` when that is far off), and a 429 carries the reset as its retry-after.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncGenerator, Generator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

from canonical import Contract, ContractStatus, ContractTerms
from canonical.requests import ContractRequest
from connectors.docusign import mapping
from connectors.docusign.mapping import MappingError
from connectors.docusign.spec import DocuSignSettings
from connectors.errors import (
    AuthFailed,
    Conflict,
    ConnectorError,
    NotFound,
    RateLimited,
    Rejected,
    Unavailable,
)
from connectors.http import build_client, parse_retry_after, send
from connectors.identifiers import UUID, segment
from settings import Settings

VENDOR = "docusign"
TOKEN_PATH = "/oauth/token"
USERINFO_PATH = "/oauth/userinfo"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
API_VERSION = "v2.1"
#: the earliest from_date a look-up by custom field uses (listStatusChanges needs a from_date)
EPOCH = "2000-01-01T00:00:00Z"
#: a window reset further off than this is a ``RateLimited`` for the caller's retry policy, not a sleep
MAX_PACING_WAIT = 10.0
_MAX_PAGES = 1000

#: DocuSign error codes whose meaning the status alone does not carry
_BY_CODE: dict[str, type[ConnectorError]] = {
    "ENVELOPE_DOES_NOT_EXIST": NotFound,
    "INVALID_ENVELOPE_ID": NotFound,
    "TEMPLATE_NOT_FOUND": NotFound,
    "USER_AUTHENTICATION_FAILED": AuthFailed,
    "AUTHORIZATION_INVALID_TOKEN": AuthFailed,
    "USER_LACKS_PERMISSIONS": AuthFailed,
    "PARTNER_AUTHENTICATION_FAILED": AuthFailed,
    "ENVELOPE_CANNOT_VOID_INVALID_STATE": Conflict,
    "HOURLY_APIINVOCATION_LIMIT_EXCEEDED": RateLimited,
    "BURST_APIINVOCATION_LIMIT_EXCEEDED": RateLimited,
}


def _id(value: str | None) -> str:
    """An envelope ID (a GUID), quoted for a path; ``InvalidIdentifier`` otherwise."""
    return segment(value, "DocuSign envelope ID", UUID, vendor=VENDOR)


def error_message(response: httpx.Response) -> str:
    """DocuSign's explanation: ``{"errorCode", "message"}`` (API) or ``{"error", "error_description"}`` (OAuth)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(body, dict):
        return response.text[:300]
    if "errorCode" in body:
        return f"{body['errorCode']}: {body.get('message') or ''}".rstrip(": ")
    if "error" in body:
        return f"{body['error']}: {body.get('error_description') or ''}".rstrip(": ")
    return response.text[:300]


def rate_limit_reset(response: httpx.Response) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (epoch seconds), else ``Retry-After``."""
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, min(float(reset) - time.time(), 3600.0))
        except ValueError:
            pass
    return parse_retry_after(response.headers.get("Retry-After"))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise Unavailable(f"unreadable response from {response.request.url.path}", vendor=VENDOR,
                          status=response.status_code) from exc


class JwtGrant:
    """The JWT grant's access token and the account's API base URI (from ``/oauth/userinfo``)."""

    def __init__(self, config: DocuSignSettings, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        self._token: str | None = None
        self._expires_at = 0.0
        self._base_uri: str | None = None
        self._lock = asyncio.Lock()

    def assertion(self) -> str:
        now = int(time.time())
        audience = urlsplit(self.config.base_url).netloc
        claims = {"iss": self.config.integration_key, "sub": self.config.user_id, "aud": audience,
                  "iat": now, "exp": now + 3600, "scope": self.config.scopes}
        try:
            return jwt.encode(claims, self.config.private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthFailed("DOCUSIGN_PRIVATE_KEY is not a usable RSA private key", vendor=VENDOR) from exc

    async def token(self, *, refresh: bool = False, used: str | None = None) -> str:
        async with self._lock:
            if refresh and self._token == used:
                self._token = None
            if self._token and time.monotonic() < self._expires_at - 60:
                return self._token
            try:
                response = await send(self.client, "POST", TOKEN_PATH, vendor=VENDOR, error_message=error_message,
                                      data={"grant_type": JWT_GRANT, "assertion": self.assertion()})
            except Rejected as exc:  # DocuSign refuses a bad assertion with 400 invalid_grant
                raise AuthFailed(f"the JWT grant was refused: {exc.message}", vendor=VENDOR,
                                 status=exc.status) from exc
            body = _json(response)
            try:
                self._token = str(body["access_token"])
                self._expires_at = time.monotonic() + float(body.get("expires_in", 3600))
            except (KeyError, TypeError, ValueError) as exc:
                raise AuthFailed("token response without an access_token", vendor=VENDOR) from exc
            return self._token

    async def api_base(self) -> str:
        """``<base_uri>/restapi/v2.1/accounts/<accountId>`` of the configured account."""
        if self._base_uri is None:
            token = await self.token()
            response = await send(self.client, "GET", USERINFO_PATH, vendor=VENDOR, error_message=error_message,
                                  headers={"Authorization": f"Bearer {token}"})
            accounts = _json(response).get("accounts") or []
            account = next((a for a in accounts if a.get("account_id") == self.config.account_id), None)
            if account is None or not account.get("base_uri"):
                raise AuthFailed(f"user {self.config.user_id} has no access to account {self.config.account_id}",
                                 vendor=VENDOR)
            self._base_uri = str(account["base_uri"]).rstrip("/")
        return f"{self._base_uri}/restapi/{API_VERSION}/accounts/{self.config.account_id}"


class JwtGrantAuth(httpx.Auth):
    """Bearer token of the JWT grant; a 401 fetches a new token once."""

    def __init__(self, grant: JwtGrant) -> None:
        self.grant = grant

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("JwtGrantAuth is for AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used = await self.grant.token()
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self.grant.token(refresh=True, used=used)}"
            yield request


class DocuSignClm:
    """``ClmPort`` for DocuSign eSignature: send an envelope from the template, follow it, read its form data."""

    vendor = VENDOR

    def __init__(self, client: httpx.AsyncClient, grant: JwtGrant, *, template_id: str, signer_role: str,
                 page_size: int = 100, token_client: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self._grant = grant
        self._template_id = template_id
        self._role = signer_role
        self._page_size = page_size
        self._token_client = token_client
        self._resume_at = 0.0  # epoch seconds: the rate-limit window is used up until then
        self._launch_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._token_client is not None:
            await self._token_client.aclose()

    async def _pace(self) -> None:
        wait = self._resume_at - time.time()
        if wait <= 0:
            return
        if wait > MAX_PACING_WAIT:
            raise RateLimited("DocuSign's API limit is used up until its window resets", retry_after=wait,
                              vendor=VENDOR)
        await asyncio.sleep(wait)

    def _observe_limits(self, response: httpx.Response) -> None:
        remaining = response.headers.get("X-RateLimit-Remaining")
        reset = response.headers.get("X-RateLimit-Reset")
        try:
            if remaining is not None and reset is not None and int(remaining) <= 0:
                self._resume_at = float(reset)
        except ValueError:
            pass

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        await self._pace()
        url = f"{await self._grant.api_base()}{path}"
        try:
            response = await send(self._client, method, url, vendor=VENDOR, error_message=error_message,
                                  retry_after=rate_limit_reset, **kwargs)
        except ConnectorError as exc:
            code = exc.message.split(":", 1)[0]
            kind = _BY_CODE.get(code)
            if kind is RateLimited:
                raise RateLimited(exc.message, retry_after=getattr(exc, "retry_after", None), vendor=VENDOR) from exc
            if kind is not None and not isinstance(exc, kind):
                raise kind(exc.message, vendor=VENDOR, status=exc.status) from exc
            raise
        self._observe_limits(response)
        return response

    # -- ClmPort ------------------------------------------------------------------------------------------
    async def launch_contract(self, request: ContractRequest, *, idempotency_key: str) -> Contract:
        """Send the envelope, or return the one already sent with this key (so a retry never sends twice)."""
        try:
            body = mapping.envelope_body(request, idempotency_key=idempotency_key,
                                         template_id=request.template_id or self._template_id, role=self._role)
        except MappingError as exc:
            raise Rejected(f"cannot encode the contract request: {exc}", vendor=VENDOR) from exc
        lock = self._launch_locks.get(idempotency_key)
        if lock is None:
            lock = self._launch_locks[idempotency_key] = asyncio.Lock()
        async with lock:
            existing = await self._envelopes_with(mapping.KEY_FIELD, idempotency_key)
            if existing:
                first = min(existing, key=lambda e: str(e.get("createdDateTime") or ""))
                return await self.get_contract(str(first["envelopeId"]))
            summary = _json(await self._request("POST", "/envelopes", json=body))
            envelope = {**summary, "emailSubject": body["emailSubject"],
                        "customFields": body["customFields"]}
            return mapping.contract_from_envelope(envelope, terms=request.terms,
                                                  counterparty=request.counterparty.name)

    async def get_contract(self, clm_workflow_id: str) -> Contract:
        """The envelope's status; once completed, its executed terms and amendments."""
        envelope = await self._envelope(clm_workflow_id)
        if mapping.status_of(envelope) is ContractStatus.EXECUTED:
            return await self._executed(envelope)
        return mapping.contract_from_envelope(envelope)

    async def get_record(self, record_id: str) -> Contract:
        """A completed contract envelope with its terms as amended and every completed amendment, in sequence."""
        envelope = await self._envelope(record_id)
        if mapping.status_of(envelope) is not ContractStatus.EXECUTED:
            raise NotFound(f"envelope {record_id} is not completed: no executed record yet", vendor=VENDOR)
        return await self._executed(envelope)

    async def get_signed_terms(self, record_id: str) -> ContractTerms:
        """The terms as first signed: the original envelope's form data (amendments are envelopes of their own)."""
        try:
            return mapping.terms_from_tabs(await self._form(_id(record_id)))
        except MappingError as exc:
            raise Rejected(f"envelope {record_id} cannot be read as contract terms: {exc}", vendor=VENDOR) from exc

    async def cancel_contract(self, clm_workflow_id: str, *, reason: str) -> None:
        """Void the envelope with ``reason``; voiding a voided (or declined) envelope is a no-op."""
        try:
            await self._request("PUT", f"/envelopes/{_id(clm_workflow_id)}",
                                json={"status": "voided", "voidedReason": (reason or "cancelled by revops")[:200]})
        except (Rejected, Conflict):
            envelope = await self._envelope(clm_workflow_id)  # a retry after a lost answer: already voided
            if mapping.status_of(envelope) is not ContractStatus.CANCELLED:
                raise

    async def list_executed_records(self, *, deal_ids: list[str] | None = None) -> list[Contract]:
        """Every completed contract envelope of ours (amendments left out), with its terms as amended; ``deal_ids``
        keeps those of these CRM deals. One whose terms cannot be read still comes back, without terms."""
        wanted = set(deal_ids) if deal_ids is not None else None
        found: list[Contract] = []
        async for envelope in self._pages({"from_date": EPOCH, "status": "completed"}):
            fields = mapping.custom_fields(envelope)
            if mapping.KEY_FIELD not in fields or mapping.is_amendment(envelope):
                continue
            if wanted is not None and fields.get(mapping.DEAL_FIELD) not in wanted:
                continue
            found.append(await self._executed_or_bare(envelope))
        return found

    async def records_changed_since(self, since: datetime, *, cursor: str | None = None
                                    ) -> tuple[list[Contract], str | None]:
        """Executed contracts whose envelope (or an amendment's) completed at or after ``since``: one page of
        ``listStatusChanges`` (``from_date``, ``count``, ``start_position``), and the next page's cursor or None.
        An amendment's completion answers its contract, with every amendment."""
        start = int(cursor) if cursor and cursor.isdigit() else 0
        params = {"from_date": _iso(since), "from_to_status": "completed", "status": "completed",
                  "include": "custom_fields", "order_by": "status_changed", "order": "asc",
                  "count": str(self._page_size), "start_position": str(start)}
        page = _json(await self._request("GET", "/envelopes", params=params))
        contracts: dict[str, Contract] = {}
        for envelope in page.get("envelopes") or []:
            fields = mapping.custom_fields(envelope)
            if mapping.KEY_FIELD not in fields:
                continue  # not one of ours
            parent = fields.get(mapping.PARENT_FIELD)
            record_id = parent or str(envelope["envelopeId"])
            if record_id not in contracts:
                contracts[record_id] = await self._executed_or_bare(
                    await self._envelope(record_id) if parent else envelope)
        return list(contracts.values()), _next_start(page)

    # -- beyond the port ---------------------------------------------------------------------------------
    async def templates(self) -> list[dict[str, Any]]:
        """The account's templates (``GET /templates``)."""
        return list(_json(await self._request("GET", "/templates")).get("envelopeTemplates") or [])

    async def _envelope(self, envelope_id: str) -> dict[str, Any]:
        envelope = _json(await self._request("GET", f"/envelopes/{_id(envelope_id)}",
                                             params={"include": "custom_fields"}))
        if not isinstance(envelope, dict):
            raise Unavailable(f"envelope {envelope_id}: unexpected body", vendor=VENDOR)
        return envelope

    async def _form(self, envelope_id: str) -> dict[str, str]:
        return mapping.form_values(_json(await self._request("GET", f"/envelopes/{_id(envelope_id)}/form_data")))

    async def _executed(self, envelope: dict[str, Any]) -> Contract:
        envelope_id = str(envelope["envelopeId"])
        form = await self._form(envelope_id)
        amendments = [(a, await self._form(str(a["envelopeId"])))
                      for a in await self._envelopes_with(mapping.PARENT_FIELD, envelope_id, status="completed")]
        try:
            return mapping.executed_contract(envelope, form, amendments)
        except MappingError as exc:
            raise Rejected(f"envelope {envelope_id} cannot be read as a contract: {exc}", vendor=VENDOR) from exc

    async def _executed_or_bare(self, envelope: dict[str, Any]) -> Contract:
        try:
            return await self._executed(envelope)
        except Rejected:
            return mapping.contract_from_envelope(envelope)

    async def _envelopes_with(self, field: str, value: str, *, status: str | None = None) -> list[dict[str, Any]]:
        """Envelopes whose text custom field ``field`` is ``value`` (any status unless one is given)."""
        params = {"from_date": EPOCH, "custom_field": f"{field}={value}"}
        if status:
            params["status"] = status
        return [e async for e in self._pages(params)
                if mapping.custom_fields(e).get(field) == value]

    async def _pages(self, params: dict[str, str]) -> Any:
        start = 0
        for _ in range(_MAX_PAGES):
            page = _json(await self._request("GET", "/envelopes", params={
                **params, "include": "custom_fields", "count": str(self._page_size), "start_position": str(start)}))
            for envelope in page.get("envelopes") or []:
                yield envelope
            following = _next_start(page)
            if following is None:
                return
            start = int(following)


def _iso(when: datetime) -> str:
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _next_start(page: dict[str, Any]) -> str | None:
    """The next page's ``start_position`` from ``nextUri`` (or the positions), None on the last page."""
    next_uri = page.get("nextUri")
    if next_uri:
        values = parse_qs(urlsplit(str(next_uri)).query).get("start_position")
        if values and values[0].isdigit():
            return values[0]
    try:
        end, total = int(page.get("endPosition", -1)), int(page.get("totalSetSize", 0))
    except (TypeError, ValueError):
        return None
    return str(end + 1) if 0 <= end < total - 1 and page.get("envelopes") else None


def from_settings(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                  timeout: float | httpx.Timeout | None = None, config: DocuSignSettings | None = None
                  ) -> DocuSignClm:
    """The adapter for the configured DocuSign account (``DOCUSIGN_BASE_URL``) with the JWT grant."""
    config = config or DocuSignSettings.of(settings)
    base = config.base_url.rstrip("/")
    timeout = timeout if timeout is not None else settings.http_timeout_seconds
    token_client = build_client(base_url=base, transport=transport, timeout=timeout)
    grant = JwtGrant(config, token_client)
    client = build_client(base_url=base, auth=JwtGrantAuth(grant), transport=transport, timeout=timeout,
                          headers={"Accept": "application/json"})
    return DocuSignClm(client, grant, template_id=config.template_id, signer_role=config.signer_role,
                       page_size=config.page_size, token_client=token_client)


__all__ = ["DocuSignClm", "JwtGrant", "error_message", "from_settings", "rate_limit_reset"]
