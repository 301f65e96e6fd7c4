"""Webhook signing the way Stripe does it (the emulator's own code, not the connector's verifier)."""

from __future__ import annotations

import hashlib
import hmac
import time


def stripe_signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``, plus the ``v0`` test-mode scheme.

    Real test-mode deliveries also carry a ``v0`` signature made with a legacy secret; receivers
    must ignore it, so the emulator sends one (with a key nobody knows) to keep them honest.
    """
    t = int(time.time()) if timestamp is None else timestamp
    payload = f"{t}.".encode() + body
    v1 = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    v0 = hmac.new(b"legacy-test-mode-secret", payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={v1},v0={v0}"
