"""Business rules on canonical data, free of I/O: which legal entity serves a deal, and whether
a deal needs finance approval."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel

from canonical.deal import Deal, DealLine
from canonical.parties import LegalEntity


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


def choose_entity(entities: list[LegalEntity], *, code: str | None = None, region: str | None = None,
                  currency: str | None = None, country: str | None = None) -> LegalEntity:
    """The legal entity for a deal or line.

    An explicit entity code wins. Otherwise the entity of the region that bills in the deal's
    currency, then the one of the region that serves the customer's country, then the region's only
    entity. Anything ambiguous or unknown is a :class:`RoutingError`, never a guess.
    """
    if code:
        for entity in entities:
            if entity.code == code:
                return entity
        raise RoutingError("legal_entity", f"unknown legal entity {code!r}")
    if not region:
        raise RoutingError("region", "needed to choose the legal entity")
    in_region = [e for e in entities if e.region.upper() == region.upper()]
    if not in_region:
        raise RoutingError("region", f"no legal entity serves region {region!r}")
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


def deal_entity(deal: Deal, entities: list[LegalEntity]) -> LegalEntity:
    country = deal.account.country if deal.account else None
    return choose_entity(entities, code=deal.legal_entity, region=deal.region, currency=deal.currency,
                         country=country)


def line_entity(line: DealLine, deal: Deal, entities: list[LegalEntity], default: LegalEntity) -> LegalEntity:
    return choose_entity(entities, code=line.legal_entity) if line.legal_entity else default


