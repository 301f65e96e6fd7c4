"""The books: which ledger account and tax code every ERP line of a legal entity uses (vendor-neutral).

One :class:`EntityBooks` per legal entity (settings ``BOOKS_MAPPING``): product or product family -> revenue
account, tax code per customer tax status and region, bank account per currency, the bad-debt account. The
codes are the ERP's own (a Xero account code and tax type, a NetSuite internal ID): this module only looks
them up. A line nothing maps is :class:`MissingMapping` (a visible data exception for a person), never a
default account.

Credit notes and write-offs reverse the lines they credit (:func:`credit_postings`): the credited amount is
shared over the original lines by their gross, and each share split into net and tax in the line's own
ratio, with the line's tax code (and its account, or the bad-debt account for a write-off).
"""

from __future__ import annotations

from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, Field, field_validator

from canonical.billing import Invoice, TaxStatus
from canonical.money import Money, minor_unit, normalise_currency

#: a revenue rule for every product not matched more precisely (an explicit choice in the settings)
ANY = "*"


class RevenueRule(BaseModel):
    """Product code ``SKU-1``, product family ``SKU-*`` (a prefix) or ``*`` -> revenue account."""

    product: str = Field(min_length=1)
    account: str = Field(min_length=1)

    def matches(self, product_code: str) -> bool:
        if self.product.endswith(ANY):
            return product_code.startswith(self.product[:-1])
        return product_code == self.product


class TaxRule(BaseModel):
    """Customer tax status and region (ISO country of the customer, or ``*``) -> the ERP's tax code."""

    status: TaxStatus
    region: str = ANY
    tax_code: str = Field(min_length=1)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return value.strip().upper()


class MissingMapping(ValueError):
    """No rule maps this line: a person adds the mapping (``BOOKS_MAPPING``) and the posting is retried."""

    def __init__(self, entity: str, what: str) -> None:
        super().__init__(f"no {what} in the books mapping of {entity}")
        self.entity = entity
        self.what = what


class EntityBooks(BaseModel):
    """One legal entity's books: its rules and the ERP codes it declares (its chart and tax rates)."""

    entity: str = Field(description="legal entity code, e.g. UK01")
    revenue: list[RevenueRule] = Field(description="first exact product, then the longest family, then `*`")
    tax: list[TaxRule] = Field(description="first the customer's country, then `*`")
    bank: dict[str, str] = Field(description="currency -> bank or clearing account payments go to")
    bad_debt_account: str = Field(description="written-off invoices' net goes here (their tax is reversed)")
    accounts: list[str] = Field(description="the chart of accounts the rules may name")
    tax_codes: list[str] = Field(description="the tax codes the rules may name")

    @field_validator("bank")
    @classmethod
    def _bank(cls, value: dict[str, str]) -> dict[str, str]:
        return {normalise_currency(k): v for k, v in value.items()}

    def revenue_account(self, product_code: str | None) -> str:
        code = product_code or ""
        exact = [r for r in self.revenue if not r.product.endswith(ANY) and r.matches(code)]
        families = sorted((r for r in self.revenue if r.product.endswith(ANY) and r.matches(code)),
                          key=lambda r: len(r.product), reverse=True)
        for rule in exact + families:
            return rule.account
        raise MissingMapping(self.entity, f"revenue account for product {code or '(none)'}")

    def tax_code(self, status: TaxStatus, country: str | None) -> str:
        region = (country or "").strip().upper()
        for wanted in ([region] if region else []) + [ANY]:
            for rule in self.tax:
                if rule.status is status and rule.region == wanted:
                    return rule.tax_code
        raise MissingMapping(self.entity, f"tax code for {status.value} customers in {region or 'no country'}")

    def bank_account(self, currency: str) -> str:
        account = self.bank.get(normalise_currency(currency))
        if account is None:
            raise MissingMapping(self.entity, f"bank account for {normalise_currency(currency)}")
        return account

    def problems(self) -> list[str]:
        """Every code a rule names that the entity does not declare, naming the entity and the product."""
        found = []
        accounts, codes = set(self.accounts), set(self.tax_codes)
        found += [f"{self.entity}: product {r.product} maps to unknown account {r.account}"
                  for r in self.revenue if r.account not in accounts]
        found += [f"{self.entity}: {r.status.value} customers in {r.region} map to unknown tax code {r.tax_code}"
                  for r in self.tax if r.tax_code not in codes]
        found += [f"{self.entity}: {currency} payments map to unknown account {account}"
                  for currency, account in self.bank.items() if account not in accounts]
        if self.bad_debt_account not in accounts:
            found.append(f"{self.entity}: write-offs map to unknown account {self.bad_debt_account}")
        return found


class LedgerCodes(BaseModel):
    """What an ERP tenant holds: its active account codes and the tax codes it may apply to revenue."""

    accounts: list[str] = Field(default_factory=list)
    tax_codes: list[str] = Field(default_factory=list)


