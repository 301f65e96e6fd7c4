"""CRM objects v3 (deals, companies, contacts, line items): list, create, read, archive, update."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.hubspot.core import (
    HubSpotSandbox,
    int_param,
    json_object,
    offset,
    properties_input,
    query_names,
    read_json,
)
from sandbox.hubspot.crm import ASSOCIATION_TYPES, HubSpotError, object_type


class Objects:
    """``/crm/v3/objects/{objectType}[/{objectId}]`` over the shared :class:`HubSpotSandbox`."""

    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox
        self.portal = sandbox.portal

    def register(self, api: APIRouter) -> None:
        """Add the routes to ``api`` (the router behind the token check)."""
        api.get("/crm/v3/objects/{object_type_raw}")(self.list_objects)
        api.post("/crm/v3/objects/{object_type_raw}", status_code=201)(self.create_object)
        api.get("/crm/v3/objects/{object_type_raw}/{object_id}")(self.read_object)
        api.delete("/crm/v3/objects/{object_type_raw}/{object_id}", status_code=204)(self.archive_object)
        api.patch("/crm/v3/objects/{object_type_raw}/{object_id}")(self.update_object)

    async def list_objects(self, object_type_raw: str, request: Request) -> dict[str, Any]:
        type_name = object_type(object_type_raw)
        limit = int_param(request, "limit", 10, 100)
        start = offset(request.query_params.get("after"))
        items = self.portal.all(type_name, offset=start, limit=limit + 1)  # one more: is there a next page?
        page = items[:limit]
        props = query_names(request, "properties") or None
        associations = query_names(request, "associations")
        body: dict[str, Any] = {"results": [self.sandbox.with_associations(type_name, r, props, associations)
                                            for r in page]}
        if len(items) > limit:
            after = str(start + limit)
            body["paging"] = {"next": {"after": after, "link": f"{request.url.path}?after={after}"}}
        return body

    async def create_object(self, object_type_raw: str, request: Request) -> dict[str, Any]:
        portal = self.portal
        type_name = object_type(object_type_raw)
        body = json_object(await read_json(request))
        values = properties_input(body)
        targets = []
        for assoc in body.get("associations") or []:
            to_id = str((assoc.get("to") or {}).get("id", ""))
            types = assoc.get("types") or []
            type_ids = {int(t.get("associationTypeId", 0)) for t in types if isinstance(t, dict)}
            found = None
            for (a, b), specs in ASSOCIATION_TYPES.items():
                if a == type_name and type_ids & {s[0] for s in specs}:
                    found = b
            if found is None:
                raise HubSpotError(400, f"Invalid association types {sorted(type_ids)} from {type_name}",
                                   "VALIDATION_ERROR")
            portal.require(found, to_id)
            targets.append((found, to_id))
        record = portal.create(type_name, values)
        for to_type, to_id in targets:
            portal.associate(type_name, record["id"], to_type, to_id)
        if type_name == "deals":
            self.sandbox.webhooks.deal_created(record["id"], "INTEGRATION")
        return portal.render(type_name, record, list(values))

    async def read_object(self, object_type_raw: str, object_id: str, request: Request) -> dict[str, Any]:
        portal = self.portal
        type_name = object_type(object_type_raw)
        id_property = request.query_params.get("idProperty")
        if id_property:
            record = portal.find_by(type_name, id_property, object_id)
            if record is None:
                raise HubSpotError(404, "Object not found.", "OBJECT_NOT_FOUND", context={"id": [object_id]})
        elif request.query_params.get("archived", "false").lower() == "true":
            record = portal.get(type_name, object_id)
            if record is None or not record.get("archived"):
                raise HubSpotError(404, "Object not found.", "OBJECT_NOT_FOUND", context={"id": [object_id]})
            return portal.render(type_name, record, query_names(request, "properties") or None)
        else:
            record = portal.require(type_name, object_id)
        return self.sandbox.with_associations(type_name, record, query_names(request, "properties") or None,
                                              query_names(request, "associations"))

    async def archive_object(self, object_type_raw: str, object_id: str) -> Response:
        """Archive (HubSpot answers 204 also for an ID it does not have)."""
        type_name = object_type(object_type_raw)
        if (found := self.portal.get(type_name, object_id)) is not None and not found.get("archived"):
            self.portal.archive(type_name, object_id)
        return Response(status_code=204)

    async def update_object(self, object_type_raw: str, object_id: str, request: Request) -> dict[str, Any]:
        portal = self.portal
        type_name = object_type(object_type_raw)
        values = properties_input(json_object(await read_json(request)))
        id_property = request.query_params.get("idProperty")
        if id_property:
            found = portal.find_by(type_name, id_property, object_id)
            if found is None:
                raise HubSpotError(404, "Object not found.", "OBJECT_NOT_FOUND", context={"id": [object_id]})
            object_id = found["id"]
        record, changed = portal.update(type_name, object_id, values)
        if type_name == "deals":
            self.sandbox.webhooks.deal_changed(object_id, changed, "INTEGRATION")
        return portal.render(type_name, record, list(values))
