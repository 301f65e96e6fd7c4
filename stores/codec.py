"""Payload encryption: AES-256-GCM over every payload Temporal stores, with keys that rotate.

Keys come from settings (``CODEC_KEYS``: comma-separated ``key-id:base64-key`` pairs, 32-byte keys). The
first key encrypts; every key decrypts, so a new key is added *first* and the old ones stay until no
history or ledger row needs them. The key ID travels in the payload's metadata (``encryption-key-id``),
bound to the ciphertext as associated data. With ``CODEC_KEYS`` unset (a local clone), a key is kept in
``<data_dir>/codec.keys``, made on first use, so nothing secret is ever in the code.

:class:`Keyring` also seals the ingress ledger's accepted bodies (:meth:`Keyring.seal` / :meth:`open`).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
_NONCE_BYTES = 12
#: sealed text (ledger bodies): ``enc:v1:<key-id>:<base64 nonce+ciphertext>``
_SEALED_PREFIX = "enc:v1:"


class CodecKeyError(ValueError):
    """A key setting that cannot be used, or a payload sealed with a key we do not hold."""


@dataclass(frozen=True)
class CodecKey:
    """One AES-256 key and its ID."""

    key_id: str
    key: bytes = b""

    def __repr__(self) -> str:  # never print the key
        return f"CodecKey(key_id={self.key_id!r})"


def parse_keys(text: str) -> list[CodecKey]:
    """``id:base64[,id:base64...]`` -> keys, first one encrypting."""
    keys: list[CodecKey] = []
    for item in (part.strip() for part in text.replace("\n", ",").split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id or not key_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise CodecKeyError("each codec key is 'key-id:base64-key' with a plain key ID")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error as exc:
            raise CodecKeyError(f"codec key {key_id!r} is not base64") from exc
        if len(key) != 32:
            raise CodecKeyError(f"codec key {key_id!r} must be 32 bytes (AES-256), not {len(key)}")
        if any(k.key_id == key_id for k in keys):
            raise CodecKeyError(f"codec key ID {key_id!r} is given twice")
        keys.append(CodecKey(key_id, key))
    if not keys:
        raise CodecKeyError("no codec key given")
    return keys


def new_key_line(key_id: str) -> str:
    """A fresh ``key-id:base64-key`` pair (for ``CODEC_KEYS`` or the local key file)."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def local_key_file(settings: Settings) -> Path:
    return settings.data_dir / "codec.keys"


def keys_text(settings: Settings) -> str:
    """The key setting: ``CODEC_KEYS``, or the local key file (made with one random key when missing)."""
    if settings.codec_keys:
        return settings.codec_keys
    return local_secret(local_key_file(settings), lambda: new_key_line("local-1") + "\n")


def local_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in ``path`` (owner-only), made by ``make`` when missing; the first of several processes
    of the stack to get there writes it, the others read it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of the stack made it first
            return path.read_text()
        with os.fdopen(fd, "w") as out:
            out.write(make())
    return path.read_text()


class Keyring:
    """The keys: the first encrypts, all decrypt."""

    def __init__(self, keys: Sequence[CodecKey]) -> None:
        if not keys:
            raise CodecKeyError("no codec key given")
        self.keys = list(keys)
        self._by_id = {k.key_id: AESGCM(k.key) for k in keys}
        self.current = keys[0].key_id

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        return cls(parse_keys(keys_text(settings)))

    def encrypt(self, plain: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE_BYTES)
        return self.current, nonce + self._by_id[self.current].encrypt(nonce, plain, self.current.encode())

    def decrypt(self, key_id: str, sealed: bytes) -> bytes:
        aes = self._by_id.get(key_id)
        if aes is None:
            raise CodecKeyError(f"no codec key with ID {key_id[:40]!r} (was it removed too soon?)")
        try:
            return aes.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], key_id.encode())
        except InvalidTag as exc:
            raise CodecKeyError(f"payload sealed with key {key_id!r} does not authenticate") from exc

    def seal(self, text: str) -> str:
        """Text -> ``enc:v1:<key-id>:<base64>`` (empty stays empty)."""
        if not text:
            return ""
        key_id, sealed = self.encrypt(text.encode())
        return f"{_SEALED_PREFIX}{key_id}:{base64.b64encode(sealed).decode()}"

    def open(self, sealed: str) -> str:
        """The inverse of :meth:`seal`; text that was never sealed is returned as it is."""
        if not sealed.startswith(_SEALED_PREFIX):
            return sealed
        key_id, _, data = sealed[len(_SEALED_PREFIX):].partition(":")
        return self.decrypt(key_id, base64.b64decode(data)).decode()


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over the whole serialized payload; the key ID in the metadata."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            key_id, sealed = self.keyring.encrypt(payload.SerializeToString())
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()}, data=sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding", b"") != ENCODING:
                # Not ours (written before the codec existed): pass through, as the SDK samples do.
                out.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
            out.append(Payload.FromString(self.keyring.decrypt(key_id, payload.data)))
        return out


__all__ = ["ENCODING", "KEY_ID_METADATA", "CodecKey", "CodecKeyError", "EncryptionCodec", "Keyring", "keys_text",
           "local_key_file", "new_key_line", "parse_keys"]
