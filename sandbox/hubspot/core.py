"""HubSpot emulator state shared by the route classes (:class:`HubSpotSandbox`: the portal, the deal
webhooks, private-app auth), HubSpot's error and rate-limit shapes, and the request helpers."""

from __future__ import annotations

import hmac
import json
import math
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox.hubspot.crm import APP_ID, HubSpotError, Portal, object_type
from sandbox.hubspot.webhooks import DealWebhooks

_CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
               404: "OBJECT_NOT_FOUND", 409: "CONFLICT", 415: "VALIDATION_ERROR", 423: "LOCKED"}
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


# -- request helpers --------------------------------------------------------------------------------
async def read_json(request: Request) -> Any:
    """The JSON body (empty means ``null``), or HubSpot's 400 for malformed JSON."""
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except json.JSONDecodeError as exc:
        raise HubSpotError(400, f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}",
                           "VALIDATION_ERROR") from exc


def json_object(body: Any, what: str = "request body") -> dict[str, Any]:
    """``body`` if it is a JSON object, else HubSpot's 400."""
    if not isinstance(body, dict):
        raise HubSpotError(400, f"Invalid input JSON: {what} must be an object", "VALIDATION_ERROR")
    return body


def properties_input(body: dict[str, Any]) -> dict[str, Any]:
    """The ``properties`` object of a create or update input."""
    props = body.get("properties")
    if not isinstance(props, dict):
        raise HubSpotError(400, "Invalid input JSON: 'properties' is required and must be an object",
                           "VALIDATION_ERROR", errors=[{"message": "properties is required", "in": "properties"}])
    return props


def query_names(request: Request, key: str) -> list[str]:
    """A list query parameter, given comma-separated and/or repeated."""
    return [n.strip() for raw in request.query_params.getlist(key) for n in raw.split(",") if n.strip()]


def int_param(request: Request, key: str, default: int, maximum: int) -> int:
    """An integer query parameter, clamped to 1..``maximum``."""
    raw = request.query_params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HubSpotError(400, f"Invalid value '{raw}' for query parameter {key}", "VALIDATION_ERROR") from None
    return max(1, min(value, maximum))


def offset(raw: Any) -> int:
    """A paging cursor (``after``): the offset it stands for."""
    if raw in (None, ""):
        return 0
    try:
        return max(0, int(str(raw)))
    except ValueError:
        raise HubSpotError(400, f"Invalid paging cursor: {raw}", "VALIDATION_ERROR") from None


class HubSpotSandbox:
    """Everything the routes share: the portal's records, the deal webhooks and the token check."""

    def __init__(self, app: FastAPI, config: Any, portal: Portal) -> None:
        self.app = app
        self.config = config  # the adapter's settings: its token and client secret
        self.portal = portal
        self.webhooks = DealWebhooks(config.client_secret, app.state.control)

    async def require_token(self, request: Request) -> None:
        """The private app's bearer token, or HubSpot's 401."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not token:
            raise HubSpotError(401, "Authentication credentials not found. This API supports OAuth 2.0 "
                                    "authentication and you can find more details at "
                                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                               "INVALID_AUTHENTICATION")
        if not hmac.compare_digest(token.strip(), self.config.access_token):
            raise HubSpotError(401, "Authentication credentials not found. The access token provided is "
                                    "invalid or has been revoked.", "INVALID_AUTHENTICATION",
                               sub_category="INVALID_TOKEN")

    def with_associations(self, type_name: str, record: dict[str, Any], properties: list[str] | None,
                          assoc_types: list[str]) -> dict[str, Any]:
        """A v3 object read: the record with up to ``app.state.inline_association_limit`` associations inline."""
        portal = self.portal
        body = portal.render(type_name, record, properties)
        limit = self.app.state.inline_association_limit
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
