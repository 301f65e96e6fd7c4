"""``/public/api/v1/records``: the records of executed contracts (with their amendments)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sandbox.ironclad.core import API, IroncladSandbox, filter_terms, ironclad_error, page_of, pagination

_SORT_FIELDS = ("agreementDate", "name", "lastUpdated")


def _instant(value: str | None) -> datetime | Response | None:
    """An ISO 8601 UTC time (``2018-03-10T00:00:00.000Z``), or Ironclad's 400."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ironclad_error(400, f"lastUpdated must be an ISO 8601 date, got {value}", param="lastUpdated")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _updated(record: dict[str, Any]) -> datetime:
    moment = _instant(record.get("lastUpdated"))
    return moment if isinstance(moment, datetime) else datetime.min.replace(tzinfo=UTC)


def _order(request: Request) -> tuple[str, bool] | Response | None:
    """``sortField`` and ``sortDirection`` (DESC unless ASC), when a sort was asked for."""
    field_name = request.query_params.get("sortField")
    direction = (request.query_params.get("sortDirection") or "DESC").upper()
    if field_name is None:
        return None
    if field_name not in _SORT_FIELDS:
        return ironclad_error(400, f"sortField must be one of {', '.join(_SORT_FIELDS)}", param="sortField")
    if direction not in ("ASC", "DESC"):
        return ironclad_error(400, "sortDirection must be ASC or DESC", param="sortDirection")
    return field_name, direction == "DESC"


def _sort_value(record: dict[str, Any], field_name: str) -> str:
    if field_name == "name":
        return str(record.get("name") or "")
    if field_name == "lastUpdated":
        return str(record.get("lastUpdated") or "")
    return str((record["properties"].get("agreementDate") or {}).get("value") or "")


class Records:
    """The record routes over the shared :class:`IroncladSandbox`."""

    def __init__(self, sandbox: IroncladSandbox) -> None:
        self.sandbox = sandbox

    def register(self, app: FastAPI) -> None:
        """Add the routes to ``app``."""
        app.get(f"{API}/records")(self.list_records)
        app.get(f"{API}/records/{{record_id}}")(self.get_record)

    async def list_records(self, request: Request) -> Response:
        if (denied := self.sandbox.authorize(request)) is not None:
            return denied
        paging, terms = pagination(request), filter_terms(request)
        if isinstance(paging, Response):
            return paging
        if isinstance(terms, Response):
            return terms
        types = {t for t in (request.query_params.get("types") or "").split(",") if t}
        since = _instant(request.query_params.get("lastUpdated"))
        if isinstance(since, Response):
            return since
        order = _order(request)
        if isinstance(order, Response):
            return order

        def matches(r: dict[str, Any]) -> bool:
            return ((not types or r["type"] in types)
                    and (since is None or _updated(r) >= since)
                    and all(str(r["properties"].get(k, {}).get("value")) == v for k, v in terms))

        found = self.sandbox.store.list("record", where=matches)
        if order is not None:
            field_name, descending = order
            found.sort(key=lambda r: _sort_value(r, field_name), reverse=descending)
        return JSONResponse(page_of(found, *paging))

    async def get_record(self, record_id: str, request: Request) -> Response:
        if (denied := self.sandbox.authorize(request)) is not None:
            return denied
        record = self.sandbox.find_record(record_id)
        if record is None:
            return ironclad_error(404, f"couldn't find a record matching the id {record_id}", param="id")
        return JSONResponse(record)
