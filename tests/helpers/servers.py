"""Vendor emulators served on loopback for tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlmodel import Session, select

from connectors.registry import default_registry
from devstack.emulators import build_emulator
from sandbox.kit import SandboxControl, SandboxRecord, Store
from sandbox.serve import RunningApp
from settings import Settings


def _spec(settings: Settings, vendor: str) -> Any:
    return next(s for s in default_registry(settings).all() if s.name == vendor)


def vendor_settings(settings: Settings, vendor: str) -> Any:
    """The adapter ``vendor``'s own settings (its env prefix, then ``settings.adapter_settings``)."""
    return _spec(settings, vendor).load(settings)


def build_app(vendor: str, settings: Settings, *, database_url: str = "sqlite://") -> Any:
    """The emulator of ``vendor``, configured as the adapter ``settings`` builds is."""
    return build_emulator(_spec(settings, vendor), settings, database_url=database_url)


def emulator_adapter_settings(ports: dict[str, int], **extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``Settings.adapter_settings`` pointing each vendor's adapter at its emulator on loopback ``ports``."""
    return {vendor: {"base_url": f"http://127.0.0.1:{port}", "sandbox_port": port, **extra.get(vendor, {})}
            for vendor, port in ports.items()}


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

    def records(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """Every tenant's ``kind`` records, oldest first: a :class:`connectors.acts.RecordSource` for the acts'
        census (how many contracts, customers... the emulator holds for a key)."""
        with Session(self.store.engine) as session:
            rows = session.exec(select(SandboxRecord).where(SandboxRecord.kind == kind)
                                .order_by(SandboxRecord.seq)).all()  # type: ignore[arg-type]
        return [(row.tenant, json.loads(row.data)) for row in rows]

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


def with_vendor(settings: Settings, vendor: str, **fields: Any) -> Settings:
    """``settings`` with some of ``vendor``'s own settings changed (a wrong secret, another URL)."""
    adapters = {name: dict(values) for name, values in settings.adapter_settings.items()}
    adapters.setdefault(vendor, {}).update(fields)
    return settings.model_copy(update={"adapter_settings": adapters})


def stripe_auth(settings: Settings) -> dict[str, str]:
    """The secret-key header of the Stripe adapter ``settings`` configure."""
    return {"Authorization": f"Bearer {vendor_settings(settings, 'stripe').api_key}"}


def hubspot_auth(settings: Settings) -> dict[str, str]:
    """The private-app token header of the HubSpot adapter ``settings`` configure."""
    return {"Authorization": f"Bearer {vendor_settings(settings, 'hubspot').access_token}"}
