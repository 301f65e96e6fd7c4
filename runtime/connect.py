"""One way to connect to Temporal: the SDK's environment configuration plus our data converter.

``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*`` and TOML
profiles (``TEMPORAL_CONFIG_FILE``, ``TEMPORAL_PROFILE``) all work as the SDK documents them; with
none set, it is the local dev server on ``localhost:7233``, namespace ``default``.
"""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from observability.tracing import client_interceptors
from settings import Settings
from stores.codec import EncryptionCodec, Keyring


def data_converter(settings: Settings | None = None, *, keyring: Keyring | None = None) -> DataConverter:
    """The converter of every client, worker, test environment and replayer.

    Pydantic payloads, encrypted by :class:`~stores.codec.EncryptionCodec` with the codec keys of
    ``settings`` (or ``keyring``, one of them required): history payloads, memo, user metadata (summaries,
    details) and, with encoded common attributes, failure messages and stack traces. Search attributes
    cannot be encrypted (the server indexes them), so they carry no PII or prices.
    """
    if keyring is None:
        if settings is None:
            raise TypeError("data_converter needs the settings (or a keyring) of the codec keys")
        keyring = Keyring.from_settings(settings)
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keyring),
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client from the environment configuration, with our data converter (and, when tracing is on, the
    tracing interceptor; ``runtime``: the worker's, exporting the SDK's metrics)."""
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    config.setdefault("namespace", "default")
    return await Client.connect(**config, data_converter=data_converter(settings), interceptors=client_interceptors(),
                                runtime=runtime)
