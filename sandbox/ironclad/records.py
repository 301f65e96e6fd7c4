"""``/public/api/v1/records``: the records of executed contracts (with their amendments)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sandbox.ironclad.core import API, IroncladSandbox, filter_terms, ironclad_error, page_of, pagination


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

        def matches(r: dict[str, Any]) -> bool:
            return ((not types or r["type"] in types)
                    and all(str(r["properties"].get(k, {}).get("value")) == v for k, v in terms))

        return JSONResponse(page_of(self.sandbox.store.list("record", where=matches), *paging))

    async def get_record(self, record_id: str, request: Request) -> Response:
        if (denied := self.sandbox.authorize(request)) is not None:
            return denied
        record = self.sandbox.find_record(record_id)
        if record is None:
            return ironclad_error(404, f"couldn't find a record matching the id {record_id}", param="id")
        return JSONResponse(record)
