"""The stack's Temporal dev server starts whatever our OpenTelemetry settings say (``make bench --only telemetry``
ran the server with ``OTEL_TRACES_EXPORTER=discard``, which it refused: the benchmark never produced a figure)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devstack.stack import dev_server_env, wait_for_port
from runtime.devserver import dev_server_path
from sandbox.serve import free_port


def start_dev_server(env: dict[str, str], data_dir: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    process = subprocess.Popen(
        [dev_server_path(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--headless",
         "--db-filename", str(data_dir / "temporal.sqlite"), "--log-level", "error"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, name="Temporal dev server", process=process)
    except RuntimeError:
        process.wait(timeout=10)
    return process


def test_dev_server_env_leaves_out_only_the_opentelemetry_variables() -> None:
    env = {"OTEL_TRACES_EXPORTER": "discard", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x", "PATH": "/bin",
           "TEMPORAL_ADDRESS": "127.0.0.1:7233"}
    assert dev_server_env(env) == {"PATH": "/bin", "TEMPORAL_ADDRESS": "127.0.0.1:7233"}


def test_dev_server_starts_with_our_traces_exporter_set(tmp_path: Path) -> None:
    ours = {**os.environ, "OTEL_TRACES_EXPORTER": "discard"}
    refused = start_dev_server(ours, tmp_path)
    assert refused.returncode not in (None, 0), "the server took OTEL_TRACES_EXPORTER=discard: the filter is moot"
    (tmp_path / "filtered").mkdir()
    process = start_dev_server(dev_server_env(ours), tmp_path / "filtered")
    try:
        assert process.poll() is None, "the dev server exited with the stack's environment"
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=20)


pytestmark = pytest.mark.timeout(120)
