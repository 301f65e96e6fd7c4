"""``GET /query?q=SOQL`` and ``GET /query/<locator>``: the parsed query run over the org's records, answered in
batches (``Sforce-Query-Options: batchSize=N``, 200..2000, default 2000) with ``nextRecordsUrl`` for the rest.
A query cursor keeps the records the query matched when it ran, as Salesforce's do."""

from __future__ import annotations

import functools
import itertools
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import Request

from sandbox.salesforce.org import API_VERSION, Org, SalesforceError, to_18
from sandbox.salesforce.soql import Comparison, Logical, Order, Query, Resolve, SoqlError, matches, parse, sort_key

DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000
MAX_CURSORS = 200


class Queries:
    """SOQL over the org; open cursors by locator."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.cursors: OrderedDict[str, tuple[list[dict[str, Any]], int]] = OrderedDict()
        self._numbers = itertools.count(1)

    async def query(self, request: Request) -> dict[str, Any]:
        text = request.query_params.get("q")
        if not text:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            query = parse(text)
        except SoqlError as exc:
            raise SalesforceError(400, exc.code, str(exc)) from None
        rows = self.run(query)
        if query.count:
            return {"totalSize": len(rows), "done": True, "records": []}
        return self._page(rows, 0, self._batch_size(request))

    async def more(self, locator: str) -> dict[str, Any]:
        match = re.fullmatch(r"(01g[A-Za-z0-9]+)-(\d+)", locator)
        cursor = self.cursors.get(match.group(1)) if match else None
        if match is None or cursor is None:
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        rows, batch = cursor
        return self._page(rows, int(match.group(2)), batch, match.group(1))

    @staticmethod
    def _batch_size(request: Request) -> int:
        options = request.headers.get("Sforce-Query-Options", "")
        found = re.search(r"batchSize\s*=\s*(\d+)", options)
        return max(MIN_BATCH, min(int(found.group(1)), MAX_BATCH)) if found else DEFAULT_BATCH

    def _page(self, rows: list[dict[str, Any]], start: int, batch: int, cursor: str | None = None
              ) -> dict[str, Any]:
        end = start + batch
        body: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows), "records": rows[start:end]}
        if end < len(rows):
            if cursor is None:
                cursor = f"01g8d{next(self._numbers):010d}"
                self.cursors[cursor] = (rows, batch)
                while len(self.cursors) > MAX_CURSORS:
                    self.cursors.popitem(last=False)
            body["nextRecordsUrl"] = f"/services/data/{API_VERSION}/query/{cursor}-{end}"
        return body

    def run(self, query: Query) -> list[dict[str, Any]]:
        """The rendered rows of a parsed query (filtered, ordered, offset and limited)."""
        sobject = self.org.sobject(query.sobject)

        def resolve(record: dict[str, Any], path: str) -> Any:
            return self.org.resolve(sobject, record, path)

        where = ids_in_18(query.where, lambda path: self.org.path_type(sobject, path) in ("id", "reference"))
        try:
            found = [r for r in self.org.all(sobject) if matches(where, r, resolve)]
            for order in reversed(query.order):
                found.sort(key=functools.partial(_key, order, resolve), reverse=order.descending)
        except SoqlError as exc:
            raise SalesforceError(400, exc.code, str(exc)) from None
        found = found[query.offset:]
        if query.limit is not None:
            found = found[:query.limit]
        return [self.org.render(sobject, r, query.fields) for r in found]


def _key(order: Order, resolve: Resolve, record: dict[str, Any]) -> tuple[int, Any]:
    return sort_key(order, record, resolve)


def ids_in_18(node: Any, is_id: Callable[[str], bool]) -> Any:
    """The WHERE tree with 15-character ID literals of ID fields in their 18-character form (Salesforce accepts
    either in a filter)."""
    def id18(value: Any) -> Any:
        return (to_18(value) or value) if isinstance(value, str) else value

    if isinstance(node, Logical):
        return Logical(node.op, tuple(ids_in_18(p, is_id) for p in node.parts))
    if isinstance(node, Comparison) and node.op != "LIKE" and is_id(node.field):
        value = tuple(id18(v) for v in node.value) if isinstance(node.value, tuple) else id18(node.value)
        return Comparison(node.field, node.op, value)
    return node
