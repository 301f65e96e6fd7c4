"""Ironclad webhook deliveries: verify the RSA signature, parse into canonical events.

Ironclad's scheme (developer.ironcladapp.com, "Webhook Verification"):

- ``X-Ironclad-Webhook-Event-Id``: the event's unique ID;
- ``X-Ironclad-Webhook-Verification``: a JSON object ``{"nonce", "signAlgorithm", "signature", "encoding"}``;
- the signed data is the event ID, then the JSON-stringified body, then the nonce, concatenated;
  ``signAlgorithm`` is e.g. ``RSA-SHA256`` (PKCS#1 v1.5) and ``encoding`` e.g. ``base64``;
- the public key (PEM) comes from ``GET /public/api/v1/webhooks/verification-key``. We cache it and, on a
  failed check, fetch it once more before refusing, so a key rotation does not drop deliveries.

The scheme has no timestamp in the signature, so there is no freshness window to check; duplicates are
caught downstream by the event ID.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable, Mapping

import httpx
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from canonical import DomainEvent
from connectors.errors import ConnectorError, PayloadInvalid, SignatureInvalid
from connectors.identifiers import load_json, payload_id, shown
from connectors.ironclad import mapping
from connectors.ironclad.client import IroncladClm
from connectors.ironclad.client import from_settings as clm_from_settings
from connectors.ironclad.spec import IroncladSettings
from settings import Settings

EVENT_ID_HEADER = "x-ironclad-webhook-event-id"
VERIFICATION_HEADER = "x-ironclad-webhook-verification"

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "rsa-sha256": hashes.SHA256, "sha256": hashes.SHA256,
    "rsa-sha384": hashes.SHA384, "sha384": hashes.SHA384,
    "rsa-sha512": hashes.SHA512, "sha512": hashes.SHA512,
}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _decode_signature(signature: str, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.b64decode(signature, validate=True)
    if encoding == "hex":
        return bytes.fromhex(signature)
    raise SignatureInvalid(f"unsupported signature encoding {shown(encoding)!r}")


def signed_messages(event_id: str, body: bytes, nonce: str) -> list[bytes]:
    """The data Ironclad signs: event ID + JSON.stringify(body) + nonce.

    ``JSON.stringify`` of the parsed body is compact JSON; we rebuild it and also try the raw body, which
    is the same text whenever the sender serialised compactly.
    """
    raw = event_id.encode() + body + nonce.encode()
    messages = [raw]
    try:  # bounded: this runs before the signature is known to be good
        compact = json.dumps(load_json(body), separators=(",", ":"), ensure_ascii=False).encode()
    except PayloadInvalid:
        return messages
    if event_id.encode() + compact + nonce.encode() != raw:
        messages.append(event_id.encode() + compact + nonce.encode())
    return messages


class IroncladWebhooks:
    """``WebhookReceiver`` for Ironclad. ``fetch_key`` returns the PEM verification key (through the
    adapter's authenticated client in production)."""

    vendor = mapping.VENDOR
    header_prefixes = ("x-ironclad-",)  # kept with each delivery in the event ledger

    def __init__(self, fetch_key: Callable[[], Awaitable[str]], *, refetch_after_seconds: float = 10.0,
                 on_close: Callable[[], Awaitable[None]] | None = None) -> None:
        self._fetch_key = fetch_key
        self._key: rsa.RSAPublicKey | None = None
        self._fetched_at = 0.0
        # a stream of forged deliveries must not turn into a stream of key fetches
        self._refetch_after = refetch_after_seconds
        self._on_close = on_close

    async def aclose(self) -> None:
        if self._on_close is not None:
            await self._on_close()

    async def _load_key(self) -> rsa.RSAPublicKey:
        try:
            pem = await self._fetch_key()
        except ConnectorError as exc:
            raise SignatureInvalid(f"cannot fetch the verification key: {exc}") from exc
        try:
            key = serialization.load_pem_public_key(pem.encode())
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise SignatureInvalid("the verification key is not a PEM public key") from exc
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureInvalid("the verification key is not an RSA key")
        self._key, self._fetched_at = key, time.monotonic()
        return key

    async def verify(self, *, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``SignatureInvalid`` unless Ironclad's key signed this delivery."""
        event_id = _header(headers, EVENT_ID_HEADER)
        if not event_id:
            raise SignatureInvalid("missing X-Ironclad-Webhook-Event-Id header")
        if len(event_id) > 255 or len(_header(headers, VERIFICATION_HEADER) or "") > 8192:
            raise SignatureInvalid("oversized Ironclad webhook header")
        raw = _header(headers, VERIFICATION_HEADER)
        if not raw:
            raise SignatureInvalid("missing X-Ironclad-Webhook-Verification header")
        try:
            verification = json.loads(raw)
            nonce, algorithm = str(verification["nonce"]), str(verification["signAlgorithm"])
            signature = _decode_signature(str(verification["signature"]), str(verification.get("encoding",
                                                                                                "base64")))
        except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as exc:
            raise SignatureInvalid(f"malformed X-Ironclad-Webhook-Verification header: {shown(str(exc), 80)}"
                                   ) from exc
        digest = _HASHES.get(algorithm.lower())
        if digest is None:
            raise SignatureInvalid(f"unsupported signAlgorithm {shown(algorithm)!r}")
        messages = signed_messages(event_id, body, nonce)
        key = self._key or await self._load_key()
        if self._matches(key, signature, messages, digest):
            return
        if time.monotonic() - self._fetched_at >= self._refetch_after:
            fresh = await self._load_key()  # the key may have been rotated
            if self._matches(fresh, signature, messages, digest):
                return
        raise SignatureInvalid("signature does not match the body")

    @staticmethod
    def _matches(key: rsa.RSAPublicKey, signature: bytes, messages: list[bytes],
                 digest: Callable[[], hashes.HashAlgorithm]) -> bool:
        for message in messages:
            try:
                key.verify(signature, message, padding.PKCS1v15(), digest())
                return True
            except InvalidSignature:
                continue
        return False

    def parse(self, *, headers: Mapping[str, str], body: bytes) -> list[DomainEvent]:
        """Canonical events of a delivery; ``PayloadInvalid`` names the field at fault."""
        event_id = payload_id(_header(headers, EVENT_ID_HEADER), "X-Ironclad-Webhook-Event-Id")
        payload = load_json(body)
        if not isinstance(payload, dict):
            raise PayloadInvalid("body", "not a JSON object")
        return mapping.events_from_webhook(payload, event_id=event_id)


def from_settings(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                  clm: IroncladClm | None = None, config: IroncladSettings | None = None) -> IroncladWebhooks:
    """A receiver fetching the key through ``clm`` (or an adapter of its own, closed by ``aclose``)."""
    if clm is not None:
        return IroncladWebhooks(clm.webhook_verification_key)
    own = clm_from_settings(settings, transport=transport, config=config)
    return IroncladWebhooks(own.webhook_verification_key, on_close=own.aclose)


__all__ = ["EVENT_ID_HEADER", "VERIFICATION_HEADER", "IroncladWebhooks", "from_settings", "signed_messages"]
