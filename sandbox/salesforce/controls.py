"""``/_sandbox`` acts only a person in Salesforce's UI could do: seed an opportunity with its account, contacts
(with their opportunity contact roles), products and line items; move an opportunity to a stage (which fires the
outbound message, as the workflow rule would); edit an opportunity; read any record whole."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from sandbox.salesforce.org import Org, SalesforceError
from sandbox.salesforce.rest import json_object, read_json


class Controls:
    """The sales rep's acts over the shared :class:`Org`."""

    def __init__(self, org: Org, rest: Any) -> None:
        self.org = org
        self.rest = rest  # writes go through it, so outbound messages fire as for API writes

    def register(self, app: FastAPI) -> None:
        app.post("/_sandbox/seed/deal")(self.seed_deal)
        app.post("/_sandbox/opportunities/{record_id}/stage")(self.move_stage)
        app.patch("/_sandbox/opportunities/{record_id}")(self.edit)
        app.get("/_sandbox/opportunities/{record_id}")(self.inspect_opportunity)
        app.get("/_sandbox/records/{name}/{record_id}")(self.inspect)

    def _create(self, sobject: str, values: dict[str, Any]) -> dict[str, Any]:
        record = self.org.create(sobject, values)
        self.rest.on_change(sobject, record, dict(record))
        return record

    def _standard_pricebook(self) -> str:
        found = [p for p in self.org.all("Pricebook2") if p.get("IsStandard")]
        return str(found[0]["Id"] if found else self._create("Pricebook2", {"Name": "Standard Price Book",
                                                                             "IsActive": True,
                                                                             "IsStandard": True})["Id"])

    def _line(self, opportunity_id: str, values: dict[str, Any], order: int) -> str:
        line = dict(values)
        code = line.pop("ProductCode", None)
        name = line.pop("ProductName", None) or line.pop("Name", None) or code or "Product"
        product = self._create("Product2", {"Name": name, "ProductCode": code, "IsActive": True})
        entry = self._create("PricebookEntry", {"Pricebook2Id": self._standard_pricebook(),
                                                "Product2Id": product["Id"], "IsActive": True,
                                                "UnitPrice": line.get("UnitPrice", 0)})
        record = self._create("OpportunityLineItem", {"OpportunityId": opportunity_id, "PricebookEntryId": entry["Id"],
                                                      "SortOrder": order, **line})
        return str(record["Id"])

    async def seed_deal(self, request: Request) -> dict[str, Any]:
        """``{"opportunity": {...}, "account": {...}, "contacts": [{..., "Role": ...}], "line_items": [{...,
        "ProductCode": ...}]}`` (Salesforce field names); the IDs created."""
        body = json_object(await read_json(request))
        account_values = body.get("account")
        account = self._create("Account", json_object(account_values)) if account_values else None
        opportunity_values = json_object(body.get("opportunity") or {})
        if account:
            opportunity_values = {**opportunity_values, "AccountId": account["Id"]}
        opportunity = self._create("Opportunity", opportunity_values)
        contact_ids = []
        for index, values in enumerate(body.get("contacts") or []):
            contact = dict(json_object(values))
            role = contact.pop("Role", None)
            if account:
                contact["AccountId"] = account["Id"]
            created = self._create("Contact", contact)
            self._create("OpportunityContactRole", {"OpportunityId": opportunity["Id"], "ContactId": created["Id"],
                                                    "Role": role, "IsPrimary": index == 0})
            contact_ids.append(created["Id"])
        lines = [self._line(opportunity["Id"], json_object(v), i) for i, v in enumerate(body.get("line_items") or [])]
        return {"opportunityId": opportunity["Id"], "accountId": account["Id"] if account else None,
                "contactIds": contact_ids, "lineItemIds": lines}

    async def move_stage(self, record_id: str, request: Request) -> dict[str, Any]:
        """The rep drags the opportunity to ``stage``: the outbound message goes out when the stage changed."""
        stage = json_object(await read_json(request)).get("stage")
        if not isinstance(stage, str) or not stage:
            raise SalesforceError(400, "REQUIRED_FIELD_MISSING", "'stage' is required", ["stage"])
        record, changed = self.org.update("Opportunity", record_id, {"StageName": stage})
        self.rest.on_change("Opportunity", record, changed)
        return {"opportunityId": record["Id"], "stage": stage, "changed": "StageName" in changed}

    async def edit(self, record_id: str, request: Request) -> dict[str, Any]:
        """The rep edits fields (e.g. fills in a missing region)."""
        fields = json_object(json_object(await read_json(request)).get("fields"))
        record, changed = self.org.update("Opportunity", record_id, fields)
        self.rest.on_change("Opportunity", record, changed)
        return {"opportunityId": record["Id"], "changed": changed}

    async def inspect_opportunity(self, record_id: str) -> dict[str, Any]:
        return self.org.render("Opportunity", self.org.require("Opportunity", record_id))

    async def inspect(self, name: str, record_id: str) -> dict[str, Any]:
        sobject = self.org.sobject(name)
        return self.org.render(sobject, self.org.require(sobject, record_id))
