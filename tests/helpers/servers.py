"""Vendor emulators served on loopback for tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from sandbox.kit import SandboxControl, Store
from sandbox.serve import RunningApp


@dataclass
class SandboxHandle:
    """One running emulator: its URL, its state, and its control API."""

    vendor: str
    running: RunningApp

    @property
    def base_url(self) -> str:
        return self.running.base_url

    @property
    def control(self) -> SandboxControl:
        return self.running.app.state.control  # type: ignore[no-any-return]

    @property
    def store(self) -> Store:
        return self.running.app.state.store  # type: ignore[no-any-return]

    def post_control(self, path: str, json: Any = None) -> httpx.Response:
        response = httpx.post(f"{self.base_url}/_sandbox/{path}", json=json, timeout=10)
        response.raise_for_status()
        return response

    @contextmanager
    def faults(self, **settings: Any) -> Iterator[None]:
        """Inject faults through the real control API for the duration of a block."""
        self.post_control("faults", settings)
        try:
            yield
        finally:
            httpx.delete(f"{self.base_url}/_sandbox/faults", timeout=10).raise_for_status()
