"""The payload codec: AES-256-GCM, the key ID in the metadata, keys that rotate without breaking
replay or running workflows."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from runtime.connect import data_converter
from runtime.launch import start_quote_to_cash
from settings import Settings
from stores.codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecKeyError,
    EncryptionCodec,
    Keyring,
    keys_text,
    local_key_file,
    parse_keys,
)
from tests.helpers.codec import ROTATED_KEY, TEST_KEY, _payloads_in, keyring_for_tests
from tests.helpers.deals import DealSpec, seed_deal
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from worker import build_worker, open_connectors
from workflows.models import Stage
from workflows.quote_to_cash import QuoteToCashWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
ROTATED = f"{ROTATED_KEY},{TEST_KEY}"


async def test_codec_encrypts_with_the_first_key_and_names_it() -> None:
    converter = data_converter(keyring=keyring_for_tests(ROTATED))
    [payload] = await converter.encode([{"company": "Acme GmbH", "price": "4321.17"}])
    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[KEY_ID_METADATA] == b"test-2027-rotated"
    assert b"Acme" not in payload.SerializeToString() and b"4321" not in payload.SerializeToString()
    assert await converter.decode([payload], [dict]) == [{"company": "Acme GmbH", "price": "4321.17"}]


async def test_codec_old_payloads_decode_after_a_new_key_is_added_first() -> None:
    old = EncryptionCodec(keyring_for_tests(TEST_KEY))
    [sealed] = await old.encode([data_converter(keyring=keyring_for_tests()).payload_converter.to_payloads(
        ["Bea Biller"])[0]])
    rotated = EncryptionCodec(keyring_for_tests(ROTATED))
    [opened] = await rotated.decode([sealed])
    assert opened.data == b'"Bea Biller"'
    with pytest.raises(CodecKeyError, match="test-2026-11"):
        await EncryptionCodec(keyring_for_tests(ROTATED_KEY)).decode([sealed])


async def test_codec_refuses_a_tampered_payload() -> None:
    codec = EncryptionCodec(keyring_for_tests())
    [sealed] = await codec.encode([data_converter(keyring=keyring_for_tests()).payload_converter.to_payloads(
        [12])[0]])
    sealed.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(CodecKeyError, match="does not authenticate"):
        await codec.decode([sealed])


@pytest.mark.parametrize("text, error", [
    ("", "no codec key"),
    ("k1", "key-id:base64-key"),
    ("k1:not base64!", "not base64"),
    (f"k1:{base64.b64encode(b'short').decode()}", "32 bytes"),
    (f"{TEST_KEY},{TEST_KEY}", "given twice"),
    (f"bad id:{TEST_KEY.split(':')[1]}", "key-id:base64-key"),
])
def test_codec_key_settings_are_checked(text: str, error: str) -> None:
    with pytest.raises(CodecKeyError, match=error):
        parse_keys(text)


def test_codec_keys_come_from_settings_or_a_local_key_file(tmp_path: Path) -> None:
    configured = Settings(_env_file=None, data_dir=tmp_path, codec_keys=ROTATED)  # type: ignore[call-arg]
    assert [k.key_id for k in Keyring.from_settings(configured).keys] == ["test-2027-rotated", "test-2026-11"]
    assert not local_key_file(configured).exists()
    local = Settings(_env_file=None, data_dir=tmp_path / "fresh", codec_keys=None)  # type: ignore[call-arg]
    first = keys_text(local)
    assert local_key_file(local).stat().st_mode & 0o777 == 0o600
    assert keys_text(local) == first and Keyring.from_settings(local).current == "local-1"
    assert repr(Keyring.from_settings(local).keys[0]) == "CodecKey(key_id='local-1')"


@pytest.mark.parametrize("name", ["quote_to_cash_subscription", "quote_to_cash_compensated"])
async def test_codec_committed_history_replays_after_rotation_and_not_without_its_key(name: str) -> None:
    path = HISTORIES / f"{name}.json"
    history = WorkflowHistory.from_json(name, path.read_text())
    key_ids = {p.metadata.get(KEY_ID_METADATA) for e in history.events for p in _payloads_in(e, [])}
    assert key_ids == {b"test-2026-11"}
    rotated = Replayer(workflows=[QuoteToCashWorkflow], data_converter=data_converter(keyring=keyring_for_tests(
        ROTATED)))
    assert (await rotated.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None
    without = Replayer(workflows=[QuoteToCashWorkflow], data_converter=data_converter(keyring=keyring_for_tests(
        ROTATED_KEY)))
    assert (await without.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is not None


async def test_codec_running_workflow_continues_after_rotation(
    temporal_env: WorkflowEnvironment, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    target = temporal_env.client.service_client.config.target_host
    old_client = await Client.connect(target, namespace=temporal_env.client.namespace,
                                      data_converter=data_converter(keyring=keyring_for_tests(TEST_KEY)))
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(non_standard=True))
    handle = await start_quote_to_cash(old_client, flow_settings, deal_id)  # started before the rotation

    new_client = await Client.connect(target, namespace=temporal_env.client.namespace,
                                      data_converter=data_converter(keyring=keyring_for_tests(ROTATED)))
    async with open_connectors(flow_settings) as connectors, build_worker(new_client, flow_settings, connectors):
        rotated = new_client.get_workflow_handle_for(QuoteToCashWorkflow.run, handle.id)
        status = await eventually(lambda: rotated.query(QuoteToCashWorkflow.status),
                                  lambda s: s.stage is Stage.AWAITING_APPROVAL, what="awaiting approval")
        assert status.company.startswith("Acme ")  # read back through the new key
        history = await rotated.fetch_history()
        await rotated.terminate("test done")
    key_ids = [p.metadata.get(KEY_ID_METADATA) for e in history.events for p in _payloads_in(e, [])]
    assert key_ids[0] == b"test-2026-11"  # the input, written by the old client
    assert b"test-2027-rotated" in key_ids  # everything the rotated worker wrote
