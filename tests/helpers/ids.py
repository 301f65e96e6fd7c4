"""Workflow IDs as the default adapters build them (tests name the vendors; the product never does)."""

from __future__ import annotations

from canonical.keys import amendments_workflow_id, ledger_workflow_id, quote_to_cash_workflow_id
from canonical.systems import Systems
from connectors.registry import default_registry
from settings import Settings


def quote_to_cash_id(deal_id: str) -> str:
    return quote_to_cash_workflow_id("hubspot", deal_id)


def amendments_id(record_id: str) -> str:
    return amendments_workflow_id("ironclad", record_id)


def ledger_id(customer_id: str) -> str:
    return ledger_workflow_id("stripe", customer_id)


def default_systems() -> Systems:
    """The adapters' names the default settings choose (HubSpot, Ironclad, Stripe, Xero for every entity)."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return default_registry(settings).systems(settings)


SYSTEMS = default_systems()
