"""A sales rep in Salesforce, through the emulator's ``/_sandbox/`` controls (:class:`connectors.acts.CrmActs`)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from connectors.acts import DealDraft, DealLineDraft, EmulatorControls, RecordSource, SeededDeal, StageMove
from connectors.salesforce.ids import RECORD_ID, to_18
from connectors.salesforce.mapping import WRITEBACK_FIELDS, figure_field
from connectors.salesforce.spec import SalesforceSettings

if TYPE_CHECKING:  # pragma: no cover
    from settings import Settings

#: neutral deal field -> Opportunity field (other names are taken as Salesforce's own)
DEAL_FIELDS = {
    "region": "Revops_Region__c", "legal_entity": "Revops_Legal_Entity__c", "start_date": "Revops_Start_Date__c",
    "end_date": "Revops_End_Date__c", "payment_terms": "Revops_Payment_Terms_Days__c", "currency": "CurrencyIsoCode",
    "billing_model": "Revops_Billing_Model__c", "owner": "OwnerId", "name": "Name",
}
_FREQUENCIES = {"monthly": "Monthly", "quarterly": "Quarterly", "annually": "Annually"}


def line_fields(line: DealLineDraft) -> dict[str, Any]:
    fields: dict[str, Any] = {"ProductCode": line.sku, "ProductName": line.name,
                              "Quantity": line.quantity, "UnitPrice": line.price, "Discount": line.discount}
    if line.model:
        fields["Revops_Billing_Model__c"] = line.model
    if line.frequency:
        fields["Revops_Billing_Interval__c"] = _FREQUENCIES.get(line.frequency, line.frequency)
    if line.entity:
        fields["Revops_Legal_Entity__c"] = line.entity
    return fields


def seed_payload(draft: DealDraft, *, stage: str) -> dict[str, Any]:
    """The body of the emulator's ``POST /_sandbox/seed/deal`` (Salesforce field names)."""
    opportunity: dict[str, Any] = {"Name": draft.name, "StageName": draft.stage or stage,
                                   "CloseDate": draft.start_date or "2027-01-01"}
    optional = {"CurrencyIsoCode": draft.currency, "Revops_Region__c": draft.region,
                "Revops_Legal_Entity__c": draft.entity, "Revops_Start_Date__c": draft.start_date,
                "Revops_End_Date__c": draft.end_date, "Revops_Payment_Terms_Days__c": draft.payment_terms,
                "Revops_Billing_Model__c": draft.model, "OwnerId": draft.owner}
    opportunity.update({k: v for k, v in optional.items() if v})
    opportunity["Revops_Non_Standard_Terms__c"] = draft.non_standard
    contacts = [{"FirstName": "Bea", "LastName": "Biller", "Email": f"billing@{draft.domain}",
                 "Role": "Billing Contact"}] if draft.with_contact else []
    return {"opportunity": opportunity,
            "account": {"Name": draft.company, "Website": draft.domain, "BillingCountry": draft.country},
            "contacts": contacts, "line_items": [line_fields(line) for line in draft.deal_lines()]}


class SalesforceActs:
    """:class:`connectors.acts.CrmActs` for Salesforce."""

    def __init__(self, controls: EmulatorControls, config: SalesforceSettings, settings: Settings) -> None:
        self.controls = controls
        self.config = config
        self.settings = settings

    @property
    def approval_stage(self) -> str:
        return self.config.approval_stage

    @property
    def closed_won_stage(self) -> str:
        return self.config.closed_won_stage

    def delivery_url(self, url: str) -> str:
        """``url`` as Salesforce's outbound message endpoint has it: the shared secret in its query."""
        separator = "&" if "?" in url else "?"
        return f"{url}{separator}{urlencode({self.config.outbound_secret_param: self.config.outbound_secret})}"

    def signed_headers(self, url: str, body: bytes) -> dict[str, str]:
        """Outbound Messages carry no signature (the secret is in the URL: :meth:`delivery_url`)."""
        return {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}

    def deal_id(self, text: str) -> str:
        bare = text.rsplit("-", 1)[-1] if text.startswith("q2c-") else text
        try:
            return to_18(bare)
        except ValueError:
            return bare

    def is_deal_id(self, text: str) -> bool:
        bare = self.deal_id(text)
        return bool(RECORD_ID.fullmatch(bare)) and bare.startswith("006")

    async def seed_deal(self, draft: DealDraft) -> SeededDeal:
        seeded = await self.controls.control("seed/deal", seed_payload(draft, stage=self.approval_stage))
        return SeededDeal(deal_id=str(seeded["opportunityId"]), company_id=str(seeded.get("accountId") or ""))

    async def move_deal(self, deal_id: str, stage: str | None = None) -> StageMove:
        stage = stage or self.closed_won_stage
        moved = await self.controls.control(f"opportunities/{self.deal_id(deal_id)}/stage", {"stage": stage})
        return StageMove(deal_id=self.deal_id(deal_id), stage=stage, changed=bool(moved.get("changed")))

    async def edit_deal(self, deal_id: str, fields: dict[str, str]) -> dict[str, Any]:
        values = {DEAL_FIELDS.get(name, name): value for name, value in fields.items()}
        return dict(await self.controls.control(f"opportunities/{self.deal_id(deal_id)}", {"fields": values},
                                                method="PATCH"))

    async def written_back(self, deal_id: str, field: str) -> str:
        record = await self.controls.control(f"opportunities/{self.deal_id(deal_id)}", method="GET")
        return str(record.get(WRITEBACK_FIELDS[field]) or "")

    async def company_figures(self, company_id: str, currency: str) -> tuple[str | None, str | None]:
        record = await self.controls.control(f"records/Account/{company_id}", method="GET")
        billed, paid = record.get(figure_field("billed", currency)), record.get(figure_field("paid", currency))
        return (None if billed is None else str(billed)), (None if paid is None else str(paid))

    def deals_seen(self, records: RecordSource) -> Counter[str]:
        return Counter(str(doc["Id"]) for _, doc in records.records("sf:Opportunity"))

    def companies_seen(self, records: RecordSource) -> Counter[str]:
        return Counter(str(doc.get("Name")) for _, doc in records.records("sf:Account"))


def create_acts(controls: EmulatorControls, config: SalesforceSettings, settings: Settings) -> SalesforceActs:
    return SalesforceActs(controls, config, settings)


__all__ = ["DEAL_FIELDS", "SalesforceActs", "create_acts", "line_fields", "seed_payload"]
