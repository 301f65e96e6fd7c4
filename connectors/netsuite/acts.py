"""A bookkeeper in NetSuite, through its emulator (:class:`connectors.acts.ErpActs`): what the account holds per
subsidiary, bulk imports of receivables, and the two acts people do in NetSuite's UI: recording a payment
against an invoice and editing a project's budget."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connectors.acts import EmulatorControls, MilestoneAccepted, ReceivableSeen, RecordSource
from connectors.netsuite import mapping
from connectors.netsuite.spec import NetSuiteSettings
from connectors.netsuite.tba import TbaAuth

if TYPE_CHECKING:  # pragma: no cover
    from settings import Settings


class NetSuiteActs:
    """:class:`connectors.acts.ErpActs` for NetSuite."""

    def __init__(self, controls: EmulatorControls, config: NetSuiteSettings, settings: Settings) -> None:
        self.controls = controls
        self.config = config
        self.settings = settings
        self._auth = TbaAuth(account_id=config.account_id, consumer_key=config.consumer_key,
                             consumer_secret=config.consumer_secret, token_id=config.token_id,
                             token_secret=config.token_secret)

    def signed_headers(self, url: str, body: bytes) -> dict[str, str]:
        """NetSuite sends no webhooks; a request to it is signed with TBA."""
        return {"Authorization": self._auth.header_for("POST", url), "Content-Type": "application/json"}

    def customers_seen(self, records: RecordSource) -> Counter[tuple[str, str]]:
        return Counter((mapping.ref_id(doc, "subsidiary"), str(doc["externalId"]))
                       for _tenant, doc in records.records("customer") if doc.get("externalId"))

    def projects_seen(self, records: RecordSource) -> Counter[tuple[str, str]]:
        return Counter((mapping.ref_id(doc, "subsidiary"), str(doc["externalId"]))
                       for _tenant, doc in records.records("job") if doc.get("externalId"))

    def receivables(self, records: RecordSource) -> list[ReceivableSeen]:
        seen = []
        for _tenant, doc in records.records("invoice"):
            status = mapping.erp_status(doc)
            paid = Decimal(str(doc.get("total") or 0)) > 0 and not doc.get("voided") and any(
                True for _t, p in records.records("customerPayment")
                if str(doc["id"]) in [mapping.ref_id(i, "doc") for i in (p.get("apply") or {}).get("items") or []])
            seen.append(ReceivableSeen(
                tenant=mapping.ref_id(doc, "subsidiary"), reference=mapping.billing_id_of(doc.get("externalId")),
                status=status, paid=paid or status == "PAID", voided=bool(doc.get("voided")),
                total=Decimal(str(doc.get("total") or 0)),
                lines=tuple(Decimal(str(li.get("amount") or 0)) for li in (doc.get("item") or {}).get("items") or []
                            if mapping.ref_id(li, "item") != self.config.tax_item_id)))
        return seen

    def payments_per_invoice(self, records: RecordSource) -> Counter[str]:
        return Counter(mapping.ref_id(i, "doc") for _t, doc in records.records("customerPayment")
                       for i in (doc.get("apply") or {}).get("items") or [] if i.get("apply"))

    def credit_notes_seen(self, records: RecordSource) -> Counter[str]:
        return Counter(str(doc["externalId"]) for _t, doc in records.records("creditMemo") if doc.get("externalId"))

    async def _put(self, record_type: str, external_id: str, body: dict[str, Any]) -> str:
        url = f"{self.controls.base_url}/services/rest/record/v1/{record_type}/eid:{external_id}"
        response = await self.controls.http.put(url, content=mapping.dumps(body).encode(), headers={
            "Authorization": self._auth.header_for("PUT", url), "Content-Type": "application/json"})
        response.raise_for_status()
        return response.headers["Location"].rsplit("/", 1)[-1]

    async def import_invoices(self, tenant_id: str, invoices: list[tuple[Any, str]]) -> dict[str, str]:
        currency_ids = {k.upper(): v for k, v in self.config.currency_ids.items()}
        made: dict[str, str] = {}
        for invoice, customer in invoices:
            body = mapping.invoice_to_netsuite(invoice, customer_id=customer, subsidiary=tenant_id,
                                               currency_id=currency_ids[invoice.currency.upper()],
                                               item_id=self.config.item_id, tax_item_id=self.config.tax_item_id)
            made[invoice.billing_id] = await self._put("invoice", invoice.billing_id, body)
        return made

    async def import_payments(self, tenant_id: str, payments: list[tuple[str, Decimal, str]]) -> None:
        for invoice_id, amount, _reference in payments:
            await self.record_payment(invoice_id, amount)

    async def record_payment(self, invoice_id: str, amount: Decimal, *, on: str | None = None) -> dict[str, Any]:
        """A person records a payment against an invoice in NetSuite (no external ID)."""
        return dict(await self.controls.control("acts/payment", {"invoiceId": invoice_id, "amount": str(amount),
                                                                 "tranDate": on}))

    async def edit_project_budget(self, project_id: str, budget: Decimal) -> dict[str, Any]:
        """A person edits a project's budget (``jobPrice``) in NetSuite."""
        return dict(await self.controls.control("acts/project-budget", {"projectId": project_id,
                                                                        "jobPrice": str(budget)}))

    async def accept_milestone(self, project: str, milestone: str, *, accepted_by: str) -> MilestoneAccepted:
        """A project manager marks the milestone's project task Completed (our project code or the job's ID)."""
        done = await self.controls.control("acts/task-complete", {"projectId": project, "milestone": milestone,
                                                                 "acceptedBy": accepted_by})
        return MilestoneAccepted(project_id=str(done["job"]), task_id=str(done["id"]), task=str(done["title"]),
                                 status=str(done["status"]["refName"]), accepted_by=accepted_by)


def create_acts(controls: EmulatorControls, config: NetSuiteSettings, settings: Settings) -> NetSuiteActs:
    return NetSuiteActs(controls, config, settings)


__all__ = ["NetSuiteActs", "create_acts"]
