"""Deals seeded in the HubSpot emulator through its ``/_sandbox/seed/deal`` act, as a salesperson would
leave them in the CRM."""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.hubspot.seed import LINES_BY_MODEL, DealSpec, Line
from tests.helpers.servers import SandboxHandle

__all__ = ["LINES_BY_MODEL", "DealSpec", "Line", "deal_properties", "edit_deal", "seed_deal"]


def seed_deal(hubspot: SandboxHandle, spec: DealSpec | None = None) -> str:
    """Create the deal with its company, contact and lines; returns the HubSpot deal ID."""
    response = hubspot.post_control("seed/deal", (spec or DealSpec()).payload())
    return str(response.json()["dealId"])


def deal_properties(hubspot: SandboxHandle, deal_id: str) -> dict[str, Any]:
    """Every property of the deal as the CRM now holds it (write-backs included)."""
    response = httpx.get(f"{hubspot.base_url}/_sandbox/deals/{deal_id}", timeout=10)
    response.raise_for_status()
    return dict(response.json()["properties"])


def edit_deal(hubspot: SandboxHandle, deal_id: str, properties: dict[str, str]) -> None:
    """A salesperson fixes the deal in the CRM."""
    response = httpx.patch(f"{hubspot.base_url}/_sandbox/deals/{deal_id}", json={"properties": properties},
                           timeout=10)
    response.raise_for_status()
