"""The CRM/ERP pairs the ledger and reconciliation tests run against (issues 25 and 26): the same cases, read back
through each vendor's acts (``connectors.acts.CrmActs`` / ``ErpActs``) so the assertions are the same for all.

A pair is chosen by settings alone, as a stack preset does: ``CRM_ADAPTER`` and US01's ``erp_adapter`` in the
entity table (EU01 and UK01 stay on Xero)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from canonical import Account
from canonical.keys import erp_contact_reference
from canonical.ownership import SystemRole
from connectors.acts import CrmActs, DealDraft, ErpActs, ReceivableSeen, Records, erp_acts, role_acts
from settings import Settings
from tests.helpers.ledger import BillingAccount
from tests.helpers.servers import SandboxHandle

#: pair ID -> (CRM adapter, US01's ERP adapter); three pairs, not the full product
PAIRS: dict[str, tuple[str, str]] = {
    "hubspot-xero": ("hubspot", "xero"),
    "salesforce-xero": ("salesforce", "xero"),
    "hubspot-netsuite": ("hubspot", "netsuite"),
}
#: the pairs whose US01 ERP differs (the reconciliation cases need no second CRM)
ERP_PAIRS = ["hubspot-xero", "hubspot-netsuite"]
#: the pair the committed histories were recorded on
RECORDED_PAIR = "hubspot-xero"


def pair_settings(settings: Settings, pair: str) -> Settings:
    """``settings`` with the pair's CRM, and US01's books in the pair's ERP."""
    crm, erp = PAIRS[pair]
    entities = [e.model_copy(update={"erp_adapter": erp}) if e.code == "US01" else e for e in settings.legal_entities]
    return settings.model_copy(update={"crm_adapter": crm, "legal_entities": entities})


def pair_sandboxes(request: pytest.FixtureRequest, pair: str, sandboxes: dict[str, SandboxHandle]
                   ) -> dict[str, SandboxHandle]:
    """The session's emulators plus those of the pair's CRM and ERP (started on first use)."""
    crm, erp = PAIRS[pair]
    return {**sandboxes, **{v: request.getfixturevalue(f"{v}_sandbox") for v in (crm, erp) if v not in sandboxes}}


class EmulatorRecords:
    """A running emulator's stored records of every tenant (``connectors.acts.RecordSource``)."""

    def __init__(self, sandbox: SandboxHandle) -> None:
        self.sandbox = sandbox

    def records(self, kind: str) -> Records:
        return self.sandbox.records(kind)


@dataclass
class PairBooks:
    """One pair's CRM and US01 ERP as a person reads them: their acts over the emulators."""

    pair: str
    settings: Settings
    crm: CrmActs
    erp: ErpActs
    erp_records: EmulatorRecords

    @classmethod
    def of(cls, pair: str, settings: Settings, sandboxes: dict[str, SandboxHandle], http: Any,
           entity: str = "US01") -> PairBooks:
        crm_acts = role_acts(settings, SystemRole.CRM, http)
        books = erp_acts(settings, settings.entity(entity), http)
        return cls(pair=pair, settings=settings, crm=crm_acts, erp=books,
                   erp_records=EmulatorRecords(sandboxes[PAIRS[pair][1]]))

    @property
    def crm_name(self) -> str:
        return PAIRS[self.pair][0]

    @property
    def recorded(self) -> bool:
        """Whether this pair's runs may be saved as the committed histories."""
        return self.pair == RECORDED_PAIR

    async def account(self, billing: Any, *, entity: str = "US01") -> BillingAccount:
        """A CRM company with one deal, and the billing customer billing it from ``entity``."""
        seeded = await self.crm.seed_deal(DealDraft())
        customer_id = await billing.ensure_customer(
            Account(crm_id=seeded.company_id, name=f"Ledger Co {uuid.uuid4().hex[:6]}", country="US"), contact=None,
            reference=erp_contact_reference(self.crm_name, seeded.company_id, entity), legal_entity=entity,
            idempotency_key=f"test-{uuid.uuid4()}")
        return BillingAccount(company_id=seeded.company_id, deal_id=seeded.deal_id, customer_id=customer_id,
                              entity=entity)

    def contact_reference(self, account: BillingAccount) -> str:
        return erp_contact_reference(self.crm_name, account.company_id, account.entity)

    def receivables(self, invoice_id: str) -> list[ReceivableSeen]:
        """The ERP's invoices carrying billing's ``invoice_id``."""
        return [r for r in self.erp.receivables(self.erp_records) if r.reference == invoice_id]

    def credit_notes(self, credit_note_id: str) -> int:
        """How many credit notes the ERP holds for billing's ``credit_note_id``."""
        return self.erp.credit_notes_seen(self.erp_records)[credit_note_id]

    def payments(self, erp_invoice_id: str) -> int:
        return self.erp.payments_per_invoice(self.erp_records)[erp_invoice_id]

    async def figures(self, company_id: str, currency: str = "USD") -> tuple[Decimal | None, Decimal | None]:
        """The CRM company's billed and paid figures (``None`` while unwritten)."""
        billed, paid = await self.crm.company_figures(company_id, currency)
        return (None if billed in (None, "") else Decimal(str(billed)),
                None if paid in (None, "") else Decimal(str(paid)))
