"""HubSpot CRM emulator: objects v3 (deals, companies, contacts, line items), batch read / update /
upsert, search, associations v4, properties v3, private-app bearer auth, HubSpot's error and
rate-limit shapes, and ``deal.*`` webhooks signed with ``X-HubSpot-Signature-v3``.

``/_sandbox`` adds what only a person in the HubSpot UI could do: seed a deal with its company,
contacts and line items, move a deal to a stage, edit a deal, and read all of a deal's properties.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import json
import math
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sandbox.hubspot.crm import (
    APP_ID,
    ASSOCIATION_TYPES,
    MAX_BATCH,
    MAX_SEARCH_LIMIT,
    MAX_SEARCH_RESULTS,
    PORTAL_ID,
    SINGULAR,
    HubSpotError,
    Portal,
    now_iso,
    object_type,
    to_millis,
    type_id,
)
from sandbox.kit import Store, VendorStyle, create_sandbox_app
from settings import Settings

_CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
               404: "OBJECT_NOT_FOUND", 409: "CONFLICT", 415: "VALIDATION_ERROR", 423: "LOCKED"}
SUBSCRIPTION_IDS = {"deal.creation": 1_100_001, "deal.propertyChange": 1_100_002, "deal.deletion": 1_100_003}
#: how many associated IDs of one type a v3 object read returns inline before paging (v4 for the rest)
INLINE_ASSOCIATION_LIMIT = 100


def hubspot_error(status: int, message: str) -> JSONResponse:
    """An error in HubSpot's shape (fault injection and refusals)."""
    category = _CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")
    return JSONResponse(status_code=status, content=HubSpotError(status, message, category).body())


def hubspot_rate_limited(wait: float) -> JSONResponse:
    """HubSpot's 429: ``errorType: RATE_LIMIT`` with the policy, the rate-limit headers and Retry-After."""
    body = {"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()), "policyName": "SECONDLY",
            "groupName": f"publicapi:private-app-api-calls-secondly:{APP_ID}"}
    headers = {"Retry-After": str(max(1, math.ceil(wait))), "X-HubSpot-RateLimit-Interval-Milliseconds": "1000",
               "X-HubSpot-RateLimit-Max": "10", "X-HubSpot-RateLimit-Remaining": "0",
               "X-HubSpot-RateLimit-Secondly": "10", "X-HubSpot-RateLimit-Secondly-Remaining": "0"}
    return JSONResponse(status_code=429, content=body, headers=headers)


