"""Accounts, contacts and the legal entities we bill from."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator, model_validator

from canonical.money import normalise_currency


class Address(BaseModel):
    """A postal address; every part optional because CRMs rarely have them all."""

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2")


class Contact(BaseModel):
    """A person at the customer (billing contact, signer)."""

    crm_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    role: str | None = Field(default=None, description="e.g. billing, signer")

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or (self.email or "")


class Account(BaseModel):
    """The customer organisation (CRM company, ERP contact, billing customer)."""

    crm_id: str | None = None
    name: str
    domain: str | None = None
    country: str | None = None
    address: Address | None = None
    tax_number: str | None = Field(default=None, description="ERP-owned")
    payment_terms_days: int | None = Field(default=None, description="ERP-owned")
    erp_contact_id: str | None = None
    billing_customer_id: str | None = None
    created_by: str | None = Field(default=None, description="ownership marker the creating run wrote on the "
                                   "ERP or billing record (canonical.refs.ownership_marker), as read back")


class LegalEntity(BaseModel):
    """One of our own legal entities: region, functional currency, tax registration, ERP tenant."""

    code: str = Field(description="short code, e.g. US01, EU01")
    name: str
    region: str = Field(description="sales region it serves, e.g. NA, EMEA, APAC")
    currency: str
    tax_registration: str | None = None
    erp_tenant_id: str = Field(description="the ERP tenant, organisation or subsidiary of this entity")
    countries: list[str] = Field(default_factory=list, description="ISO country codes it serves")
    erp_adapter: str | None = Field(default=None, description="the ERP adapter keeping its books (a registry "
                                    "name); None: the ERP_ADAPTER setting")
    currencies: list[str] = Field(default_factory=list, description="the currencies it may bill (ISO 4217); "
                                  "empty: its own currency only")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return normalise_currency(value)

    @field_validator("currencies")
    @classmethod
    def _currencies(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalise_currency(v) for v in value))

    @model_validator(mode="after")
    def _own_currency_by_default(self) -> LegalEntity:
        if not self.currencies:
            self.currencies = [self.currency]
        return self

    def bills(self, currency: str) -> bool:
        """Whether this entity may bill ``currency`` (a deal in another currency is never routed to it)."""
        return currency.strip().upper() in self.currencies
