"""The emulator's check of Token-Based Authentication (OAuth 1.0a, RFC 5849), written apart from the
connector's signing so that one cannot hide the other's mistake.

The base string is built from every ``Authorization`` parameter but ``realm`` and ``oauth_signature``
(``oauth_body_hash`` included when a client sends one, and then checked against the body), the query decoded
as a form (``+`` and ``%20`` both a space) and the request's scheme, host and path. A wrong realm, an unknown
consumer or token, a signature method other than HMAC-SHA256, a timestamp more than five minutes off, a nonce
seen before or a wrong signature is refused with 401 and NetSuite's ``INVALID_LOGIN`` body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

TIMESTAMP_WINDOW = 300  # seconds either side of now
_PARAM = re.compile(r'\s*([A-Za-z0-9_]+)\s*=\s*"([^"]*)"\s*(?:,|$)')


def _enc(value: str) -> str:
    return quote(value.encode(), safe="~-._")


class TbaRefused(Exception):
    """Why a request's signature was refused (the emulator's 401 names it)."""


class TbaVerifier:
    """Checks the ``Authorization: OAuth ...`` header of each request against one account's four TBA values."""

    def __init__(self, *, account_id: str, consumer_key: str, consumer_secret: str, token_id: str,
                 token_secret: str, clock: Callable[[], float] = time.time) -> None:
        self.account_id = account_id
        self.consumer_key, self.consumer_secret = consumer_key, consumer_secret
        self.token_id, self.token_secret = token_id, token_secret
        self._clock = clock
        self._nonces: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def parameters(header: str) -> list[tuple[str, str]]:
        """The header's parameters, values percent-decoded (RFC 5849 section 3.5.1)."""
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() != "oauth":
            raise TbaRefused("not an OAuth authorization header")
        found: list[tuple[str, str]] = []
        position = 0
        while position < len(rest):
            match = _PARAM.match(rest, position)
            if match is None:
                raise TbaRefused("malformed OAuth header")
            found.append((match.group(1), unquote(match.group(2))))
            position = match.end()
        return found

    @staticmethod
    def base_string(method: str, url: str, oauth: list[tuple[str, str]]) -> str:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.port is not None and (parts.scheme, parts.port) not in (("http", 80), ("https", 443)):
            host += f":{parts.port}"
        uri = f"{parts.scheme.lower()}://{host}{parts.path}"
        params = [(k, v) for k, v in oauth if k not in ("realm", "oauth_signature")]
        params += parse_qsl(parts.query, keep_blank_values=True)
        normal = "&".join(f"{k}={v}" for k, v in sorted((_enc(k), _enc(v)) for k, v in params))
        return f"{method.upper()}&{_enc(uri)}&{_enc(normal)}"

    def verify(self, method: str, url: str, header: str | None, body: bytes) -> None:
        """Return when the request is signed by this account's token, else raise :class:`TbaRefused`."""
        if not header:
            raise TbaRefused("no Authorization header")
        oauth = self.parameters(header)
        values = dict(oauth)
        if len(values) != len(oauth):
            raise TbaRefused("a parameter appears twice")
        if values.get("realm", "").upper() != self.account_id.upper():
            raise TbaRefused("wrong realm")
        if values.get("oauth_consumer_key") != self.consumer_key or values.get("oauth_token") != self.token_id:
            raise TbaRefused("unknown consumer or token")
        if values.get("oauth_signature_method") != "HMAC-SHA256":
            raise TbaRefused("signature method must be HMAC-SHA256")
        if values.get("oauth_version", "1.0") != "1.0":
            raise TbaRefused("oauth_version must be 1.0")
        try:
            stamp = int(values.get("oauth_timestamp", ""))
        except ValueError as exc:
            raise TbaRefused("no timestamp") from exc
        now = self._clock()
        if abs(now - stamp) > TIMESTAMP_WINDOW:
            raise TbaRefused("stale timestamp")
        nonce = values.get("oauth_nonce") or ""
        if not nonce:
            raise TbaRefused("no nonce")
        if "oauth_body_hash" in values:
            hashes = {base64.b64encode(hashlib.new(name, body).digest()).decode() for name in ("sha1", "sha256")}
            if values["oauth_body_hash"] not in hashes:
                raise TbaRefused("oauth_body_hash does not match the body")
        key = f"{_enc(self.consumer_secret)}&{_enc(self.token_secret)}".encode()
        expected = base64.b64encode(hmac.new(key, self.base_string(method, url, oauth).encode(),
                                             hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, values.get("oauth_signature", "")):
            raise TbaRefused("signature does not match")
        with self._lock:  # a nonce counts as used only once the signature proved the request
            for seen, at in list(self._nonces.items()):
                if at < now - 2 * TIMESTAMP_WINDOW:
                    del self._nonces[seen]
            if (self.token_id, nonce) in self._nonces:
                raise TbaRefused("replayed nonce")
            self._nonces[(self.token_id, nonce)] = now


__all__ = ["TIMESTAMP_WINDOW", "TbaRefused", "TbaVerifier"]
