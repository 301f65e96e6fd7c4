"""CRM associations v4: list a record's associations of one type, associate two records."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from sandbox.hubspot.core import HubSpotSandbox, int_param, offset, read_json
from sandbox.hubspot.crm import ASSOCIATION_TYPES, HubSpotError, object_type, type_id

_PATH = "/crm/v4/objects/{object_type_raw}/{object_id}/associations/{to_type_raw}"


class Associations:
    """``/crm/v4/objects/.../associations/...`` over the shared :class:`HubSpotSandbox`."""

    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.portal = sandbox.portal

    def register(self, api: APIRouter) -> None:
        """Add the routes to ``api`` (the router behind the token check)."""
        api.get(_PATH)(self.list_associations)
        api.put(_PATH + "/{to_object_id}")(self.create_association)

    async def list_associations(self, object_type_raw: str, object_id: str, to_type_raw: str,
                                request: Request) -> dict[str, Any]:
        portal = self.portal
        type_name, to_type = object_type(object_type_raw), object_type(to_type_raw)
        portal.require(type_name, object_id)
        limit = int_param(request, "limit", 500, 500)
        start = offset(request.query_params.get("after"))
        rows = portal.associations(type_name, object_id, to_type)
        from_id, to_id_ = type_id(type_name), type_id(to_type)
        body: dict[str, Any] = {"results": [
            {"toObjectId": r["toObjectId"],
             "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": t,
                                   **({"label": label} if label else {}),
                                   "fromObjectTypeId": from_id, "toObjectTypeId": to_id_}
                                  for t, _, label in r["types"]]}
            for r in rows[start:start + limit]]}
        if start + limit < len(rows):
            after = str(start + limit)
            body["paging"] = {"next": {"after": after, "link": f"{request.url.path}?after={after}"}}
        return body

    async def create_association(self, object_type_raw: str, object_id: str, to_type_raw: str, to_object_id: str,
                                 request: Request) -> dict[str, Any]:
        """Associate two records with the given types (HubSpot-defined ones only in the emulator)."""
        portal = self.portal
        type_name, to_type = object_type(object_type_raw), object_type(to_type_raw)
        specs = await read_json(request)
        if not isinstance(specs, list) or not specs:
            raise HubSpotError(400, "Invalid input JSON: expected a non-empty array of association specs",
                               "VALIDATION_ERROR")
        known = {t for t, _n, _l in ASSOCIATION_TYPES.get((type_name, to_type), [])}
        for spec in specs:
            if not isinstance(spec, dict) or spec.get("associationCategory") != "HUBSPOT_DEFINED" \
                    or int(spec.get("associationTypeId") or 0) not in known:
                raise HubSpotError(400, f"Invalid association spec {spec!r} from {type_name} to {to_type}",
                                   "VALIDATION_ERROR")
        portal.require(type_name, object_id)
        portal.require(to_type, to_object_id)
        portal.associate(type_name, object_id, to_type, to_object_id)
        labels = [label for t, _n, label in ASSOCIATION_TYPES[(type_name, to_type)] if label]
        return {"fromObjectTypeId": type_id(type_name), "fromObjectId": int(object_id),
                "toObjectTypeId": type_id(to_type), "toObjectId": int(to_object_id), "labels": labels}
