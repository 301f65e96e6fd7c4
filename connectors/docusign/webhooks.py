"""DocuSign Connect deliveries: verify the HMAC signatures, parse the JSON (SIM) body into canonical events.

DocuSign's scheme ("HMAC security for Connect"): for each HMAC key the Connect configuration holds (up to
100), DocuSign sends ``X-DocuSign-Signature-<n>``: the base64 HMAC-SHA256 of the raw request body under key
``n``. A receiver accepts the delivery when any signature header matches any key it holds, which lets a key
be rotated in either order: add the new key on either side first, and drop the old one on both afterwards.

The scheme carries no timestamp, so there is no freshness window; a replay is caught downstream by the event
ID (envelope and event).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from canonical import DomainEvent
from connectors.docusign import mapping
from connectors.docusign.spec import DocuSignSettings
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.identifiers import load_json
from settings import Settings

SIGNATURE_PREFIX = "x-docusign-signature-"
#: DocuSign holds at most 100 keys per Connect configuration; more headers than that is not DocuSign
MAX_SIGNATURES = 100


def signature(key: str, body: bytes) -> str:
    """``X-DocuSign-Signature-n`` for ``body`` under ``key``: base64 of HMAC-SHA256 over the raw bytes."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def signature_headers(keys: Sequence[str], body: bytes) -> dict[str, str]:
    """The headers DocuSign sends for ``body`` with ``keys`` (``X-DocuSign-Signature-1`` for the first ...)."""
    return {f"X-DocuSign-Signature-{n}": signature(key, body) for n, key in enumerate(keys, start=1)}


class DocuSignConnect:
    """``WebhookReceiver`` for DocuSign Connect, holding the HMAC keys in force (several while rotating)."""

    vendor = mapping.VENDOR
    header_prefixes = ("x-docusign-",)  # kept with each delivery in the event ledger

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [key.encode() for key in keys if key]

    async def aclose(self) -> None:
        return None

    async def verify(self, *, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``SignatureInvalid`` unless some ``X-DocuSign-Signature-n`` is the HMAC of the body under a key
        held."""
        if not self._keys:
            raise SignatureInvalid("no Connect HMAC key is configured (DOCUSIGN_CONNECT_HMAC_KEYS)")
        given = [value for name, value in headers.items() if name.lower().startswith(SIGNATURE_PREFIX)]
        if not given:
            raise SignatureInvalid("missing X-DocuSign-Signature-1 header")
        if len(given) > MAX_SIGNATURES:
            raise SignatureInvalid("more X-DocuSign-Signature headers than DocuSign sends")
        decoded: list[bytes] = []
        for value in given:
            try:
                decoded.append(base64.b64decode(value.strip(), validate=True))
            except (binascii.Error, ValueError):
                continue  # a malformed header cannot match; another one may
        expected = [hmac.new(key, body, hashlib.sha256).digest() for key in self._keys]
        # compare every pair in constant time: which pair matched must not show in the timing
        matched = False
        for sent in decoded:
            for digest in expected:
                matched |= hmac.compare_digest(sent, digest)
        if not matched:
            raise SignatureInvalid("no X-DocuSign-Signature matches a Connect key held")

    def parse(self, *, headers: Mapping[str, str], body: bytes) -> list[DomainEvent]:
        """Canonical events of a delivery; ``PayloadInvalid`` names the field at fault."""
        payload = load_json(body)
        if not isinstance(payload, dict):
            raise PayloadInvalid("body", "not a JSON object")
        return mapping.events_from_connect(payload)


def from_settings(settings: Settings, *, config: DocuSignSettings | None = None) -> DocuSignConnect:
    """A receiver holding the configured Connect keys (``DOCUSIGN_CONNECT_HMAC_KEYS``)."""
    config = config or DocuSignSettings.of(settings)
    return DocuSignConnect(config.connect_hmac_keys)


__all__ = ["DocuSignConnect", "SIGNATURE_PREFIX", "from_settings", "signature", "signature_headers"]
