"""Test-only codec keys, and the tool that encrypts committed histories with them.

These keys protect nothing: they exist so that the committed histories in ``tests/histories/`` are
ciphertext like production histories, and so that every test (and every worker process a test spawns)
encrypts with the same key. ``tests/conftest.py`` exports :data:`TEST_CODEC_KEYS` as ``CODEC_KEYS``.

``python -m tests.helpers.codec tests/histories/*.json`` encrypts histories recorded in plaintext (e.g.
before the codec existed) in place, exactly as a worker with the codec would have written them:
every payload but search attributes and headers, failure messages and stack traces moved into
encoded attributes. Already encrypted payloads are left alone.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

from stores.codec import ENCODING, EncryptionCodec, Keyring, parse_keys

#: the key the committed histories are encrypted with, and that tests encrypt with
TEST_KEY = "test-2026-11:bAP0O3jqGMY0Gdbk9UEtzB/fY4N9z8cyrltttKR9wc0="
#: a newer key, for the rotation tests only (added first: it encrypts, the old one still decrypts)
ROTATED_KEY = "test-2027-rotated:JV/lXrcCnFmRFTKTxSDnBK5ea3+VBhvDG0XzQjf+ep4="
TEST_CODEC_KEYS = TEST_KEY

#: search attributes and headers are never encoded; markers (patch markers) are written and read by the SDK core
_SKIPPED_FIELDS = {"search_attributes", "header", "marker_recorded_event_attributes"}


def keyring_for_tests(keys: str = TEST_CODEC_KEYS) -> Keyring:
    return Keyring(parse_keys(keys))


def _payloads_in(message: Message, failures: list[Failure]) -> list[Payload]:
    """Every payload inside ``message`` but search attributes and headers (the worker does not encode those)."""
    found: list[Payload] = []
    if isinstance(message, Failure):
        failures.append(message)
    for field, value in message.ListFields():
        if field.name in _SKIPPED_FIELDS or field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            items = [v for v in value.values() if isinstance(v, Message)]
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Payload):
                found.append(item)
            else:
                found.extend(_payloads_in(item, failures))
    return found


async def encrypt_history(history: WorkflowHistory, keyring: Keyring) -> int:
    """Encrypt a plaintext history in place; returns the number of payloads encrypted."""
    codec = EncryptionCodec(keyring)
    converter = DataConverter.default.payload_converter
    count = 0
    for event in history.events:
        failures: list[Failure] = []
        _payloads_in(event, failures)
        for failure in failures:  # as DefaultFailureConverterWithEncodedAttributes writes them
            if failure.message != "Encoded failure" and not failure.HasField("encoded_attributes"):
                failure.encoded_attributes.CopyFrom(converter.to_payloads(
                    [{"message": failure.message, "stack_trace": failure.stack_trace}])[0])
                failure.message, failure.stack_trace = "Encoded failure", ""
        for payload in _payloads_in(event, []):
            if payload.metadata.get("encoding") == ENCODING:
                continue
            [sealed] = await codec.encode([payload])
            payload.CopyFrom(sealed)
            count += 1
    return count


async def encrypt_history_files(paths: list[Path], keyring: Keyring) -> None:
    for path in paths:
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        count = await encrypt_history(history, keyring)
        if count:
            path.write_text(history.to_json())
        print(f"{path.name}: {count} payloads encrypted")


if __name__ == "__main__":
    asyncio.run(encrypt_history_files([Path(p) for p in sys.argv[1:]], keyring_for_tests()))
