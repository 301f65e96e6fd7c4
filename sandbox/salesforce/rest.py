"""The REST API's resources under ``/services/data/v60.0``: versions, describe, sObject rows (create, read,
update, delete, read and upsert by external ID), SOQL queries with ``nextRecordsUrl`` paging, sObject Collections
and limits. Trailing slashes are accepted, as Salesforce accepts them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from sandbox.salesforce.org import API_VERSION, DERIVED, OBJECTS, READ_ONLY, Org, SalesforceError
from sandbox.salesforce.queries import Queries

DATA = f"/services/data/{API_VERSION}"
COLLECTION_LIMIT = 200


def route(router: APIRouter, method: str, path: str, handler: Callable[..., Any]) -> None:
    """``path`` with and without a trailing slash."""
    for variant in (path, path + "/"):
        router.add_api_route(variant, handler, methods=[method], include_in_schema=variant == path)


async def read_json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from exc


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of SObject from an array")
    return body


def saved(record_id: str, *, created: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": record_id, "success": True, "errors": []}
    if created is not None:
        body["created"] = created
    return body


class Rest:
    """The data API over the shared :class:`Org`; ``on_change(sobject, record, changed)`` hears every write."""

    def __init__(self, org: Org, on_change: Callable[[str, dict[str, Any], dict[str, Any]], None]) -> None:
        self.org = org
        self.on_change = on_change
        self.queries = Queries(org)

    def register(self, app: FastAPI, router: APIRouter) -> None:
        app.get("/services/data")(self.versions)
        app.get("/services/data/")(self.versions)
        route(router, "GET", DATA, self.resources)
        route(router, "GET", f"{DATA}/limits", self.limits)
        route(router, "GET", f"{DATA}/sobjects", self.describe_global)
        route(router, "GET", f"{DATA}/query", self.queries.query)
        route(router, "GET", f"{DATA}/query/{{locator}}", self.queries.more)
        route(router, "POST", f"{DATA}/composite/sobjects", self.collection_create)
        route(router, "PATCH", f"{DATA}/composite/sobjects", self.collection_update)
        route(router, "PATCH", f"{DATA}/composite/sobjects/{{name}}/{{field}}", self.collection_upsert)
        route(router, "GET", f"{DATA}/sobjects/{{name}}/describe", self.describe)
        route(router, "GET", f"{DATA}/sobjects/{{name}}", self.basic_info)
        route(router, "POST", f"{DATA}/sobjects/{{name}}", self.create)
        route(router, "GET", f"{DATA}/sobjects/{{name}}/{{record_id}}", self.read)
        route(router, "PATCH", f"{DATA}/sobjects/{{name}}/{{record_id}}", self.update)
        route(router, "DELETE", f"{DATA}/sobjects/{{name}}/{{record_id}}", self.delete)
        route(router, "GET", f"{DATA}/sobjects/{{name}}/{{field}}/{{value}}", self.read_external)
        route(router, "PATCH", f"{DATA}/sobjects/{{name}}/{{field}}/{{value}}", self.upsert)

    # -- discovery --------------------------------------------------------------------------------------
    async def versions(self) -> list[dict[str, str]]:
        return [{"label": "Spring '24", "url": DATA, "version": API_VERSION[1:]}]

    async def resources(self) -> dict[str, str]:
        return {name: f"{DATA}/{name}" for name in ("sobjects", "query", "composite", "limits")}

    async def limits(self, request: Request) -> dict[str, Any]:
        limit = request.app.state.sessions.limit
        return {"DailyApiRequests": {"Max": limit.max, "Remaining": max(0, limit.max - limit.used)}}

    def _describe_object(self, name: str) -> dict[str, Any]:
        return {"name": name, "label": re.sub(r"(?<!^)([A-Z])", r" \1", name), "keyPrefix": OBJECTS[name]["prefix"],
                "custom": False, "createable": True, "updateable": True, "queryable": True,
                "urls": {"sobject": f"{DATA}/sobjects/{name}", "describe": f"{DATA}/sobjects/{name}/describe",
                         "rowTemplate": f"{DATA}/sobjects/{name}/{{ID}}"}}

    async def describe_global(self) -> dict[str, Any]:
        return {"encoding": "UTF-8", "maxBatchSize": COLLECTION_LIMIT,
                "sobjects": [self._describe_object(name) for name in OBJECTS]}

    async def basic_info(self, name: str) -> dict[str, Any]:
        sobject = self.org.sobject(name)
        recent = [self.org.render(sobject, r, ["Id"]) for r in self.org.all(sobject)[-10:]]
        return {"objectDescribe": self._describe_object(sobject), "recentItems": recent}

    async def describe(self, name: str) -> dict[str, Any]:
        sobject = self.org.sobject(name)
        spec = OBJECTS[sobject]
        fields = {"Id": "id", "CreatedDate": "datetime", "LastModifiedDate": "datetime",
                  "SystemModstamp": "datetime", **spec["fields"]}
        fixed = READ_ONLY | DERIVED.get(sobject, set())
        described = [{"name": field, "type": kind, "label": field.removesuffix("__c").replace("_", " "),
                      "nillable": field not in spec["required"] and field != "Id",
                      "createable": field not in fixed, "updateable": field not in fixed,
                      "custom": field.endswith("__c"), "externalId": field == "Revops_External_Ref__c",
                      "unique": field == "Revops_External_Ref__c",
                      "referenceTo": [] if kind != "reference" else [self._target(field)]}
                     for field, kind in fields.items()]
        return {**self._describe_object(sobject), "fields": described}

    @staticmethod
    def _target(field: str) -> str:
        name = field.removesuffix("Id")
        return {"Owner": "User", "CreatedBy": "User", "LastModifiedBy": "User"}.get(name, name)

    # -- rows ---------------------------------------------------------------------------------------------
    async def create(self, name: str, request: Request) -> JSONResponse:
        sobject = self.org.sobject(name)
        record = self.org.create(sobject, json_object(await read_json(request)))
        self.on_change(sobject, record, {k: v for k, v in record.items()})
        return JSONResponse(status_code=201, content=saved(record["Id"]))

    async def read(self, name: str, record_id: str, request: Request) -> dict[str, Any]:
        sobject = self.org.sobject(name)
        fields = [f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()] or None
        return self.org.render(sobject, self.org.require(sobject, record_id), fields)

    async def update(self, name: str, record_id: str, request: Request) -> Response:
        sobject = self.org.sobject(name)
        record, changed = self.org.update(sobject, record_id, json_object(await read_json(request)))
        self.on_change(sobject, record, changed)
        return Response(status_code=204)

    async def delete(self, name: str, record_id: str) -> Response:
        self.org.delete(self.org.sobject(name), record_id)
        return Response(status_code=204)

    def _by_external(self, sobject: str, field: str, value: str) -> dict[str, Any] | None:
        name = self.org.field_name(sobject, field)
        if name != "Id" and name != "Revops_External_Ref__c":
            raise SalesforceError(400, "INVALID_FIELD", f"Field {name} is not an External ID or indexed field "
                                                        f"for {sobject}", [name])
        found = self.org.by_external_id(sobject, name, value)
        if len(found) > 1:
            raise SalesforceError(300, "MULTIPLE_CHOICES", f"more than one {sobject} has {name} {value}")
        return found[0] if found else None

    async def read_external(self, name: str, field: str, value: str) -> dict[str, Any]:
        sobject = self.org.sobject(name)
        record = self._by_external(sobject, field, value)
        if record is None:
            raise SalesforceError(404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible")
        return self.org.render(sobject, record)

    def upsert_one(self, sobject: str, field: str, value: str, values: dict[str, Any]) -> tuple[str, bool]:
        """Update the record whose external ID is ``value`` or create it; its ID and whether it was created."""
        body = {k: v for k, v in values.items() if k.lower() != field.lower()}
        existing = self._by_external(sobject, field, value)
        if existing is None:
            record = self.org.create(sobject, {**body, self.org.field_name(sobject, field): value})
            self.on_change(sobject, record, dict(record))
            return record["Id"], True
        record, changed = self.org.update(sobject, existing["Id"], body)
        self.on_change(sobject, record, changed)
        return record["Id"], False

    async def upsert(self, name: str, field: str, value: str, request: Request) -> JSONResponse:
        """201 with ``created: true`` for a new record; 200 with ``created: false`` for an update (API 46.0+)."""
        sobject = self.org.sobject(name)
        record_id, created = self.upsert_one(sobject, field, value, json_object(await read_json(request)))
        return JSONResponse(status_code=201 if created else 200, content=saved(record_id, created=created))

    # -- sObject Collections ---------------------------------------------------------------------------
    async def _collection(self, request: Request) -> tuple[list[dict[str, Any]], bool]:
        body = json_object(await read_json(request))
        records = body.get("records")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "records must be an array of sObjects")
        if len(records) > COLLECTION_LIMIT:
            raise SalesforceError(400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than "
                                                            f"{COLLECTION_LIMIT} records into this call")
        return records, bool(body.get("allOrNone"))

    def _each(self, records: list[dict[str, Any]], all_or_none: bool,
              write: Callable[[dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for record in records:
            try:
                results.append(write(record))
            except SalesforceError as exc:
                if all_or_none:
                    raise
                results.append({"id": record.get("Id"), "success": False, "errors": [exc.collection_error()]})
        return results

    def _type_of(self, record: dict[str, Any]) -> str:
        kind = (record.get("attributes") or {}).get("type")
        if not kind:
            raise SalesforceError(400, "INVALID_TYPE", "Must specify a type in attributes")
        return self.org.sobject(str(kind))

    async def collection_create(self, request: Request) -> list[dict[str, Any]]:
        records, all_or_none = await self._collection(request)

        def write(values: dict[str, Any]) -> dict[str, Any]:
            sobject = self._type_of(values)
            record = self.org.create(sobject, values)
            self.on_change(sobject, record, dict(record))
            return saved(record["Id"])

        return self._each(records, all_or_none, write)

    async def collection_update(self, request: Request) -> list[dict[str, Any]]:
        records, all_or_none = await self._collection(request)

        def write(values: dict[str, Any]) -> dict[str, Any]:
            sobject = self._type_of(values)
            record_id = str(values.get("Id") or "")
            record, changed = self.org.update(sobject, record_id, {k: v for k, v in values.items() if k != "Id"})
            self.on_change(sobject, record, changed)
            return saved(record["Id"])

        return self._each(records, all_or_none, write)

    async def collection_upsert(self, name: str, field: str, request: Request) -> list[dict[str, Any]]:
        sobject = self.org.sobject(name)
        records, all_or_none = await self._collection(request)

        def write(values: dict[str, Any]) -> dict[str, Any]:
            value = next((v for k, v in values.items() if k.lower() == field.lower()), None)
            if not value:
                raise SalesforceError(400, "REQUIRED_FIELD_MISSING", f"Missing external ID field {field}", [field])
            record_id, created = self.upsert_one(sobject, field, str(value), values)
            return saved(record_id, created=created)

        return self._each(records, all_or_none, write)
