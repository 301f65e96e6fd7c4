"""Token-Based Authentication: OAuth 1.0a (RFC 5849) signatures with HMAC-SHA256, ``realm`` = the account ID.

The signature base string (RFC 5849 section 3.4.1) is the method, the base string URI (scheme and host lower
case, default port dropped, no query) and the normalised parameters: every ``oauth_*`` parameter but the
signature and ``realm``, the decoded query (``+`` and ``%20`` both a space, as form decoding reads them) and
a form-encoded body's parameters, each percent-encoded (section 3.6), sorted by name then value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

SIGNATURE_METHOD = "HMAC-SHA256"
_DIGESTS = {"HMAC-SHA256": hashlib.sha256, "HMAC-SHA1": hashlib.sha1}


def percent_encode(value: str) -> str:
    """RFC 5849 section 3.6: UTF-8, then every byte but the unreserved ``A-Z a-z 0-9 - . _ ~`` as ``%XX``."""
    return quote(value.encode(), safe="~-._")


def base_string_uri(url: str) -> str:
    """Section 3.4.1.2: scheme and host in lower case, the port only when not the scheme's default, the path."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def query_parameters(url: str) -> list[tuple[str, str]]:
    """The query of ``url`` decoded as a form (section 3.4.1.3.1): ``+`` and ``%20`` are both a space."""
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def normalized_parameters(parameters: Iterable[tuple[str, str]]) -> str:
    """Section 3.4.1.3.2: encode names and values, sort by name then value, join with ``=`` and ``&``."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in parameters)
    return "&".join(f"{k}={v}" for k, v in encoded)


def base_string(method: str, url: str, oauth: Iterable[tuple[str, str]],
                body: Iterable[tuple[str, str]] = ()) -> str:
    """The signature base string of a request: ``oauth`` holds the protocol parameters (``realm`` and
    ``oauth_signature`` are left out here), ``body`` a form-encoded body's parameters."""
    params = [(k, v) for k, v in oauth if k not in ("realm", "oauth_signature")]
    params += query_parameters(url) + list(body)
    return "&".join((method.upper(), percent_encode(base_string_uri(url)),
                     percent_encode(normalized_parameters(params))))


def sign(base: str, consumer_secret: str, token_secret: str, method: str = SIGNATURE_METHOD) -> str:
    """Section 3.4.2: base64 of HMAC over ``base`` keyed ``encode(consumer secret)&encode(token secret)``."""
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, base.encode(), _DIGESTS[method]).digest()).decode()


def authorization_header(realm: str, oauth: Iterable[tuple[str, str]]) -> str:
    """``OAuth realm="...", oauth_...="..."`` with every value percent-encoded (section 3.5.1)."""
    fields = [f'realm="{percent_encode(realm)}"'] + [f'{k}="{percent_encode(v)}"' for k, v in oauth]
    return "OAuth " + ", ".join(fields)


class TbaAuth(httpx.Auth):
    """Signs every request with the account's four TBA values; a fresh nonce and timestamp each time (a
    retried request is signed again, never replayed)."""

    def __init__(self, *, account_id: str, consumer_key: str, consumer_secret: str, token_id: str,
                 token_secret: str, clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] = lambda: secrets.token_hex(16)) -> None:
        self.realm = account_id
        self.consumer_key, self.consumer_secret = consumer_key, consumer_secret
        self.token_id, self.token_secret = token_id, token_secret
        self._clock, self._nonce = clock, nonce

    def header_for(self, method: str, url: str) -> str:
        """The ``Authorization`` header for ``method url`` (the body is JSON, so it adds no parameters)."""
        oauth = [("oauth_consumer_key", self.consumer_key), ("oauth_token", self.token_id),
                 ("oauth_signature_method", SIGNATURE_METHOD), ("oauth_timestamp", str(int(self._clock()))),
                 ("oauth_nonce", self._nonce()), ("oauth_version", "1.0")]
        signature = sign(base_string(method, url, oauth), self.consumer_secret, self.token_secret)
        return authorization_header(self.realm, [*oauth, ("oauth_signature", signature)])

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.header_for(request.method, str(request.url))
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = self.header_for(request.method, str(request.url))
        yield request


__all__ = ["SIGNATURE_METHOD", "TbaAuth", "authorization_header", "base_string", "base_string_uri",
           "normalized_parameters", "percent_encode", "query_parameters", "sign"]
