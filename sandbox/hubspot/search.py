"""CRM objects v3 search: filter groups, sorts and paging, as HubSpot's search endpoint answers them."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Request

from sandbox.hubspot.core import HubSpotSandbox, json_object, offset, read_json
from sandbox.hubspot.crm import MAX_SEARCH_LIMIT, MAX_SEARCH_RESULTS, HubSpotError, object_type, to_millis


class Search:
    """``POST /crm/v3/objects/{objectType}/search`` over the shared :class:`HubSpotSandbox`."""

    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.portal = sandbox.portal

    def register(self, api: APIRouter) -> None:
        """Add the route to ``api`` (the router behind the token check)."""
        api.post("/crm/v3/objects/{object_type_raw}/search")(self.search)

    async def search(self, object_type_raw: str, request: Request) -> dict[str, Any]:
        portal = self.portal
        type_name = object_type(object_type_raw)
        body = json_object(await read_json(request))
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or limit < 0 or limit > MAX_SEARCH_LIMIT:
            raise HubSpotError(400, f"limit must be an integer between 0 and {MAX_SEARCH_LIMIT}",
                               "VALIDATION_ERROR", errors=[{"message": "invalid limit", "in": "limit"}])
        start = offset(body.get("after"))
        if start + limit > MAX_SEARCH_RESULTS:
            raise HubSpotError(400, f"The search API returns at most {MAX_SEARCH_RESULTS} results per query; "
                                    "narrow the filters instead of paging further", "VALIDATION_ERROR")
        known = portal.properties(type_name)
        groups = body.get("filterGroups") or []
        matches = portal.all(type_name, where=lambda o: _matches(o, groups, known))
        for prop, descending in reversed(_sorts(body.get("sorts") or [])):
            matches.sort(key=functools.partial(_sort_key, prop=prop, known=known), reverse=descending)
        page = matches[start:start + limit]
        props = [p for p in body.get("properties") or [] if isinstance(p, str)] or None
        # Search always returns the object ID, create date and last-modified date.
        always = ["hs_object_id", "createdate", "lastmodifieddate" if type_name == "contacts"
                  else "hs_lastmodifieddate"]
        result: dict[str, Any] = {"total": len(matches),
                                  "results": [portal.render(type_name, o, props, always=always) for o in page]}
        if start + limit < len(matches) and limit:
            result["paging"] = {"next": {"after": str(start + limit)}}
        return result


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
