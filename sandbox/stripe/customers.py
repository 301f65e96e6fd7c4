"""``/v1/customers``: create, list, search (Stripe's query language, the subset used here), read, update, delete."""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.kit import new_id
from sandbox.stripe.core import Emulator
from sandbox.stripe.objects import Params, address, bad, customer_object, merge_metadata, missing

CUSTOMER_FIELDS = {"address", "balance", "description", "email", "invoice_prefix", "metadata", "name", "phone",
                   "preferred_locales", "tax_exempt"}


class Customers:
    """The customer routes over the shared :class:`Emulator`."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store

    def register(self, router: APIRouter) -> None:
        """Add the routes to ``router`` (behind the API key check)."""
        router.post("/v1/customers")(self.create_customer)
        router.get("/v1/customers")(self.list_customers)
        router.get("/v1/customers/search")(self.search_customers)
        router.get("/v1/customers/{customer_id}")(self.get_customer)
        router.post("/v1/customers/{customer_id}")(self.update_customer)
        router.delete("/v1/customers/{customer_id}")(self.delete_customer)

    async def create_customer(self, request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, CUSTOMER_FIELDS)
            prefix = secrets.token_hex(4).upper()
            return self.emu.save(customer_object(new_id("cus_", self.store), p, prefix))
        return await self.emu.mutate(request, handler)

    async def list_customers(self, request: Request) -> dict[str, Any]:
        return self.emu.listing(request, "customer", "/v1/customers", {"email": "email"})

    async def search_customers(self, request: Request) -> dict[str, Any]:
        q = self.emu.query(request)
        p = Params(q, {"query", "limit", "page"})
        clauses = parse_search(p.str("query", required=True) or "")
        matches = [c for c in self.emu.newest_first("customer") if search_matches(c, clauses)]
        limit = p.int("limit") or 10
        token = p.str("page")
        try:
            offset = int(base64.urlsafe_b64decode(token).decode()) if token else 0
        except ValueError as exc:
            raise bad("Invalid page token.", "page") from exc
        page = matches[offset: offset + limit]
        more = offset + limit < len(matches)
        return {"object": "search_result", "data": page, "has_more": more, "total_count": len(matches),
                "next_page": base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None,
                "url": "/v1/customers/search"}

    async def get_customer(self, customer_id: str) -> dict[str, Any]:
        obj = self.store.get("customer", customer_id)
        if obj is None:
            raise missing("customer", customer_id)
        return obj  # a deleted customer is still retrievable as ``{"deleted": true}``

    async def update_customer(self, request: Request, customer_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, CUSTOMER_FIELDS - {"invoice_prefix"})
            obj = self.emu.get("customer", customer_id)
            for name in ("description", "email", "name", "phone"):
                if name in p:
                    obj[name] = p.str(name)
            if "address" in p:
                obj["address"] = address(p.raw("address"))
            if "tax_exempt" in p:  # billing's tax treatment of the customer: later invoices carry it
                obj["tax_exempt"] = p.enum("tax_exempt", ("none", "exempt", "reverse"), default="none")
            obj["metadata"] = merge_metadata(obj["metadata"], p.metadata(), p.raw("metadata"))
            return self.emu.save(obj)
        return await self.emu.mutate(request, handler)

    async def delete_customer(self, customer_id: str) -> dict[str, Any]:
        self.emu.get("customer", customer_id)
        self.store.put("customer", customer_id, {"id": customer_id, "object": "customer", "deleted": True})
        return {"id": customer_id, "object": "customer", "deleted": True}



# -- search ------------------------------------------------------------------------------------------
_CLAUSE = re.compile(r"""\s*(-?)(metadata\[['"]([^'"]+)['"]\]|[a-z_]+)\s*([:~])\s*(['"])((?:\\.|(?!\5).)*)\5\s*""")


def parse_search(text: str) -> tuple[str, list[tuple[bool, str, str | None, str, str]]]:
    """Stripe's search syntax, the subset used here: ``field:'v'``, ``field~'v'``, ``metadata['k']:'v'``,
    negation with ``-``, and clauses joined by all-``AND`` or all-``OR``."""
    clauses: list[tuple[bool, str, str | None, str, str]] = []
    joins: set[str] = set()
    pos = 0
    while pos < len(text):
        match = _CLAUSE.match(text, pos)
        if not match:
            raise bad(f"There was an error parsing your query at position {pos}: {text[pos:pos + 20]!r}", "query")
        negate, field_name, meta_key, op, _quote, value = match.groups()
        value = re.sub(r"\\(.)", r"\1", value)  # Stripe escapes quotes in values with a backslash
        field_name = "metadata" if meta_key else field_name
        if field_name not in ("email", "name", "phone", "metadata", "description"):
            raise bad(f"Field '{field_name}' is an unsupported search field for resource customers.", "query")
        clauses.append((negate == "-", field_name, meta_key, op, value))
        pos = match.end()
        join = re.match(r"(AND|OR)\s+", text[pos:])
        if join:
            joins.add(join.group(1))
            pos += join.end()
    if len(joins) > 1:
        raise bad("Combining AND and OR clauses in one query is not supported.", "query")
    if not clauses:
        raise bad("Missing required param: query.", "query", "parameter_missing")
    return ("OR" if joins == {"OR"} else "AND", clauses)


def search_matches(obj: dict[str, Any], query: tuple[str, list[tuple[bool, str, str | None, str, str]]]) -> bool:
    mode, clauses = query
    results = []
    for negate, field_name, meta_key, op, value in clauses:
        actual = (obj.get("metadata") or {}).get(meta_key or "") if field_name == "metadata" else obj.get(field_name)
        if actual is None:
            hit = False
        elif op == "~":
            hit = value.lower() in str(actual).lower()
        else:
            hit = str(actual) == value if field_name == "metadata" else str(actual).lower() == value.lower()
        results.append(hit != negate)
    return any(results) if mode == "OR" else all(results)
