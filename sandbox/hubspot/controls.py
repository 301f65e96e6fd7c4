"""``/_sandbox`` acts that only a person in the HubSpot UI could do: seed a deal with its company, contacts
and line items, move a deal to a stage, edit a deal, and read all of a record's properties."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from sandbox.hubspot.core import HubSpotSandbox, json_object, properties_input, read_json
from sandbox.hubspot.crm import HubSpotError, object_type


class Controls:
    """The human acts over the shared :class:`HubSpotSandbox`."""

    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox
        self.portal = sandbox.portal

    def register(self, app: FastAPI) -> None:
        """Add the routes to ``app`` (no token: these are the person's, not the API's)."""
        app.post("/_sandbox/seed/deal")(self.seed_deal)
        app.post("/_sandbox/deals/{deal_id}/stage")(self.move_stage)
        app.patch("/_sandbox/deals/{deal_id}")(self.edit_deal)
        app.get("/_sandbox/deals/{deal_id}")(self.inspect_deal)
        app.get("/_sandbox/objects/{object_type_raw}/{object_id}")(self.inspect_object)

    async def seed_deal(self, request: Request) -> dict[str, Any]:
        """Create a deal with its company, contacts and line items, associated as HubSpot does."""
        portal = self.portal
        body = json_object(await read_json(request))
        deal_props = json_object(body.get("deal") or {}, "deal")
        company_props = body.get("company")
        contacts = body.get("contacts") or []
        lines = body.get("line_items") or []
        groups = [("deals", [deal_props]), ("companies", [company_props] if company_props else []),
                  ("contacts", contacts), ("line_items", lines)]
        for type_name, items in groups:
            for item in items:
                values = json_object(item, type_name)
                portal.define_if_missing(type_name, values)  # an admin created these custom properties
                portal.validate(type_name, values)
        deal = portal.create("deals", deal_props, validate=False)
        result: dict[str, Any] = {"dealId": deal["id"], "companyId": None, "contactIds": [], "lineItemIds": []}
        if company_props:
            company = portal.create("companies", company_props, validate=False)
            portal.associate("deals", deal["id"], "companies", company["id"])
            result["companyId"] = company["id"]
        for values in contacts:
            contact = portal.create("contacts", values, validate=False)
            portal.associate("deals", deal["id"], "contacts", contact["id"])
            if result["companyId"]:
                portal.associate("contacts", contact["id"], "companies", result["companyId"])
            result["contactIds"].append(contact["id"])
        for values in lines:
            line = portal.create("line_items", values, validate=False)
            portal.associate("deals", deal["id"], "line_items", line["id"])
            result["lineItemIds"].append(line["id"])
        result["eventIds"] = self.sandbox.webhooks.deal_created(deal["id"], "CRM_UI")
        return result

    async def move_stage(self, deal_id: str, request: Request) -> dict[str, Any]:
        """A salesperson drags the deal to ``stage``: emits ``deal.propertyChange`` for dealstage."""
        body = json_object(await read_json(request))
        stage = body.get("stage")
        if not isinstance(stage, str) or not stage:
            raise HubSpotError(400, "'stage' is required", "VALIDATION_ERROR")
        _record, changed = self.portal.update("deals", deal_id, {"dealstage": stage})
        return {"dealId": deal_id, "stage": stage, "changed": bool(changed),
                "eventIds": self.sandbox.webhooks.deal_changed(deal_id, changed, "CRM_UI")}

    async def edit_deal(self, deal_id: str, request: Request) -> dict[str, Any]:
        """A salesperson edits deal properties (e.g. fills in a missing region); emits webhooks."""
        values = properties_input(json_object(await read_json(request)))
        self.portal.require("deals", deal_id)
        self.portal.define_if_missing("deals", values)
        _record, changed = self.portal.update("deals", deal_id, values)
        return {"dealId": deal_id, "changed": changed,
                "eventIds": self.sandbox.webhooks.deal_changed(deal_id, changed, "CRM_UI")}

    async def inspect_deal(self, deal_id: str) -> dict[str, Any]:
        """Every property of the deal and its associated IDs (for tests to check write-backs)."""
        record = self.portal.require("deals", deal_id)
        return {**record, "associations": {
            t: [r["toObjectId"] for r in self.portal.associations("deals", deal_id, t)]
            for t in ("companies", "contacts", "line_items")}}

    async def inspect_object(self, object_type_raw: str, object_id: str) -> dict[str, Any]:
        """Every property of any object (companies, contacts, line items)."""
        return self.portal.require(object_type(object_type_raw), object_id)
