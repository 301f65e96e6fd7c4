"""CRM properties v3: list, read and create property definitions (the standard ones are in
:mod:`sandbox.hubspot.properties`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.hubspot.core import HubSpotSandbox, json_object, read_json
from sandbox.hubspot.crm import HubSpotError, object_type


class Properties:
    """``/crm/v3/properties/{objectType}[/{name}]`` over the shared :class:`HubSpotSandbox`."""

    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.portal = sandbox.portal

    def register(self, api: APIRouter) -> None:
        """Add the routes to ``api`` (the router behind the token check)."""
        api.get("/crm/v3/properties/{object_type_raw}")(self.list_properties)
        api.get("/crm/v3/properties/{object_type_raw}/{name}")(self.read_property)
        api.post("/crm/v3/properties/{object_type_raw}", status_code=201)(self.create_property)

    async def list_properties(self, object_type_raw: str) -> dict[str, Any]:
        return {"results": list(self.portal.properties(object_type(object_type_raw)).values())}

    async def read_property(self, object_type_raw: str, name: str) -> dict[str, Any]:
        found = self.portal.properties(object_type(object_type_raw)).get(name)
        if found is None:
            raise HubSpotError(404, f"Unable to find property {name} for object type {object_type_raw}",
                               "OBJECT_NOT_FOUND", context={"name": [name]})
        return found

    async def create_property(self, object_type_raw: str, request: Request, response: Response) -> dict[str, Any]:
        type_name = object_type(object_type_raw)
        created = self.portal.create_property(type_name, json_object(await read_json(request)))
        response.headers["Location"] = f"/crm/v3/properties/{object_type_raw}/{created['name']}"
        return created