#: the percent-escapes HubSpot decodes in the URI before signing (its v3 documentation lists these twelve)
SIGNING_DECODES = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
                   "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def decoded_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the listed escapes decoded (any case), every other escape kept."""
    out, i = [], 0
    while i < len(uri):
        chunk = uri[i:i + 3].upper()
        if uri[i] == "%" and chunk in SIGNING_DECODES:
            out.append(SIGNING_DECODES[chunk])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 of method + decoded URI + body + timestamp."""
    source = method.encode() + decoded_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def sign_v1(secret: str, body: bytes) -> str:
    """The legacy ``X-HubSpot-Signature`` (v1): hex SHA-256 of client secret + body."""
    return hashlib.sha256(secret.encode() + body).hexdigest()


async def _json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except json.JSONDecodeError as exc:
        raise HubSpotError(400, f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}",
                           "VALIDATION_ERROR") from exc


def _object(body: Any, what: str = "request body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise HubSpotError(400, f"Invalid input JSON: {what} must be an object", "VALIDATION_ERROR")
    return body


def _props_input(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties")
    if not isinstance(props, dict):
        raise HubSpotError(400, "Invalid input JSON: 'properties' is required and must be an object",
                           "VALIDATION_ERROR", errors=[{"message": "properties is required", "in": "properties"}])
    return props


def _names(request: Request, key: str) -> list[str]:
    """A list query parameter, given comma-separated and/or repeated."""
    return [n.strip() for raw in request.query_params.getlist(key) for n in raw.split(",") if n.strip()]


def _int_param(request: Request, key: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HubSpotError(400, f"Invalid value '{raw}' for query parameter {key}", "VALIDATION_ERROR") from None
    return max(1, min(value, maximum))


def _offset(raw: Any) -> int:
    if raw in (None, ""):
        return 0
    try:
        return max(0, int(str(raw)))
    except ValueError:
        raise HubSpotError(400, f"Invalid paging cursor: {raw}", "VALIDATION_ERROR") from None


def create_app(settings: Settings, *, database_url: str = "sqlite://") -> FastAPI:
    """The HubSpot emulator app (``sandbox.serve.build_app("hubspot", settings)``)."""
    store = Store(database_url)
    style = VendorStyle(vendor="hubspot", error=hubspot_error, rate_limited=hubspot_rate_limited)
    app = create_sandbox_app(style=style, store=store, title="HubSpot CRM sandbox")
    portal = Portal(store, extra_stages=[settings.hubspot_approval_stage, settings.hubspot_closed_won_stage])
    app.state.portal = portal
    app.state.inline_association_limit = INLINE_ASSOCIATION_LIMIT
    control = app.state.control
    # Event IDs stay unique across /_sandbox/reset and restarts, so ingress dedupe never misfires.
    event_ids = itertools.count(int(time.time() * 1000))

    @app.exception_handler(HubSpotError)
    async def _hubspot_error(_request: Request, exc: HubSpotError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content=exc.body())

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return hubspot_error(400, f"Invalid input: {exc.errors()[:3]}")

    # -- auth ------------------------------------------------------------------------------------
    async def require_token(request: Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not token:
            raise HubSpotError(401, "Authentication credentials not found. This API supports OAuth 2.0 "
                                    "authentication and you can find more details at "
                                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                               "INVALID_AUTHENTICATION")
        if not hmac.compare_digest(token.strip(), settings.hubspot_access_token):
            raise HubSpotError(401, "Authentication credentials not found. The access token provided is "
                                    "invalid or has been revoked.", "INVALID_AUTHENTICATION",
                               sub_category="INVALID_TOKEN")

    api = APIRouter(dependencies=[Depends(require_token)])

    # -- webhooks --------------------------------------------------------------------------------
    def sign(url: str, body: bytes) -> dict[str, str]:
        timestamp = str(int(time.time() * 1000))
        secret = settings.hubspot_client_secret
        return {"X-HubSpot-Signature-v3": sign_v3(secret, "POST", url, body, timestamp),
                "X-HubSpot-Request-Timestamp": timestamp,
                "X-HubSpot-Signature": sign_v1(secret, body), "X-HubSpot-Signature-Version": "v1"}

    def emit(events: list[dict[str, Any]]) -> list[int]:
        if not events:
            return []
        control.webhooks.emit(json.dumps(events, separators=(",", ":")).encode(), sign)
        return [e["eventId"] for e in events]

    def event(subscription: str, deal_id: str, source: str, **extra: Any) -> dict[str, Any]:
        return {"eventId": next(event_ids), "subscriptionId": SUBSCRIPTION_IDS[subscription], "portalId": PORTAL_ID,
                "appId": APP_ID, "occurredAt": int(time.time() * 1000), "subscriptionType": subscription,
                "attemptNumber": 0, "objectId": int(deal_id), "changeSource": source,
                **({"sourceId": str(APP_ID)} if source == "INTEGRATION" else {}), **extra}

    def deal_changed(deal_id: str, changed: dict[str, str], source: str) -> list[int]:
        return emit([event("deal.propertyChange", deal_id, source, propertyName=name, propertyValue=value)
                     for name, value in changed.items()])

    # -- rendering helpers -----------------------------------------------------------------------
    def with_associations(type_name: str, record: dict[str, Any], properties: list[str] | None,
                          assoc_types: list[str]) -> dict[str, Any]:
        body = portal.render(type_name, record, properties)
        limit = app.state.inline_association_limit
        associations: dict[str, Any] = {}
        for raw in assoc_types:
            to_type = object_type(raw)
            rows = portal.associations(type_name, record["id"], to_type)
            if not rows:
                continue
            results = [{"id": r["toObjectId"], "type": name} for r in rows[:limit] for _, name, _ in r["types"]]
            collection: dict[str, Any] = {"results": results}
            if len(rows) > limit:
                collection["paging"] = {"next": {"after": str(limit), "link": (
                    f"/crm/v4/objects/{type_name}/{record['id']}/associations/{to_type}?after={limit}")}}
            # HubSpot names the line item collection "line items" in v3 reads.
            associations["line items" if to_type == "line_items" else to_type] = collection
        if associations:
            body["associations"] = associations
        return body

    def batch_response(results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str
                       ) -> JSONResponse:
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                                "completedAt": now_iso()}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        return JSONResponse(status_code=207 if errors else 200, content=body)

    def batch_inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise HubSpotError(400, "Invalid input JSON: 'inputs' must be an array of objects", "VALIDATION_ERROR")
        if len(inputs) > MAX_BATCH:
            raise HubSpotError(400, f"Batch input exceeds the limit of {MAX_BATCH} inputs (got {len(inputs)})",
                               "VALIDATION_ERROR")
        return inputs

    def missing_error(type_name: str, ids: list[str], verb: str) -> dict[str, Any]:
        return {"status": "error", "category": "OBJECT_NOT_FOUND",
                "message": f"Could not {verb} some {SINGULAR[type_name].upper()} objects, they may be deleted "
                           "or not exist. Check that ids are valid.",
                "context": {"ids": ids}, "errors": [], "links": {}}

    # -- objects v3 --------------------------------------------------------------------------------
    @api.get("/crm/v3/objects/{object_type_raw}")
    async def list_objects(object_type_raw: str, request: Request) -> dict[str, Any]:
        type_name = object_type(object_type_raw)
        limit = _int_param(request, "limit", 10, 100)
        offset = _offset(request.query_params.get("after"))
        items = portal.all(type_name, offset=offset, limit=limit + 1)  # one more: is there a next page?
        page = items[:limit]
        props = _names(request, "properties") or None
        body: dict[str, Any] = {"results": [with_associations(type_name, r, props, _names(request, "associations"))
                                            for r in page]}
        if len(items) > limit:
            after = str(offset + limit)
            body["paging"] = {"next": {"after": after, "link": f"{request.url.path}?after={after}"}}
        return body

    @api.post("/crm/v3/objects/{object_type_raw}", status_code=201)
    async def create_object(object_type_raw: str, request: Request) -> dict[str, Any]:
        type_name = object_type(object_type_raw)
        body = _object(await _json(request))
        values = _props_input(body)
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
            emit([event("deal.creation", record["id"], "INTEGRATION")])
        return portal.render(type_name, record, list(values))

    @api.get("/crm/v3/objects/{object_type_raw}/{object_id}")
    async def read_object(object_type_raw: str, object_id: str, request: Request) -> dict[str, Any]:
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
            return portal.render(type_name, record, _names(request, "properties") or None)
        else:
            record = portal.require(type_name, object_id)
        return with_associations(type_name, record, _names(request, "properties") or None,
                                 _names(request, "associations"))

    @api.delete("/crm/v3/objects/{object_type_raw}/{object_id}", status_code=204)
    async def archive_object(object_type_raw: str, object_id: str) -> Response:
        """Archive (HubSpot answers 204 also for an ID it does not have)."""
        type_name = object_type(object_type_raw)
        if (found := portal.get(type_name, object_id)) is not None and not found.get("archived"):
            portal.archive(type_name, object_id)
        return Response(status_code=204)

    @api.patch("/crm/v3/objects/{object_type_raw}/{object_id}")
    async def update_object(object_type_raw: str, object_id: str, request: Request) -> dict[str, Any]:
        type_name = object_type(object_type_raw)
        values = _props_input(_object(await _json(request)))
        id_property = request.query_params.get("idProperty")
        if id_property:
            found = portal.find_by(type_name, id_property, object_id)
            if found is None:
                raise HubSpotError(404, "Object not found.", "OBJECT_NOT_FOUND", context={"id": [object_id]})
            object_id = found["id"]
        record, changed = portal.update(type_name, object_id, values)
        if type_name == "deals":
            deal_changed(object_id, changed, "INTEGRATION")
        return portal.render(type_name, record, list(values))

    @api.post("/crm/v3/objects/{object_type_raw}/batch/read")
    async def batch_read(object_type_raw: str, request: Request) -> JSONResponse:
        type_name = object_type(object_type_raw)
        started = now_iso()
        body = _object(await _json(request))
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

    @api.post("/crm/v3/objects/{object_type_raw}/batch/update")
    async def batch_update(object_type_raw: str, request: Request) -> JSONResponse:
        type_name = object_type(object_type_raw)
        started = now_iso()
        inputs = batch_inputs(_object(await _json(request)))
        for item in inputs:  # validate all first: HubSpot rejects the whole batch on a bad value
            portal.validate(type_name, _props_input(item), exclude_id=str(item.get("id", "")))
        results, missing = [], []
        for item in inputs:
            key = str(item.get("id", ""))
            record = portal.find_by(type_name, item["idProperty"], key) if item.get("idProperty") \
                else portal.get(type_name, key)
            if record is None or record.get("archived"):
                missing.append(key)
                continue
            values = _props_input(item)
            record, changed = portal.update(type_name, record["id"], values, validate=False)
            if type_name == "deals":
                deal_changed(record["id"], changed, "INTEGRATION")
            results.append(portal.render(type_name, record, list(values)))
        return batch_response(results, [missing_error(type_name, missing, "update")] if missing else [], started)

    @api.post("/crm/v3/objects/{object_type_raw}/batch/upsert")
    async def batch_upsert(object_type_raw: str, request: Request) -> JSONResponse:
        type_name = object_type(object_type_raw)
        started = now_iso()
        inputs = batch_inputs(_object(await _json(request)))
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
            portal.validate(type_name, {**_props_input(item), id_property: str(item["id"])},
                            exclude_id=existing["id"] if existing else None)
        results = []
        for item in inputs:
            values = {**_props_input(item), item["idProperty"]: str(item["id"])}
            existing = portal.find_by(type_name, item["idProperty"], str(item["id"]))
            if existing is None:
                record, new = portal.create(type_name, values, validate=False), True
            else:
                record, changed = portal.update(type_name, existing["id"], values, validate=False)
                new = False
                if type_name == "deals":
                    deal_changed(record["id"], changed, "INTEGRATION")
            results.append({**portal.render(type_name, record, list(values)), "new": new})
        return batch_response(results, [], started)

    @api.post("/crm/v3/objects/{object_type_raw}/search")
    async def search(object_type_raw: str, request: Request) -> dict[str, Any]:
        type_name = object_type(object_type_raw)
        body = _object(await _json(request))
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or limit < 0 or limit > MAX_SEARCH_LIMIT:
            raise HubSpotError(400, f"limit must be an integer between 0 and {MAX_SEARCH_LIMIT}",
                               "VALIDATION_ERROR", errors=[{"message": "invalid limit", "in": "limit"}])
        offset = _offset(body.get("after"))
        if offset + limit > MAX_SEARCH_RESULTS:
            raise HubSpotError(400, f"The search API returns at most {MAX_SEARCH_RESULTS} results per query; "
                                    "narrow the filters instead of paging further", "VALIDATION_ERROR")
        known = portal.properties(type_name)
        groups = body.get("filterGroups") or []
        matches = portal.all(type_name, where=lambda o: _matches(o, groups, known))
        for prop, descending in reversed(_sorts(body.get("sorts") or [])):
            matches.sort(key=functools.partial(_sort_key, prop=prop, known=known), reverse=descending)
        page = matches[offset:offset + limit]
        props = [p for p in body.get("properties") or [] if isinstance(p, str)] or None
        # Search always returns the object ID, create date and last-modified date.
        always = ["hs_object_id", "createdate", "lastmodifieddate" if type_name == "contacts"
                  else "hs_lastmodifieddate"]
        result: dict[str, Any] = {"total": len(matches),
                                  "results": [portal.render(type_name, o, props, always=always) for o in page]}
        if offset + limit < len(matches) and limit:
            result["paging"] = {"next": {"after": str(offset + limit)}}
        return result

    # -- associations v4 ---------------------------------------------------------------------------
    @api.get("/crm/v4/objects/{object_type_raw}/{object_id}/associations/{to_type_raw}")
    async def list_associations(object_type_raw: str, object_id: str, to_type_raw: str,
                                request: Request) -> dict[str, Any]:
        type_name, to_type = object_type(object_type_raw), object_type(to_type_raw)
        portal.require(type_name, object_id)
        limit = _int_param(request, "limit", 500, 500)
        offset = _offset(request.query_params.get("after"))
        rows = portal.associations(type_name, object_id, to_type)
        from_id, to_id_ = type_id(type_name), type_id(to_type)
        body: dict[str, Any] = {"results": [
            {"toObjectId": r["toObjectId"],
             "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": t,
                                   **({"label": label} if label else {}),
                                   "fromObjectTypeId": from_id, "toObjectTypeId": to_id_}
                                  for t, _, label in r["types"]]}
            for r in rows[offset:offset + limit]]}
        if offset + limit < len(rows):
            after = str(offset + limit)
            body["paging"] = {"next": {"after": after, "link": f"{request.url.path}?after={after}"}}
        return body

    @api.put("/crm/v4/objects/{object_type_raw}/{object_id}/associations/{to_type_raw}/{to_object_id}")
    async def create_association(object_type_raw: str, object_id: str, to_type_raw: str, to_object_id: str,
                                 request: Request) -> dict[str, Any]:
        """Associate two records with the given types (HubSpot-defined ones only in the emulator)."""
        type_name, to_type = object_type(object_type_raw), object_type(to_type_raw)
        specs = await _json(request)
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

    # -- properties v3 -----------------------------------------------------------------------------
    @api.get("/crm/v3/properties/{object_type_raw}")
    async def list_properties(object_type_raw: str) -> dict[str, Any]:
        return {"results": list(portal.properties(object_type(object_type_raw)).values())}

    @api.get("/crm/v3/properties/{object_type_raw}/{name}")
    async def read_property(object_type_raw: str, name: str) -> dict[str, Any]:
        found = portal.properties(object_type(object_type_raw)).get(name)
        if found is None:
            raise HubSpotError(404, f"Unable to find property {name} for object type {object_type_raw}",
                               "OBJECT_NOT_FOUND", context={"name": [name]})
        return found

    @api.post("/crm/v3/properties/{object_type_raw}", status_code=201)
    async def create_property(object_type_raw: str, request: Request, response: Response) -> dict[str, Any]:
        type_name = object_type(object_type_raw)
        created = portal.create_property(type_name, _object(await _json(request)))
        response.headers["Location"] = f"/crm/v3/properties/{object_type_raw}/{created['name']}"
        return created

    app.include_router(api)

    # -- /_sandbox: what a person does in the HubSpot UI --------------------------------------------
    @app.post("/_sandbox/seed/deal")
    async def seed_deal(request: Request) -> dict[str, Any]:
        """Create a deal with its company, contacts and line items, associated as HubSpot does."""
        body = _object(await _json(request))
        deal_props = _object(body.get("deal") or {}, "deal")
        company_props = body.get("company")
        contacts = body.get("contacts") or []
        lines = body.get("line_items") or []
        groups = [("deals", [deal_props]), ("companies", [company_props] if company_props else []),
                  ("contacts", contacts), ("line_items", lines)]
        for type_name, items in groups:
            for item in items:
                values = _object(item, type_name)
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
        result["eventIds"] = emit([event("deal.creation", deal["id"], "CRM_UI")])
        return result

    @app.post("/_sandbox/deals/{deal_id}/stage")
    async def move_stage(deal_id: str, request: Request) -> dict[str, Any]:
        """A salesperson drags the deal to ``stage``: emits ``deal.propertyChange`` for dealstage."""
        body = _object(await _json(request))
        stage = body.get("stage")
        if not isinstance(stage, str) or not stage:
            raise HubSpotError(400, "'stage' is required", "VALIDATION_ERROR")
        _record, changed = portal.update("deals", deal_id, {"dealstage": stage})
        return {"dealId": deal_id, "stage": stage, "changed": bool(changed),
                "eventIds": deal_changed(deal_id, changed, "CRM_UI")}

    @app.patch("/_sandbox/deals/{deal_id}")
    async def edit_deal(deal_id: str, request: Request) -> dict[str, Any]:
        """A salesperson edits deal properties (e.g. fills in a missing region); emits webhooks."""
        values = _props_input(_object(await _json(request)))
        portal.require("deals", deal_id)
        portal.define_if_missing("deals", values)
        _record, changed = portal.update("deals", deal_id, values)
        return {"dealId": deal_id, "changed": changed, "eventIds": deal_changed(deal_id, changed, "CRM_UI")}

    @app.get("/_sandbox/deals/{deal_id}")
    async def inspect_deal(deal_id: str) -> dict[str, Any]:
        """Every property of the deal and its associated IDs (for tests to check write-backs)."""
        record = portal.require("deals", deal_id)
        return {**record, "associations": {
            t: [r["toObjectId"] for r in portal.associations("deals", deal_id, t)]
            for t in ("companies", "contacts", "line_items")}}

    @app.get("/_sandbox/objects/{object_type_raw}/{object_id}")
    async def inspect_object(object_type_raw: str, object_id: str) -> dict[str, Any]:
        """Every property of any object (companies, contacts, line items)."""
        return portal.require(object_type(object_type_raw), object_id)

    return app


# -- search helpers --------------------------------------------------------------------------------
def _sorts(raw: list[Any]) -> list[tuple[str, bool]]:
    """Sorts as strings (``"prop"``, ``"-prop"``) or objects (``{"propertyName", "direction"}``)."""
    result = []
    for item in raw:
        if isinstance(item, str):
            result.append((item.lstrip("-"), item.startswith("-")))
        elif isinstance(item, dict) and item.get("propertyName"):
            result.append((str(item["propertyName"]), str(item.get("direction", "")).upper() == "DESCENDING"))
        else:
            raise HubSpotError(400, f"Invalid sort {item!r}", "VALIDATION_ERROR")
    return result


def _comparable(value: str | None, prop: dict[str, Any] | None) -> Any:
    if value is None:
        return None
    kind = (prop or {}).get("type")
    if kind in ("date", "datetime"):
        return to_millis(value)
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            return None
    return value.lower()


def _sort_key(record: dict[str, Any], *, prop: str, known: dict[str, dict[str, Any]]) -> tuple[int, Any]:
    value = _comparable(record["properties"].get(prop), known.get(prop))
    return (1, 0) if value is None else (0, value)


def _matches(record: dict[str, Any], groups: list[Any], known: dict[str, dict[str, Any]]) -> bool:
    if not groups:
        return True
    return any(all(_filter(record, f, known) for f in (g.get("filters") or [])) for g in groups
               if isinstance(g, dict))


def _filter(record: dict[str, Any], spec: Any, known: dict[str, dict[str, Any]]) -> bool:
    if not isinstance(spec, dict) or not spec.get("propertyName") or not spec.get("operator"):
        raise HubSpotError(400, "Each filter needs propertyName and operator", "VALIDATION_ERROR")
    name, op = str(spec["propertyName"]), str(spec["operator"]).upper()
    prop = known.get(name)
    raw = record["properties"].get(name)
    if op == "HAS_PROPERTY":
        return raw not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return raw in (None, "")
    have = _comparable(raw, prop)
    if op in ("IN", "NOT_IN"):
        values = [_comparable(str(v), prop) for v in spec.get("values") or []]
        return (have in values) == (op == "IN")
    if op == "CONTAINS_TOKEN":
        token = str(spec.get("value", "")).lower().strip("*")
        return raw is not None and token in raw.lower()
    if op == "NOT_CONTAINS_TOKEN":
        token = str(spec.get("value", "")).lower().strip("*")
        return raw is None or token not in raw.lower()
    want = _comparable(str(spec.get("value", "")), prop)
    if op == "EQ":
        return have == want
    if op == "NEQ":
        return have != want
    if have is None or want is None:
        return False
    if op == "BETWEEN":
        high = _comparable(str(spec.get("highValue", "")), prop)
        return high is not None and want <= have <= high
    comparisons = {"GT": have > want, "GTE": have >= want, "LT": have < want, "LTE": have <= want}
    if op not in comparisons:
        raise HubSpotError(400, f"Unsupported filter operator {op}", "VALIDATION_ERROR")
    return comparisons[op]


__all__ = ["create_app", "hubspot_error", "hubspot_rate_limited", "sign_v1", "sign_v3"]
