"""Prism (``@stoplight/prism-cli``, installed by ``make test`` under ``tools/prism``) as a validating
proxy: requests a connector sends and responses an emulator returns are checked against the vendor's
published spec in ``../shared/vendor-specs``. A request the spec rejects comes back 422 (or 401/400)
from Prism; a response that breaks the spec carries an ``sl-violations`` header.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PRISM = ROOT / "tools" / "prism" / "node_modules" / ".bin" / "prism"
SPECS = Path(os.environ.get("REVOPS_VENDOR_SPECS", ROOT.parent / "shared" / "vendor-specs")).resolve()


def spec_path(relative: str) -> Path:
    """A vendor spec by its path under ``shared/vendor-specs`` (skips the test when absent)."""
    path = SPECS / relative
    if not path.exists():
        pytest.fail(f"vendor spec {path} is missing: shared/vendor-specs must sit beside the repo")
    return path


@dataclass
class PrismProxy:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def prism_proxy(spec: Path, upstream: str, *, log_dir: Path, startup_timeout: float = 120) -> Iterator[PrismProxy]:
    """``prism proxy <spec> <upstream> --errors`` on a free loopback port, stopped on exit."""
    if not PRISM.exists():
        pytest.fail(f"{PRISM} is missing: run `make test` (it installs Prism from npm)")
    port = _free_port()
    log_path = log_dir / f"prism-{spec.stem}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(PRISM), "proxy", str(spec), upstream, "--errors", "-h", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    proxy = PrismProxy(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while "Prism is listening" not in proxy.log():
            if process.poll() is not None:
                raise RuntimeError(f"prism exited early:\n{proxy.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"prism did not start in {startup_timeout}s:\n{proxy.log()[-3000:]}")
            time.sleep(0.2)
        yield proxy
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def violations(response: httpx.Response) -> list[dict[str, object]]:
    """Spec violations Prism reported for a proxied response (empty when it conformed)."""
    raw = response.headers.get("sl-violations")
    return json.loads(raw) if raw else []
