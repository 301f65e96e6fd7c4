"""``/v1/products`` and ``/v1/prices``: the catalogue subscriptions and invoice items are priced from."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.kit import new_id
from sandbox.stripe.core import Emulator
from sandbox.stripe.objects import Params, bad, currency, merge_metadata, now, product_object, to_int


class Products:
    """The product routes over the shared :class:`Emulator`."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store

    def register(self, router: APIRouter) -> None:
        """Add the routes to ``router`` (behind the API key check)."""
        router.post("/v1/products")(self.create_product)
        router.get("/v1/products")(self.list_products)
        router.get("/v1/products/{product_id}")(self.get_product)
        router.post("/v1/products/{product_id}")(self.update_product)

    async def create_product(self, request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"active", "description", "id", "metadata", "name", "unit_label"})
            pid = p.str("id") or new_id("prod_", self.store)
            if self.store.get("product", pid) is not None:
                raise bad("Product already exists.", "id", "resource_already_exists")
            return self.emu.save(product_object(pid, p))
        return await self.emu.mutate(request, handler)

    async def list_products(self, request: Request) -> dict[str, Any]:
        return self.emu.listing(request, "product", "/v1/products", {"active": ""},
                       where=lambda o, q: "active" not in q or str(o["active"]).lower() == q["active"])

    async def get_product(self, product_id: str) -> dict[str, Any]:
        return self.emu.get("product", product_id)

    async def update_product(self, request: Request, product_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"active", "description", "metadata", "name", "unit_label"})
            obj = self.emu.get("product", product_id)
            if (active := p.bool("active")) is not None:
                obj["active"] = active
            for name in ("description", "name", "unit_label"):
                if name in p:
                    obj[name] = p.str(name)
            obj["metadata"] = merge_metadata(obj["metadata"], p.metadata(), p.raw("metadata"))
            obj["updated"] = now()
            return self.emu.save(obj)
        return await self.emu.mutate(request, handler)


class Prices:
    """The price routes over the shared :class:`Emulator`."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store

    def register(self, router: APIRouter) -> None:
        """Add the routes to ``router`` (behind the API key check)."""
        router.post("/v1/prices")(self.create_price)
        router.get("/v1/prices")(self.list_prices)
        router.get("/v1/prices/{price_id}")(self.get_price)
        router.post("/v1/prices/{price_id}")(self.update_price)

    async def create_price(self, request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"active", "currency", "lookup_key", "metadata", "nickname", "product",
                              "product_data", "recurring", "tax_behavior", "transfer_lookup_key", "unit_amount",
                              "unit_amount_decimal"})
            code = currency(p.str("currency", required=True))
            self._claim_lookup_key(p.str("lookup_key"), transfer=p.bool("transfer_lookup_key") is True)
            product = p.str("product")
            if product is None:
                product_data = p.raw("product_data")
                if not isinstance(product_data, dict) or not product_data.get("name"):
                    raise bad("You must specify either product or product_data.", "product",
                              "parameter_missing")
                product = self.emu.save(product_object(new_id("prod_", self.store), Params(
                    product_data, {"name", "metadata", "active", "unit_label"})))["id"]
            amount = p.int("unit_amount", minimum=0)
            if amount is None:
                decimal = p.str("unit_amount_decimal")
                if decimal is None or not re.fullmatch(r"\d+", decimal):
                    raise bad("Missing required param: unit_amount.", "unit_amount", "parameter_missing")
                amount = int(decimal)
            return self.emu.new_price(product=product, currency_code=code, unit_amount=amount,
                             recurring=recurring_of(p.raw("recurring"), "recurring"),
                             metadata=p.metadata() or {}, nickname=p.str("nickname"),
                             active=p.bool("active") is not False, lookup_key=p.str("lookup_key"))
        return await self.emu.mutate(request, handler)

    def _claim_lookup_key(self, key: str | None, *, transfer: bool, owner: str | None = None) -> None:
        """A lookup key names one price in the account (archived ones included): another holder is refused,
        or loses it when ``transfer_lookup_key`` is true."""
        if not key:
            return
        for held in self.store.list("price", where=lambda o: o.get("lookup_key") == key and o["id"] != owner):
            if not transfer:
                raise bad(f"A price (`{held['id']}`) already uses that lookup key.", "lookup_key")
            held["lookup_key"] = None
            self.emu.save(held)

    async def list_prices(self, request: Request) -> dict[str, Any]:
        def where(obj: dict[str, Any], q: dict[str, Any]) -> bool:
            if "active" in q and str(obj["active"]).lower() != q["active"]:
                return False
            if "lookup_keys" in q:
                wanted = q["lookup_keys"]
                keys = wanted.values() if isinstance(wanted, dict) else wanted if isinstance(wanted, list) else [wanted]
                if obj.get("lookup_key") not in {str(k) for k in keys}:
                    return False
            return "type" not in q or obj["type"] == q["type"]
        return self.emu.listing(request, "price", "/v1/prices", {"product": "product", "currency": "currency",
                                                         "active": "", "lookup_keys": "", "type": ""},
                                where=where)

    async def get_price(self, price_id: str) -> dict[str, Any]:
        return self.emu.get("price", price_id)

    async def update_price(self, request: Request, price_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"active", "lookup_key", "metadata", "nickname", "tax_behavior", "transfer_lookup_key"})
            obj = self.emu.get("price", price_id)
            if "lookup_key" in p:
                key = p.str("lookup_key") or None
                self._claim_lookup_key(key, transfer=p.bool("transfer_lookup_key") is True, owner=price_id)
                obj["lookup_key"] = key
            if (active := p.bool("active")) is not None:
                obj["active"] = active
            if "nickname" in p:
                obj["nickname"] = p.str("nickname")
            obj["metadata"] = merge_metadata(obj["metadata"], p.metadata(), p.raw("metadata"))
            return self.emu.save(obj)
        return await self.emu.mutate(request, handler)


def recurring_of(value: Any, param: str) -> dict[str, Any] | None:
    """A price's ``recurring`` hash checked as Stripe checks it (``param`` names it in errors)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad("Invalid recurring: must be a hash", param)
    unknown = set(value) - {"interval", "interval_count", "usage_type"}
    if unknown:
        key = sorted(unknown)[0]
        raise bad(f"Received unknown parameter: {param}[{key}]", f"{param}[{key}]", "parameter_unknown")
    interval = value.get("interval")
    if interval not in ("day", "week", "month", "year"):
        raise bad("Invalid interval: must be one of day, week, month, or year", f"{param}[interval]")
    count = to_int(value.get("interval_count", "1"), f"{param}[interval_count]", minimum=1)
    if (interval == "month" and count > 12) or (interval == "year" and count > 1):
        raise bad("The maximum billing frequency is one year.", f"{param}[interval_count]")
    return {"interval": interval, "interval_count": count}

