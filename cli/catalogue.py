"""``starter.py catalogue sync``: the billing system's products and prices against the product catalogue.

    python starter.py catalogue sync [--apply] [--json]

Reports drift (``canonical.catalogue.catalogue_drift``): catalogue prices billing lacks (missing), prices under
a catalogue key at another amount or interval (price differs), archived ones, and prices for SKUs the catalogue
does not list (unknown, including deals priced without the catalogue). ``--apply`` creates the missing ones
(found or created once: safe to repeat); the rest is for a person to decide. Exit 0 in step, 1 drift remains.
"""

from __future__ import annotations

import argparse
from typing import Any

from bootstrap import CliParts
from canonical.catalogue import CatalogueDrift, DriftKind, catalogue_drift
from cli import process as cli
from connectors.ports import BillingCatalogue


async def cmd_catalogue(app: CliParts, args: argparse.Namespace) -> int:
    catalogue = app.settings.product_catalogue()
    billing = app.billing()
    if not isinstance(billing, BillingCatalogue):
        raise cli.CliError(f"the billing adapter {getattr(billing, 'vendor', '?')} keeps no product catalogue")
    drift = catalogue_drift(catalogue, await billing.catalogue_prices())
    created: list[dict[str, str]] = []
    if args.apply:
        for missing in (d for d in drift if d.kind is DriftKind.MISSING):
            entry = next(e for e in catalogue.entries() if e.key == missing.key)
            price_id = await billing.ensure_catalogue_price(catalogue.items[entry.sku], entry)
            created.append({"sku": entry.sku, "key": entry.key, "price_id": price_id})
        if created:
            drift = catalogue_drift(catalogue, await billing.catalogue_prices())
    if args.json:
        cli.emit_json({"in_step": not drift, "created": created, "drift": drift})
    else:
        for made in created:
            cli.line(f"created {made['key']}: {made['price_id']}")
        for d in drift:
            cli.line(_line(d))
        cli.line(f"{len(catalogue.items)} SKUs, {len(catalogue.entries())} catalogue prices: "
                 + ("in step" if not drift else f"{len(drift)} drift"))
    return cli.OK if not drift else cli.REFUSED


def _line(d: CatalogueDrift) -> str:
    where = d.key or d.sku
    return f"{d.kind.value:<14} {where}{f' ({d.price_id})' if d.price_id else ''}: {d.detail}"


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("catalogue", help="the product catalogue against the billing system")
    verbs = s.add_subparsers(dest="catalogue_command", required=True, metavar="action")
    sync = verbs.add_parser("sync", help="report drift between the catalogue and billing's products and prices; "
                            "exit 1 on drift")
    sync.add_argument("--apply", action="store_true", help="create the catalogue prices billing lacks")
    sync.add_argument("--json", action="store_true")


COMMANDS = {"catalogue": cmd_catalogue}

__all__ = ["COMMANDS", "add_parsers", "cmd_catalogue"]
