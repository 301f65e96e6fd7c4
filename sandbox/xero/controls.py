"""``/_sandbox`` acts on the Xero emulator: the organisations, a contact entered by a person, revoking
tokens, and Xero's intent-to-receive check of the webhook targets."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field

from sandbox.xero import wire
from sandbox.xero.accounting import Accounting
from sandbox.xero.core import XeroState, entropy


class SeedContact(BaseModel):
    """``POST /_sandbox/contacts``: a contact as if someone had entered it in Xero."""

    tenantId: str  # noqa: N815 - Xero's spelling
    ContactID: str | None = Field(default=None, description="set to edit an existing contact instead")
    Name: str | None = None
    ContactNumber: str | None = None
    EmailAddress: str | None = None
    TaxNumber: str | None = None
    Country: str | None = Field(default=None, description="ISO country of its postal (POBOX) address")
    PaymentTermsDays: int | None = Field(default=None, ge=0, description="Sales terms, days after bill date")
    ContactStatus: str | None = None


class AcceptMilestone(BaseModel):
    """``POST /_sandbox/milestones/accept``: a project manager records that the customer accepted a fixed-price
    milestone (the task named ``<code> ...``): Xero Projects keeps no acceptance, so the task is locked."""

    tenantId: str  # noqa: N815 - Xero's spelling
    projectId: str  # noqa: N815
    milestone: str = Field(min_length=1, description="the milestone code the task's name starts with, or its taskId")
    acceptedBy: str = Field(min_length=1)  # noqa: N815


class Controls:
    """The ``/_sandbox`` routes over the shared :class:`XeroState` (contacts are written through ``books``)."""

    def __init__(self, state: XeroState, books: Accounting) -> None:
        self.state = state
        self.books = books

    def register(self, app: FastAPI) -> None:
        """Add the routes to ``app``."""
        app.get("/_sandbox/tenants")(self.tenants)
        app.post("/_sandbox/contacts")(self.seed_contact)
        app.post("/_sandbox/milestones/accept")(self.accept_milestone)
        app.post("/_sandbox/tokens/revoke")(self.revoke_tokens)
        app.post("/_sandbox/webhooks/intent")(self.intent_to_receive)

    async def tenants(self) -> dict[str, Any]:
        """The organisations, with the users who may log time and the chart of accounts."""
        state = self.state
        return {"tenants": [
            {"tenantId": tid, "tenantName": e.name, "legalEntity": e.code, "currency": e.currency,
             "users": state.users(tid), "accounts": [{k: a[k] for k in ("Code", "Name", "Type")}
                                                     for a in state.accounts(tid)]}
            for tid, e in state.tenants.items()]}

    async def seed_contact(self, seed: SeedContact, request: Request) -> Response:
        """Create (or, with ``ContactID``, edit) a contact as a person would in Xero."""
        tenant = seed.tenantId.lower()
        if tenant not in self.state.tenants:
            return wire.json_response({"error": f"unknown tenant {seed.tenantId}"}, 404)
        element: dict[str, Any] = {k: v for k, v in seed.model_dump(
            exclude={"tenantId", "PaymentTermsDays", "Country"}).items() if v is not None}
        if seed.Country:
            element["Addresses"] = [{"AddressType": "POBOX", "Country": seed.Country}]
        if seed.PaymentTermsDays is not None:
            element["PaymentTerms"] = {"Sales": {"Day": seed.PaymentTermsDays, "Type": "DAYSAFTERBILLDATE"}}
        saved, failure = self.books.write_contacts(request, tenant, [element])
        return failure if failure is not None else wire.json_response(wire.render(saved[0]), 201)

    async def accept_milestone(self, act: AcceptMilestone) -> Response:
        """Lock the project's fixed-price task of the milestone (already locked or invoiced: unchanged)."""
        tenant, project_id, wanted = act.tenantId.lower(), act.projectId.lower(), act.milestone.lower()
        store = self.state.store
        if tenant not in self.state.tenants or store.get("project", project_id, tenant=tenant) is None:
            return wire.json_response({"error": f"no project {act.projectId} in tenant {act.tenantId}"}, 404)
        tasks = store.list("task", tenant=tenant, where=lambda t: t["projectId"] == project_id
                           and t["chargeType"] == "FIXED" and (t["taskId"] == wanted or str(
                               t["name"]).lower().split(" ", 1)[0] == wanted))
        if not tasks:
            return wire.json_response({"error": f"project {act.projectId} has no fixed-price task for milestone "
                                                f"{act.milestone}"}, 404)
        task = tasks[0]
        if task["status"] == "ACTIVE":
            task["status"] = "LOCKED"
            store.put("task", task["taskId"], task, tenant=tenant)
        return wire.json_response({"taskId": task["taskId"], "name": task["name"], "status": task["status"],
                                   "acceptedBy": act.acceptedBy})

    async def revoke_tokens(self) -> dict[str, int]:
        """Forget every issued access token (the next API call gets a 401)."""
        count = len(self.state.tokens)
        self.state.tokens.clear()
        return {"revoked": count}

    async def intent_to_receive(self) -> dict[str, Any]:
        """Xero's intent-to-receive check: to every target, one correctly and one wrongly signed
        empty-events payload; the target passes when it answers 200 and 401 respectively."""
        state = self.state
        results = []
        async with httpx.AsyncClient(timeout=5) as client:
            for target in state.control.webhooks.targets:
                if target.drop:
                    continue
                for url in target.urls:  # every replica of the receiver must pass
                    for signed_well in (True, False):
                        body = wire.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                                           "entropy": entropy()}).encode()
                        signature = state.sign(body) if signed_well else state.sign(body, b"not-the-webhook-key")
                        try:
                            response = await client.post(url, content=body, headers={
                                "Content-Type": "application/json", "x-xero-signature": signature})
                            status: int | str = response.status_code
                        except httpx.HTTPError as exc:
                            status = f"error: {exc.__class__.__name__}"
                        expected = 200 if signed_well else 401
                        results.append({"url": url, "signature": "valid" if signed_well else "invalid",
                                        "status": status, "expected": expected, "ok": status == expected})
                        state.control.webhooks.deliveries.append(
                            {"url": url, "body": body.decode(), "status": status, "attempts": 1,
                             "dropped": False, "intent": True})
        return {"results": results, "intent_ok": bool(results) and all(r["ok"] for r in results)}
