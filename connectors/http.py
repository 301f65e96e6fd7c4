"""The one httpx client factory: timeouts, auth, User-Agent, a correlation ID on every request (with the
OpenTelemetry trace ID when a trace is active), the translation of transport failures and error responses
into the connector error tree, and one observation per vendor call (vendor, status, seconds) for metrics."""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from opentelemetry import trace

from connectors.errors import AuthFailed, ConnectorError, Unavailable, error_for_status

USER_AGENT = "revops-integration/0.1 (+https://github.com/revops)"
CORRELATION_HEADER = "X-Correlation-ID"

#: set by activities (workflow ID / run) so every outgoing request can be traced to its flow
correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MAX_RETRY_AFTER = 3600.0


#: called with (vendor, status, seconds) after every vendor call; status is the HTTP code, ``timeout`` or
#: ``network``. The composition root (worker.py) adds the metrics' observer; nothing is observed otherwise.
VendorCallObserver = Callable[[str, str, float], None]
_call_observers: list[VendorCallObserver] = []


def observe_vendor_calls(observer: VendorCallObserver) -> Callable[[], None]:
    """Add an observer of every vendor call; returns the function that removes it again."""
    _call_observers.append(observer)

    def remove() -> None:
        if observer in _call_observers:
            _call_observers.remove(observer)

    return remove


def _observe(vendor: str, status: str, seconds: float) -> None:
    for observer in list(_call_observers):
        observer(vendor, status, seconds)


def trace_reference() -> str | None:
    """``trace=<trace id>`` of the active OpenTelemetry span, if any (carried in the correlation header)."""
    context = trace.get_current_span().get_span_context()
    return f"trace={trace.format_trace_id(context.trace_id)}" if context.is_valid else None


async def _add_correlation(request: httpx.Request) -> None:
    if CORRELATION_HEADER in request.headers:
        return
    parts = [p for p in (correlation_id.get(), trace_reference()) if p]
    if parts:
        request.headers[CORRELATION_HEADER] = " ".join(parts)


def build_client(
    *,
    base_url: str,
    auth: httpx.Auth | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: httpx.Timeout | float | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 50,
) -> httpx.AsyncClient:
    """An ``AsyncClient`` for one vendor. Tests pass ``transport=`` instead of patching."""
    return httpx.AsyncClient(
        base_url=base_url,
        auth=auth,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
        transport=transport,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        event_hooks={"request": [_add_correlation]},
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # NaN, infinity and absurd waits are clamped: a header must never park a retry forever.
        return min(max(0.0, seconds), MAX_RETRY_AFTER) if seconds == seconds else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    vendor: str,
    error_message: Callable[[httpx.Response], str],
    retry_after: Callable[[httpx.Response], float | None] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request; return a 2xx response or raise the matching ``ConnectorError``.

    ``error_message`` pulls the vendor's own explanation out of its error body;
    ``retry_after`` reads the vendor's rate-limit headers (``Retry-After`` by default).
    """
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        _observe(vendor, "timeout", time.perf_counter() - started)
        raise Unavailable(f"timeout on {method} {url}: {exc.__class__.__name__}", vendor=vendor) from exc
    except httpx.TransportError as exc:
        _observe(vendor, "network", time.perf_counter() - started)
        raise Unavailable(f"network error on {method} {url}: {exc}", vendor=vendor) from exc
    _observe(vendor, str(response.status_code), time.perf_counter() - started)
    if response.is_success:
        return response
    try:
        message = error_message(response)
    except Exception:  # a broken error body must not hide the status
        message = response.text[:500]
    wait = (retry_after or default_retry_after)(response)
    raise error_for_status(response.status_code, message or response.reason_phrase,
                           vendor=vendor, retry_after=wait)


def default_retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


class ClientCredentialsAuth(httpx.Auth):
    """OAuth 2.0 client-credentials bearer token, fetched on first use and refreshed before expiry.

    Used for Ironclad and Xero custom connections; the token request goes through ``token_client``
    so it shares timeouts and correlation headers.
    """

    requires_response_body = True

    def __init__(self, *, token_url: str, client_id: str, client_secret: str, scope: str | None = None,
                 vendor: str, token_client: httpx.AsyncClient | None = None, body_format: str = "form") -> None:
        # ``body_format="json"``: the token request body as JSON (Ironclad's spec), else form-encoded (RFC 6749)
        self.body_format = body_format
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.vendor = vendor
        self._token_client = token_client
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def _fetch(self) -> str:
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at - 30:
                return self._token
            form = {"grant_type": "client_credentials"}
            if self.scope:
                form["scope"] = self.scope
            client = self._token_client or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)
            try:
                body: dict[str, Any] = {"json": form} if self.body_format == "json" else {"data": form}
                response = await send(client, "POST", self.token_url, vendor=self.vendor,
                                      error_message=lambda r: r.text[:300], **body,
                                      auth=(self.client_id, self.client_secret))
            finally:
                if self._token_client is None:
                    await client.aclose()
            try:
                body = response.json()
                token = str(body["access_token"])
                expires_in = float(body.get("expires_in", 1800))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                # a token answer without a token must surface as an auth failure, not a KeyError
                raise AuthFailed(f"token response without a usable access_token: {exc!r}",
                                 vendor=self.vendor, status=response.status_code) from exc
            self._token = token
            self._expires_at = time.monotonic() + expires_in
            return token

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ClientCredentialsAuth is for AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used = await self._fetch()
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code == 401:
            # Expired early or revoked: fetch once more. Only drop the token this request used, so
            # concurrent requests refused with the same token share one refetch instead of one each.
            if self._token == used:
                self._token = None
            request.headers["Authorization"] = f"Bearer {await self._fetch()}"
            yield request


def utc_from_epoch(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


__all__ = ["ConnectorError", "ClientCredentialsAuth", "VendorCallObserver", "build_client", "correlation_id",
           "observe_vendor_calls", "parse_retry_after", "send", "trace_reference", "utc_from_epoch"]
