"""Business rules on canonical data, free of I/O: which legal entity serves a deal, and whether
a deal needs finance approval."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from pydantic import BaseModel

from canonical.deal import Deal, DealLine
from canonical.money import minor_unit
from canonical.parties import LegalEntity
from canonical.systems import System


class ApprovalPolicy(BaseModel):
    """Thresholds above which a deal needs finance approval (amounts in the deal currency)."""

    max_discount_percent: Decimal = Decimal(15)
    max_amount: Decimal = Decimal(100000)
    standard_payment_terms_days: int = 30


def approval_reasons(deal: Deal, policy: ApprovalPolicy) -> list[str]:
    """Why this deal needs finance, or an empty list when it may go straight to contract."""
    reasons: list[str] = []
    discount = deal.max_discount_percent()
    if discount > policy.max_discount_percent:
        reasons.append(f"discount {discount}% exceeds {policy.max_discount_percent}%")
    if deal.currency and deal.lines:
        total = deal.total()
        if total.amount > policy.max_amount:
            reasons.append(f"amount {total} exceeds {policy.max_amount} {total.currency}")
    if deal.payment_terms_days is not None and deal.payment_terms_days > policy.standard_payment_terms_days:
        reasons.append(f"payment terms {deal.payment_terms_days} days exceed the standard "
                       f"{policy.standard_payment_terms_days}")
    if deal.non_standard_terms:
        reasons.append("non-standard terms flagged on the deal")
    return reasons


class RoutingError(ValueError):
    """No legal entity fits; ``field`` names what to fix on the deal."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _refusal(entity: LegalEntity, currency: str, erps: Mapping[str, System] | None) -> str | None:
    """Why ``entity`` cannot hold a deal in ``currency`` (None when it can)."""
    if not entity.bills(currency):
        return f"legal entity {entity.code} bills {', '.join(entity.currencies)}, not {currency}"
    erp = (erps or {}).get(entity.code)
    if erp is not None and not erp.holds(currency):
        return (f"legal entity {entity.code}'s {erp.label} keeps {erp.money_decimals} decimals; {currency} has "
                f"{minor_unit(currency)} decimals and would be rounded")
    return None


def choose_entity(entities: list[LegalEntity], *, code: str | None = None, region: str | None = None,
                  currency: str | None = None, country: str | None = None,
                  erps: Mapping[str, System] | None = None) -> LegalEntity:
    """The legal entity for a deal or line.

    An explicit entity code wins. Otherwise the entity of the region that bills in the deal's
    currency, then the one of the region that serves the customer's country, then the region's only
    entity. Anything ambiguous or unknown is a :class:`RoutingError`, never a guess. With a currency,
    only an entity that bills it, in an ERP (``erps``: entity code -> its ERP) that keeps its minor unit,
    may hold the deal: otherwise the error names the currency, so the amount is never rounded on the way.
    """
    if code:
        for entity in entities:
            if entity.code == code:
                refused = _refusal(entity, currency, erps) if currency else None
                if refused:
                    raise RoutingError("currency", refused)
                return entity
        raise RoutingError("legal_entity", f"unknown legal entity {code!r}")
    if not region:
        raise RoutingError("region", "needed to choose the legal entity")
    in_region = [e for e in entities if e.region.upper() == region.upper()]
    if not in_region:
        raise RoutingError("region", f"no legal entity serves region {region!r}")
    if currency:
        refusals = {e.code: _refusal(e, currency, erps) for e in in_region}
        if all(refusals.values()):
            raise RoutingError("currency", f"no legal entity of region {region!r} can hold {currency}: "
                               + "; ".join(r for r in refusals.values() if r))
        in_region = [e for e in in_region if not refusals[e.code]]
    by_currency = [e for e in in_region if currency and e.currency == currency]
    if len(by_currency) == 1:
        return by_currency[0]
    by_country = [e for e in in_region if country and country.upper() in e.countries]
    if len(by_country) == 1:
        return by_country[0]
    if len(in_region) == 1:
        return in_region[0]
    raise RoutingError("legal_entity", f"region {region!r} has several entities "
                       f"({', '.join(e.code for e in in_region)}); set the entity or a matching currency")


def deal_entity(deal: Deal, entities: list[LegalEntity], erps: Mapping[str, System] | None = None) -> LegalEntity:
    """The deal's main legal entity; every line delivered by another entity is checked for the deal's
    currency too, so a deal no entity can hold waits in a data exception instead of failing later."""
    country = deal.account.country if deal.account else None
    entity = choose_entity(entities, code=deal.legal_entity, region=deal.region, currency=deal.currency,
                           country=country, erps=erps)
    for line in deal.lines:
        if line.legal_entity:
            try:
                line_entity(line, deal, entities, entity, erps)
            except RoutingError as exc:
                raise RoutingError(f"line_items[{line.product_code}].legal_entity", exc.reason) from exc
    return entity


def line_entity(line: DealLine, deal: Deal, entities: list[LegalEntity], default: LegalEntity,
                erps: Mapping[str, System] | None = None) -> LegalEntity:
    """The entity delivering ``line``: its own entity code when it names one, else the deal's ``default``."""
    if not line.legal_entity:
        return default
    return choose_entity(entities, code=line.legal_entity, currency=deal.currency, erps=erps)
