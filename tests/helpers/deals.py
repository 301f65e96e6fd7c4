"""Deals seeded in the HubSpot emulator through its ``/_sandbox/seed/deal`` act, as a salesperson would
leave them in the CRM."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from connectors.acts import LINES_BY_MODEL, DealDraft
from connectors.acts import DealLineDraft as Line
from connectors.hubspot.acts import seed_payload
from tests.helpers.servers import SandboxHandle


@dataclass
class DealSpec(DealDraft):
    """A deal as the HubSpot emulator's seed act takes it (at the approval stage unless told)."""

    stage: str | None = "contractsent"

    def payload(self) -> dict[str, Any]:
        return seed_payload(self, stage=self.stage or "contractsent")

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
