"""A salesperson in HubSpot, through the emulator's ``/_sandbox/`` controls (:class:`connectors.acts.CrmActs`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from connectors.acts import DealDraft, DealLineDraft, EmulatorControls, RecordSource, SeededDeal, StageMove
from connectors.hubspot.mapping import WRITEBACK_PROPERTIES, figure_property
from connectors.hubspot.spec import HubSpotSettings
from connectors.hubspot.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signing_uri

if TYPE_CHECKING:  # pragma: no cover
    from settings import Settings

#: neutral deal field -> HubSpot deal property (other names are taken as HubSpot's own)
DEAL_FIELD_PROPERTIES = {
    "region": "revops_region", "legal_entity": "revops_legal_entity", "start_date": "revops_start_date",
    "end_date": "revops_end_date", "payment_terms": "revops_payment_terms_days", "currency": "deal_currency_code",
    "billing_model": "revops_billing_model", "owner": "hubspot_owner_id", "name": "dealname",
}


def line_properties(line: DealLineDraft) -> dict[str, str]:
    props = {"hs_sku": line.sku, "name": line.name, "quantity": line.quantity, "price": line.price,
             "hs_discount_percentage": line.discount}
    if line.model:
        props["revops_billing_model"] = line.model
    if line.frequency:
        props["recurringbillingfrequency"] = line.frequency
    if line.entity:
        props["revops_legal_entity"] = line.entity
    return props


def seed_payload(draft: DealDraft, *, stage: str) -> dict[str, Any]:
    """The body of the emulator's ``POST /_sandbox/seed/deal`` (HubSpot property names)."""
    deal: dict[str, str] = {"dealname": draft.name, "dealstage": draft.stage or stage, "pipeline": "default"}
    optional = {"deal_currency_code": draft.currency, "revops_region": draft.region,
                "revops_legal_entity": draft.entity, "revops_start_date": draft.start_date,
                "revops_end_date": draft.end_date, "revops_payment_terms_days": draft.payment_terms,
                "revops_billing_model": draft.model, "hubspot_owner_id": draft.owner}
    deal.update({k: v for k, v in optional.items() if v})
    deal["revops_non_standard_terms"] = "true" if draft.non_standard else "false"
    contacts = [{"firstname": "Bea", "lastname": "Biller", "email": f"billing@{draft.domain}",
                 "revops_contact_role": "billing"}] if draft.with_contact else []
    return {"deal": deal, "company": {"name": draft.company, "domain": draft.domain, "country": draft.country},
            "contacts": contacts, "line_items": [line_properties(line) for line in draft.deal_lines()]}


class HubSpotActs:
    """:class:`connectors.acts.CrmActs` for HubSpot."""

    def __init__(self, controls: EmulatorControls, config: HubSpotSettings, settings: Settings) -> None:
        self.controls = controls
        self.config = config
        self.settings = settings

    @property
    def approval_stage(self) -> str:
        return self.config.approval_stage

    @property
    def closed_won_stage(self) -> str:
        return self.config.closed_won_stage

    def signed_headers(self, url: str, body: bytes) -> dict[str, str]:
        """``X-HubSpot-Signature-v3`` over method, URI, body and timestamp."""
        timestamp = str(int(time.time() * 1000))
        source = b"POST" + signing_uri(url).encode() + body + timestamp.encode()
        digest = hmac.new(self.config.client_secret.encode(), source, hashlib.sha256).digest()
        return {SIGNATURE_HEADER: base64.b64encode(digest).decode(), TIMESTAMP_HEADER: timestamp,
                "Content-Type": "application/json"}

    def deal_id(self, text: str) -> str:
        return text.rsplit("-", 1)[-1] if text.startswith("q2c-") else text

    def is_deal_id(self, text: str) -> bool:
        return self.deal_id(text).isdigit()

    async def seed_deal(self, draft: DealDraft) -> SeededDeal:
        seeded = await self.controls.control("seed/deal", seed_payload(draft, stage=self.approval_stage))
        return SeededDeal(deal_id=str(seeded["dealId"]), company_id=str(seeded.get("companyId") or ""))

    async def move_deal(self, deal_id: str, stage: str | None = None) -> StageMove:
        stage = stage or self.closed_won_stage
        moved = await self.controls.control(f"deals/{self.deal_id(deal_id)}/stage", {"stage": stage})
        return StageMove(deal_id=self.deal_id(deal_id), stage=stage, changed=bool(moved.get("changed")))

    async def edit_deal(self, deal_id: str, fields: dict[str, str]) -> dict[str, Any]:
        props = {DEAL_FIELD_PROPERTIES.get(name, name): value for name, value in fields.items()}
        return dict(await self.controls.control(f"deals/{self.deal_id(deal_id)}", {"properties": props},
                                                method="PATCH"))

    async def written_back(self, deal_id: str, field: str) -> str:
        deal = await self.controls.control(f"deals/{self.deal_id(deal_id)}", method="GET")
        return str((deal.get("properties") or {}).get(WRITEBACK_PROPERTIES[field]) or "")

    async def company_figures(self, company_id: str, currency: str) -> tuple[str | None, str | None]:
        company = await self.controls.control(f"objects/companies/{company_id}", method="GET")
        props = company.get("properties") or {}
        return props.get(figure_property("billed", currency)), props.get(figure_property("paid", currency))

    def deals_seen(self, records: RecordSource) -> Counter[str]:
        return Counter(str(doc["id"]) for _, doc in records.records("hs:deals"))

    def companies_seen(self, records: RecordSource) -> Counter[str]:
        return Counter(str((doc.get("properties") or {}).get("name")) for _, doc in records.records("hs:companies"))


def create_acts(controls: EmulatorControls, config: HubSpotSettings, settings: Settings) -> HubSpotActs:
    return HubSpotActs(controls, config, settings)


__all__ = ["DEAL_FIELD_PROPERTIES", "HubSpotActs", "create_acts", "line_properties", "seed_payload"]