def chart_problems(books: EntityBooks, held: LedgerCodes) -> list[str]:
    """The entity's rules checked against what its ERP holds (not only against what the mapping declares)."""
    return books.model_copy(update={"accounts": held.accounts, "tax_codes": held.tax_codes}).problems()


class BooksMapping(BaseModel):
    """Every legal entity's books."""

    entities: list[EntityBooks] = Field(default_factory=list)

    def of(self, entity: str) -> EntityBooks:
        for books in self.entities:
            if books.entity == entity:
                return books
        raise MissingMapping(entity, "books (no entry for the entity)")

    def problems(self, entity_codes: list[str]) -> list[str]:
        """What makes the mapping unusable for ``entity_codes``: an entity without books, an unknown code."""
        held = [b.entity for b in self.entities]
        found = [f"{code}: no books mapping" for code in entity_codes if code not in held]
        found += [f"{code}: mapped more than once" for code in dict.fromkeys(held) if held.count(code) > 1]
        return found + [p for books in self.entities for p in books.problems()]


class PostingLine(BaseModel):
    """One ERP line: net and tax (same currency), the account and tax code it is booked to."""

    description: str
    net: Money
    tax: Money
    account: str
    tax_code: str
    product_code: str | None = None
    quantity: Decimal = Decimal(1)
    unit_amount: Money | None = Field(default=None, description="None: one unit of the net")

    @property
    def gross(self) -> Money:
        return Money(amount=self.net.amount + self.tax.amount, currency=self.net.currency)


def invoice_postings(books: EntityBooks, invoice: Invoice) -> list[PostingLine]:
    """Each invoice line with its revenue account and the tax code of the customer's status and country."""
    code = books.tax_code(invoice.customer_tax_status, invoice.customer_country)
    postings = []
    for line in invoice.lines:
        tax = sum((t.amount.amount for t in line.taxes), Decimal(0))
        postings.append(PostingLine(
            description=line.description, net=line.amount, tax=Money(amount=tax, currency=line.amount.currency),
            account=books.revenue_account(line.product_code), tax_code=code, product_code=line.product_code,
            quantity=line.quantity, unit_amount=line.unit_amount))
    return postings


def booking_differences(books: EntityBooks, billed: Invoice, booked: Invoice) -> list[str]:
    """How the ERP's lines (``booked``, read with their accounts and tax codes) differ from what the books map
    billing's lines (``billed``) to, as (account, tax code) pairs; empty when they agree or the ERP did not say."""
    if not billed.lines_complete or any(line.ledger_account is None or line.tax_code is None
                                        for line in booked.lines):
        return []
    try:
        wanted = Counter((p.account, p.tax_code) for p in invoice_postings(books, billed))
    except MissingMapping as exc:
        return [str(exc)]
    held = Counter((line.ledger_account or "", line.tax_code or "") for line in booked.lines)
    if wanted == held:
        return []
    missing = [f"{a}/{c}" for (a, c), n in sorted((wanted - held).items()) for _ in range(n)]
    extra = [f"{a}/{c}" for (a, c), n in sorted((held - wanted).items()) for _ in range(n)]
    return [f"the books map to {', '.join(missing) or 'nothing more'}, "
            f"the ERP holds {', '.join(extra) or 'nothing more'}"]


def _round(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP)


def credit_postings(originals: list[PostingLine], credit: Money, *, description: str,
                    account: str | None = None) -> list[PostingLine]:
    """``credit`` (tax-inclusive, as billing reports it) shared over ``originals`` by their gross, each share
    split into net and tax in its line's ratio, with the line's tax code and account (``account`` instead for a
    write-off). The shares add up to ``credit`` exactly (the last line takes the rounding); a credit above the
    originals' gross is a ``ValueError``."""
    lines = [line for line in originals if not line.gross.is_zero()]
    gross = sum((line.gross.amount for line in lines), Decimal(0))
    if not lines or credit.amount <= 0 or credit.amount > gross:
        raise ValueError(f"a credit of {credit} cannot reverse lines of {gross} {credit.currency}")
    if any(line.net.currency != credit.currency for line in lines):
        raise ValueError(f"a credit in {credit.currency} cannot reverse lines in another currency")
    result: list[PostingLine] = []
    left = credit.amount
    for n, line in enumerate(lines):
        share = left if n == len(lines) - 1 else _round(credit.amount * line.gross.amount / gross, credit.currency)
        left -= share
        tax = _round(share * line.tax.amount / line.gross.amount, credit.currency)
        result.append(PostingLine(
            description=description, net=Money(amount=share - tax, currency=credit.currency),
            tax=Money(amount=tax, currency=credit.currency), account=account or line.account,
            tax_code=line.tax_code, product_code=line.product_code))
    return result


__all__ = ["ANY", "BooksMapping", "EntityBooks", "LedgerCodes", "MissingMapping", "PostingLine", "RevenueRule",
           "TaxRule", "TaxStatus", "booking_differences", "chart_problems", "credit_postings", "invoice_postings"]
