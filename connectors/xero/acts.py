"""A bookkeeper in Xero, through its emulator (:class:`connectors.acts.ErpActs`): what the ERP holds per tenant,
and bulk imports of receivables (what a month of ledger runs would have posted)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from canonical.books import EntityBooks
from canonical.keys import parse_project_code, time_task_name
from connectors.acts import EmulatorControls, MilestoneAccepted, ReceivableSeen, RecordSource, TimeLogged
from connectors.errors import NotFound, Rejected
from connectors.xero import mapping
from connectors.xero.spec import XeroSettings

if TYPE_CHECKING:  # pragma: no cover
    from settings import Settings

#: invoices or payments per PUT (Xero takes batches)
BATCH = 50


class XeroActs:
    """:class:`connectors.acts.ErpActs` for Xero."""

    def __init__(self, controls: EmulatorControls, config: XeroSettings, settings: Settings) -> None:
        self.controls = controls
        self.config = config
        self.settings = settings
        self._token = ""

    def signed_headers(self, url: str, body: bytes) -> dict[str, str]:
        """``x-xero-signature``: base64 HMAC-SHA256 of the body with the webhook key."""
        digest = hmac.new(self.config.webhook_key.encode(), body, hashlib.sha256).digest()
        return {"x-xero-signature": base64.b64encode(digest).decode(), "Content-Type": "application/json"}

    def customers_seen(self, records: RecordSource) -> Counter[tuple[str, str]]:
        return Counter((tenant, str(doc["ContactNumber"])) for tenant, doc in records.records("contact")
                       if doc.get("ContactNumber"))

    def projects_seen(self, records: RecordSource) -> Counter[tuple[str, str]]:
        found: Counter[tuple[str, str]] = Counter()
        for tenant, doc in records.records("project"):
            name = str(doc.get("name", ""))
            if name.startswith("[") and "]" in name:
                found[(tenant, name[1:name.index("]")])] += 1
        return found

    def receivables(self, records: RecordSource) -> list[ReceivableSeen]:
        return [ReceivableSeen(tenant=tenant, reference=str(doc.get("Reference")), status=str(doc.get("Status")),
                               paid=doc.get("Status") == "PAID", voided=doc.get("Status") == "VOIDED",
                               total=Decimal(str(doc.get("Total") or 0)),
                               lines=tuple(Decimal(str(line.get("LineAmount") or 0))
                                           for line in doc.get("LineItems") or []))
                for tenant, doc in records.records("invoice") if doc.get("Type") == "ACCREC"]

    def payments_per_invoice(self, records: RecordSource) -> Counter[str]:
        return Counter(str((doc.get("Invoice") or {}).get("InvoiceID")) for _, doc in records.records("payment"))

    def credit_notes_seen(self, records: RecordSource) -> Counter[str]:
        return Counter(str(doc.get("Reference")) for _, doc in records.records("credit_note")
                       if doc.get("Type") == "ACCRECCREDIT")

    async def _headers(self, tenant_id: str) -> dict[str, str]:
        if not self._token:
            answer = await self.controls.http.post(self.config.token_endpoint,
                                                   data={"grant_type": "client_credentials"},
                                                   auth=(self.config.client_id, self.config.client_secret))
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}", "xero-tenant-id": tenant_id,
                "Content-Type": "application/json", "Accept": "application/json"}

    async def _put(self, tenant_id: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.controls.call("PUT", f"/api.xro/2.0/{path}", content=mapping.dumps(body).encode(),
                                             headers=await self._headers(tenant_id)))

    async def _projects(self, method: str, tenant_id: str, path: str, body: Any = None,
                        params: dict[str, Any] | None = None) -> Any:
        """A call to the Projects API, as the person's Xero login would make it."""
        kwargs: dict[str, Any] = {"headers": await self._headers(tenant_id)}
        if body is not None:
            kwargs["content"] = mapping.dumps(body).encode()
        if params:
            kwargs["params"] = params
        return await self.controls.call(method, f"/projects.xro/2.0/{path}", **kwargs)

    async def _find_project(self, project: str) -> tuple[str, str]:
        """``(tenant, Xero project ID)`` of our project code (its entity's tenant) or of a Xero project ID."""
        parsed = parse_project_code(project)
        tenants = ([self.settings.entity(parsed.entity_code).erp_tenant_id] if parsed else
                   [e.erp_tenant_id for e in self.settings.legal_entities])
        for tenant in dict.fromkeys(tenants):
            page = await self._projects("GET", tenant, "Projects", params={"pageSize": 500})
            for doc in page.get("items") or []:
                if doc["projectId"] == project.lower() or str(doc.get("name", "")).startswith(
                        mapping.code_prefix(project)):
                    return tenant, str(doc["projectId"])
        raise NotFound(f"no project {project} in Xero", vendor="xero", status=404)

    async def log_time(self, project: str, *, hours: Decimal, user: str, task: str, day: date | None = None,
                       description: str | None = None) -> TimeLogged:
        """``POST /Projects/{id}/Time`` on the task named ``<task> time`` (a rate-card role) or ``task``."""
        minutes = int((hours * 60).to_integral_value())
        if minutes < 1:
            raise Rejected(f"log at least one minute, not {hours} h", vendor="xero", status=400)
        tenant, project_id = await self._find_project(project)
        tasks = (await self._projects("GET", tenant, f"Projects/{project_id}/Tasks",
                                      params={"pageSize": 500})).get("items") or []
        wanted = {time_task_name(task).lower(), task.lower()}
        found = [t for t in tasks if str(t["name"]).lower() in wanted or t["taskId"] == task.lower()]
        if not found:
            raise NotFound(f"project {project} has no task {task!r} (tasks: "
                           f"{', '.join(str(t['name']) for t in tasks) or 'none'})", vendor="xero", status=404)
        users = (await self._projects("GET", tenant, "ProjectsUsers")).get("items") or []
        who = [u for u in users if user.lower() in (str(u["userId"]).lower(), str(u.get("name", "")).lower(),
                                                    str(u.get("email", "")).lower())]
        if not who:
            raise NotFound(f"no Xero user {user!r} (users: {', '.join(str(u.get('email')) for u in users)})",
                           vendor="xero", status=404)
        day = day or datetime.now(UTC).date()
        entry = await self._projects("POST", tenant, f"Projects/{project_id}/Time", body={
            "userId": who[0]["userId"], "taskId": found[0]["taskId"], "dateUtc": mapping.utc_midnight(day),
            "duration": minutes, **({"description": description} if description else {})})
        return TimeLogged(entry_id=str(entry["timeEntryId"]), project_id=project_id, task=str(found[0]["name"]),
                          user=str(who[0].get("email") or who[0]["userId"]), minutes=minutes, day=day,
                          status=str(entry.get("status") or ""))

    async def accept_milestone(self, project: str, milestone: str, *, accepted_by: str) -> MilestoneAccepted:
        """A project manager locks the milestone's fixed-price task: Xero's record that the customer accepted it."""
        tenant, project_id = await self._find_project(project)
        done = await self.controls.control("milestones/accept", {
            "tenantId": tenant, "projectId": project_id, "milestone": milestone, "acceptedBy": accepted_by})
        return MilestoneAccepted(project_id=project_id, task_id=str(done["taskId"]), task=str(done["name"]),
                                 status=str(done["status"]), accepted_by=accepted_by)

    def _books(self, tenant_id: str) -> EntityBooks:
        """The books of the tenant's entity: a bookkeeper keys lines in by the same mapping."""
        entity = next(e.code for e in self.settings.legal_entities if e.erp_tenant_id == tenant_id)
        return self.settings.books_mapping.of(entity)

    async def import_invoices(self, tenant_id: str, invoices: list[tuple[Any, str]]) -> dict[str, str]:
        books = self._books(tenant_id)
        docs = [(inv, mapping.invoice_to_xero(inv, contact_id=contact, books=books)) for inv, contact in invoices]
        made: dict[str, str] = {}
        for start in range(0, len(docs), BATCH):
            chunk = docs[start:start + BATCH]
            body = await self._put(tenant_id, "Invoices", {"Invoices": [d for _, d in chunk]})
            for (inv, _), doc in zip(chunk, body["Invoices"], strict=True):
                made[inv.billing_id] = doc["InvoiceID"]
        return made

    async def import_payments(self, tenant_id: str, payments: list[tuple[str, Decimal, str]]) -> None:
        today = datetime.now(UTC).date().isoformat()
        currency = next(e.currency for e in self.settings.legal_entities if e.erp_tenant_id == tenant_id)
        bank = self._books(tenant_id).bank_account(currency)
        docs = [{"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": bank},
                 "Amount": amount, "Reference": reference, "Date": today}
                for invoice_id, amount, reference in payments]
        for start in range(0, len(docs), BATCH):
            await self._put(tenant_id, "Payments", {"Payments": docs[start:start + BATCH]})


def create_acts(controls: EmulatorControls, config: XeroSettings, settings: Settings) -> XeroActs:
    return XeroActs(controls, config, settings)


__all__ = ["XeroActs", "create_acts"]
