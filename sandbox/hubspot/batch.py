"""CRM objects v3 batch endpoints: read, update and upsert by a unique property."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.hubspot.core import HubSpotSandbox, json_object, properties_input, read_json
from sandbox.hubspot.crm import MAX_BATCH, SINGULAR, HubSpotError, now_iso, object_type


def batch_response(results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str) -> JSONResponse:
    """HubSpot's batch answer: 200, or 207 with ``numErrors`` and ``errors`` when some inputs failed."""
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                            "completedAt": now_iso()}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return JSONResponse(status_code=207 if errors else 200, content=body)


def batch_inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``inputs`` array, at most ``MAX_BATCH`` objects."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise HubSpotError(400, "Invalid input JSON: 'inputs' must be an array of objects", "VALIDATION_ERROR")
    if len(inputs) > MAX_BATCH:
        raise HubSpotError(400, f"Batch input exceeds the limit of {MAX_BATCH} inputs (got {len(inputs)})",
                           "VALIDATION_ERROR")
    return inputs


def missing_error(type_name: str, ids: list[str], verb: str) -> dict[str, Any]:
    """The batch error entry for IDs that were not found."""
    return {"status": "error", "category": "OBJECT_NOT_FOUND",
            "message": f"Could not {verb} some {SINGULAR[type_name].upper()} objects, they may be deleted "
                       "or not exist. Check that ids are valid.",
            "context": {"ids": ids}, "errors": [], "links": {}}


class Batch:
    """``/crm/v3/objects/{objectType}/batch/...`` over the shared :class:`HubSpotSandbox`."""

    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox
        self.portal = sandbox.portal

    def register(self, api: APIRouter) -> None:
        """Add the routes to ``api`` (the router behind the token check)."""
        api.post("/crm/v3/objects/{object_type_raw}/batch/read")(self.batch_read)
        api.post("/crm/v3/objects/{object_type_raw}/batch/update")(self.batch_update)
        api.post("/crm/v3/objects/{object_type_raw}/batch/upsert")(self.batch_upsert)

    async def batch_read(self, object_type_raw: str, request: Request) -> JSONResponse:
        portal = self.portal
        type_name = object_type(object_type_raw)
        started = now_iso()
        body = json_object(await read_json(request))
        inputs = batch_inputs(body)
        props = [p for p in body.get("properties") or [] if isinstance(p, str)] or None
        id_property = body.get("idProperty")
        results, missing = [], []
        seen: set[str] = set()
        for item in inputs:
            key = str(item.get("id", ""))
            record = portal.find_by(type_name, id_property, key) if id_property else portal.get(type_name, key)
            if record is None or record.get("archived"):
                missing.append(key)
            elif record["id"] not in seen:
                seen.add(record["id"])
                results.append(portal.render(type_name, record, props))
        return batch_response(results, [missing_error(type_name, missing, "get")] if missing else [], started)

    async def batch_update(self, object_type_raw: str, request: Request) -> JSONResponse:
        portal = self.portal
        type_name = object_type(object_type_raw)
        started = now_iso()
        inputs = batch_inputs(json_object(await read_json(request)))
        for item in inputs:  # validate all first: HubSpot rejects the whole batch on a bad value
            portal.validate(type_name, properties_input(item), exclude_id=str(item.get("id", "")))
        results, missing = [], []
        for item in inputs:
            key = str(item.get("id", ""))
            record = portal.find_by(type_name, item["idProperty"], key) if item.get("idProperty") \
                else portal.get(type_name, key)
            if record is None or record.get("archived"):
                missing.append(key)
                continue
            values = properties_input(item)
            record, changed = portal.update(type_name, record["id"], values, validate=False)
            if type_name == "deals":
                self.sandbox.webhooks.deal_changed(record["id"], changed, "INTEGRATION")
            results.append(portal.render(type_name, record, list(values)))
        return batch_response(results, [missing_error(type_name, missing, "update")] if missing else [], started)

    async def batch_upsert(self, object_type_raw: str, request: Request) -> JSONResponse:
        portal = self.portal
        type_name = object_type(object_type_raw)
        started = now_iso()
        inputs = batch_inputs(json_object(await read_json(request)))
        self._check_upsert(type_name, inputs)
        results = []
        for item in inputs:
            values = {**properties_input(item), item["idProperty"]: str(item["id"])}
            existing = portal.find_by(type_name, item["idProperty"], str(item["id"]))
            if existing is None:
                record, new = portal.create(type_name, values, validate=False), True
            else:
                record, changed = portal.update(type_name, existing["id"], values, validate=False)
                new = False
                if type_name == "deals":
                    self.sandbox.webhooks.deal_changed(record["id"], changed, "INTEGRATION")
            results.append({**portal.render(type_name, record, list(values)), "new": new})
        return batch_response(results, [], started)

    def _check_upsert(self, type_name: str, inputs: list[dict[str, Any]]) -> None:
        """Refuse the whole batch when any input lacks a unique ``idProperty``, repeats a key or has a bad value."""
        portal = self.portal
        known = portal.properties(type_name)
        keys: list[str] = []
        for i, item in enumerate(inputs):
            id_property = item.get("idProperty")
            if not id_property or not item.get("id"):
                raise HubSpotError(400, f"inputs[{i}]: 'id' and 'idProperty' are required for upsert",
                                   "VALIDATION_ERROR")
            prop = known.get(id_property)
            if prop is None or not prop["hasUniqueValue"]:
                raise HubSpotError(400, f"{id_property} is not a unique value property of {type_name}; upsert "
                                        "needs a property with hasUniqueValue=true", "VALIDATION_ERROR",
                                   errors=[{"message": f"{id_property} is not a unique property", "in": "idProperty"}])
            key = f"{id_property}={item['id']}"
            if key in keys:
                raise HubSpotError(400, f"Duplicate id {item['id']} in upsert inputs", "VALIDATION_ERROR")
            keys.append(key)
            existing = portal.find_by(type_name, id_property, str(item["id"]))
            portal.validate(type_name, {**properties_input(item), id_property: str(item["id"])},
                            exclude_id=existing["id"] if existing else None)
