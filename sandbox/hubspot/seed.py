"""Demo and test deals for the HubSpot emulator: what a salesperson leaves in the CRM, as the payload of
``POST /_sandbox/seed/deal`` (HubSpot property names)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Line:
    sku: str
    name: str
    quantity: str = "1"
    price: str = "1000.00"
    discount: str = "0"
    model: str | None = None
    frequency: str | None = None
    entity: str | None = None

    def properties(self) -> dict[str, str]:
        props = {"hs_sku": self.sku, "name": self.name, "quantity": self.quantity, "price": self.price,
                 "hs_discount_percentage": self.discount}
        if self.model:
            props["revops_billing_model"] = self.model
        if self.frequency:
            props["recurringbillingfrequency"] = self.frequency
        if self.entity:
            props["revops_legal_entity"] = self.entity
        return props


LINES_BY_MODEL: dict[str, list[Line]] = {
    "subscription": [Line("PLAT-PRO", "Platform Pro seats", quantity="20", price="45.00", model="subscription",
                          frequency="monthly")],
    "milestone": [Line("MS-DESIGN", "Design phase", price="12000.00", model="milestone"),
                  Line("MS-BUILD", "Build phase", price="18000.00", model="milestone")],
    "time_and_materials": [Line("TM-CONSULTANT", "Consultant", quantity="120", price="150.00",
                                model="time_and_materials"),
                           Line("TM-ARCHITECT", "Architect", quantity="40", price="210.00",
                                model="time_and_materials")],
    "retainer": [Line("RET-SUPPORT", "Support retainer", quantity="1", price="2500.00", model="retainer",
                      frequency="monthly")],
    "fixed_fee": [Line("FF-SETUP", "Implementation (fixed fee)", price="9500.00", model="fixed_fee")],
}


@dataclass
class DealSpec:
    """What to seed; drop a key from ``omit`` to leave that field empty in the CRM."""

    model: str = "subscription"
    region: str | None = "NA"
    currency: str | None = "USD"
    country: str = "US"
    entity: str | None = None
    start_date: str | None = "2027-01-01"
    end_date: str | None = "2027-12-31"
    payment_terms: str | None = "30"
    non_standard: bool = False
    lines: list[Line] | None = None
    with_contact: bool = True
    stage: str = "contractsent"
    owner: str | None = None
    name: str = field(default_factory=lambda: f"Deal {uuid.uuid4().hex[:6]}")
    company: str = field(default_factory=lambda: f"Acme {uuid.uuid4().hex[:8]} GmbH")

    def payload(self) -> dict[str, Any]:
        lines = self.lines if self.lines is not None else LINES_BY_MODEL[self.model]
        deal: dict[str, str] = {"dealname": self.name, "dealstage": self.stage, "pipeline": "default"}
        optional = {"deal_currency_code": self.currency, "revops_region": self.region,
                    "revops_legal_entity": self.entity, "revops_start_date": self.start_date,
                    "revops_end_date": self.end_date, "revops_payment_terms_days": self.payment_terms,
                    "revops_billing_model": self.model, "hubspot_owner_id": self.owner}
        deal.update({k: v for k, v in optional.items() if v})
        deal["revops_non_standard_terms"] = "true" if self.non_standard else "false"
        domain = self.company.split()[1] + ".example.com"
        contacts = [{"firstname": "Bea", "lastname": "Biller", "email": f"billing@{domain}",
                     "revops_contact_role": "billing"}] if self.with_contact else []
        return {"deal": deal, "company": {"name": self.company, "domain": domain, "country": self.country},
                "contacts": contacts, "line_items": [line.properties() for line in lines]}
