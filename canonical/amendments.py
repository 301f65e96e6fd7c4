"""From an executed amendment to what must change in ERP, billing and CRM, per legal entity.

Pure functions (the amendments workflow calls them; activities carry the plan out). The change is
computed by planning the engagements of the terms before and after the amendment with the same
rules quote-to-cash provisioned with (:func:`canonical.provisioning.plan_engagements`) and comparing
them entity by entity, element by element (recurring charges by product code, milestones by code,
rate-card entries by role). What billing already holds is described by :class:`BillingRecord`s so
that a change can name the subscription item, milestone invoice or price it replaces.

Finance approval is needed when the amendment lowers the contract value or a rate
(:func:`canonical.contract.value_decreases`) or touches a milestone that was already billed (its
invoice is no longer a draft).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from canonical.billing import BillingSchedule, BillingScheduleKind, ScheduledCharge
from canonical.contract import ContractTerms
from canonical.deal import BillingInterval, Deal, ProvisionedEntity
from canonical.money import DecimalAmount, Money
from canonical.parties import LegalEntity
from canonical.project import Project
from canonical.provisioning import EngagementPlan, plan_engagements

RECURRING_KINDS = (BillingScheduleKind.SUBSCRIPTION, BillingScheduleKind.RETAINER)
ONE_OFF_KINDS = (BillingScheduleKind.MILESTONE, BillingScheduleKind.FIXED_FEE)


class BillingRecordKind(StrEnum):
    SUBSCRIPTION_ITEM = "subscription_item"
    MILESTONE_INVOICE = "milestone_invoice"
    RATE = "rate"


class BillingRecord(BaseModel):
    """One thing billing holds for a contract element (found by its product code)."""

    kind: BillingRecordKind
    billing_id: str = Field(description="si_..., in_... or price_...")
    product_code: str
    customer_id: str | None = None
    subscription_id: str | None = None
    price_id: str | None = None
    product_id: str | None = None
    unit_amount: Money | None = None
    quantity: DecimalAmount | None = None
    interval: BillingInterval | None = None
    status: str = Field(default="", description="invoice status for milestone invoices; active/inactive")

    @property
    def billed(self) -> bool:
        """A milestone invoice that left draft has been sent to the customer."""
        return self.kind is BillingRecordKind.MILESTONE_INVOICE and self.status not in ("", "draft")


class SubscriptionItemChange(BaseModel):
    """A quantity and/or price change of one subscription item (quantity 0 removes the charge)."""

    item_id: str
    subscription_id: str
    product_code: str
    quantity: DecimalAmount
    unit_amount: Money
    interval: BillingInterval | None = None
    amount: Money | None = Field(default=None, description="what a period bills (the line total, rounded once); "
                                 "None: unit amount x quantity")
    old_quantity: DecimalAmount | None = None
    old_unit_amount: Money | None = None
    old_price_id: str | None = Field(default=None, description="deactivated once the item moved off it")


class EntityChange(BaseModel):
    """Everything one amendment changes in one legal entity."""

    legal_entity: str
    project: Project | None = Field(default=None, description="the project as amended, when it changed")
    old_budget: Money | None = None
    subscription_changes: list[SubscriptionItemChange] = Field(default_factory=list)
    new_schedules: list[BillingSchedule] = Field(default_factory=list)
    cancel_ids: list[str] = Field(default_factory=list, description="milestone invoices and prices replaced")
    subscription_ends: list[str] = Field(default_factory=list, description="subscriptions whose end moves")
    end_date: date | None = None
    notes: list[str] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.project or self.subscription_changes or self.new_schedules or self.cancel_ids
                    or self.subscription_ends)


class AmendmentPlan(BaseModel):
    """The change of one amendment against the current executed terms."""

    sequence: int
    old_value: Money
    new_value: Money
    changed_fields: list[str] = Field(default_factory=list)
    entities: list[EntityChange] = Field(default_factory=list)
    approval_reasons: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        parts = [f"value {self.old_value} -> {self.new_value}" if self.old_value != self.new_value else ""]
        parts.append("changed: " + ", ".join(self.changed_fields) if self.changed_fields else "no term changed")
        return "; ".join(p for p in parts if p)


def changed_fields(before: ContractTerms, after: ContractTerms) -> list[str]:
    """The names of the terms an amendment changed (runtime milestone state ignored)."""
    fields = []
    for name in ContractTerms.model_fields:
        old, new = getattr(before, name), getattr(after, name)
        if name == "milestones":
            old = [m.model_copy(update={"accepted": False, "billed": False}) for m in old]
            new = [m.model_copy(update={"accepted": False, "billed": False}) for m in new]
        if old != new:
            fields.append(name)
    return fields


def approval_reasons(before: ContractTerms, after: ContractTerms) -> list[str]:
    """Why finance must approve: value or rate decreases (billed milestones are added per entity)."""
    reasons = []
    if after.total_value.amount < before.total_value.amount:
        reasons.append(f"contract value decreases from {before.total_value} to {after.total_value}")
    old_rates = {r.role: r.hourly_rate for r in before.rate_card}
    for rate in after.rate_card:
        old = old_rates.get(rate.role)
        if old is not None and rate.hourly_rate.amount < old.amount:
            reasons.append(f"rate of {rate.role} decreases from {old} to {rate.hourly_rate}")
    return reasons


def _charges(plan: EngagementPlan | None, kinds: tuple[BillingScheduleKind, ...]
             ) -> dict[str, tuple[BillingSchedule, ScheduledCharge]]:
    if plan is None:
        return {}
    return {c.product_code: (s, c) for s in plan.schedules if s.kind in kinds for c in s.charges}


def _one_off_key(charge: ScheduledCharge) -> tuple[object, ...]:
    return (charge.unit_amount, charge.bill_on, charge.description, charge.quantity)


def _schedule_with(schedule: BillingSchedule, charges: list[ScheduledCharge], target: ProvisionedEntity,
                   sequence: int) -> BillingSchedule:
    return schedule.model_copy(update={
        "customer_id": target.billing_customer_id, "charges": charges,
        "metadata": {**schedule.metadata, "revops_project": target.project_code,
                     "revops_amendment": str(sequence)}})


def _tasks_key(project: Project) -> list[tuple[object, ...]]:
    return sorted((t.name, t.charge_type.value, t.rate, t.estimate_minutes) for t in project.tasks)


def plan_amendment(*, sequence: int, deal: Deal, before: ContractTerms, after: ContractTerms,
                   entities: list[LegalEntity], provisioned: list[ProvisionedEntity],
                   records: dict[str, list[BillingRecord]]) -> AmendmentPlan:
    """What amendment ``sequence`` changes in each provisioned legal entity, and whether finance must approve.

    ``records`` holds, per entity code, what billing has for the contract now.
    """
    before_plans = {p.entity.code: p for p in plan_engagements(deal, before, entities)}
    after_plans = {p.entity.code: p for p in plan_engagements(deal, after, entities)}
    reasons = approval_reasons(before, after)
    changes: list[EntityChange] = []
    for target in provisioned:
        code = target.legal_entity
        old, new = before_plans.get(code), after_plans.get(code)
        if old is None and new is None:
            continue
        change = EntityChange(legal_entity=code, end_date=after.end_date)
        _project_change(change, target, old, new, after)
        held = records.get(code, [])
        _recurring_change(change, target, old, new, held, sequence)
        billed = _one_off_change(change, target, old, new, held, sequence)
        reasons += [f"milestone {m} of {code} is already billed and would change" for m in billed]
        _rate_change(change, target, old, new, held, sequence)
        if before.end_date != after.end_date:
            change.subscription_ends = sorted({r.subscription_id for r in held
                                               if r.kind is BillingRecordKind.SUBSCRIPTION_ITEM
                                               and r.subscription_id})
        if not change.is_empty():
            changes.append(change)
    return AmendmentPlan(sequence=sequence, old_value=before.total_value, new_value=after.total_value,
                         changed_fields=changed_fields(before, after), entities=changes, approval_reasons=reasons)


def _project_change(change: EntityChange, target: ProvisionedEntity, old: EngagementPlan | None,
                    new: EngagementPlan | None, after: ContractTerms) -> None:
    currency = after.total_value.currency
    old_budget = old.project.budget if old else Money.zero(currency)
    if new is not None:
        project = new.project
    else:  # every element of this entity was removed: the project stays, its budget goes to zero
        assert old is not None
        project = old.project.model_copy(update={"budget": Money.zero(currency), "tasks": [],
                                                 "deadline": after.end_date})
    project = project.model_copy(update={"erp_id": target.project_id, "erp_tenant_id": target.tenant_id,
                                         "erp_contact_id": target.erp_contact_id, "code": target.project_code})
    if old is None or project.budget != old.project.budget or project.deadline != old.project.deadline \
            or _tasks_key(project) != _tasks_key(old.project):
        change.project = project
        change.old_budget = old_budget


def _find(held: list[BillingRecord], kind: BillingRecordKind, code: str) -> list[BillingRecord]:
    return [r for r in held if r.kind is kind and r.product_code == code]


def _recurring_change(change: EntityChange, target: ProvisionedEntity, old: EngagementPlan | None,
                      new: EngagementPlan | None, held: list[BillingRecord], sequence: int) -> None:
    before, after = _charges(old, RECURRING_KINDS), _charges(new, RECURRING_KINDS)
    added: dict[BillingScheduleKind, tuple[BillingSchedule, list[ScheduledCharge]]] = {}
    for code in sorted(set(before) | set(after)):
        was, now = before.get(code), after.get(code)
        if now is not None and was is not None and (now[1].quantity, now[1].unit_amount, now[1].total()) == (
                was[1].quantity, was[1].unit_amount, was[1].total()):
            continue
        items = _find(held, BillingRecordKind.SUBSCRIPTION_ITEM, code)
        if now is None:
            assert was is not None
            for item in items:  # removed: quantity 0 keeps the item's history and prorates the rest
                change.subscription_changes.append(SubscriptionItemChange(
                    item_id=item.billing_id, subscription_id=item.subscription_id or "", product_code=code,
                    quantity=Decimal(0), unit_amount=item.unit_amount or was[1].unit_amount,
                    interval=item.interval, old_quantity=item.quantity, old_unit_amount=item.unit_amount,
                    old_price_id=item.price_id))
            continue
        schedule, charge = now
        if items:
            item = items[0]
            change.subscription_changes.append(SubscriptionItemChange(
                item_id=item.billing_id, subscription_id=item.subscription_id or "", product_code=code,
                quantity=charge.quantity, unit_amount=charge.unit_amount, interval=charge.interval,
                amount=charge.amount, old_quantity=item.quantity, old_unit_amount=item.unit_amount,
                old_price_id=item.price_id))
        else:  # a new recurring charge (or one billing never had): a subscription of its own
            added.setdefault(schedule.kind, (schedule, []))[1].append(charge)
    for schedule, charges in added.values():
        change.new_schedules.append(_schedule_with(schedule, charges, target, sequence))


def _one_off_change(change: EntityChange, target: ProvisionedEntity, old: EngagementPlan | None,
                    new: EngagementPlan | None, held: list[BillingRecord], sequence: int) -> list[str]:
    """Milestone and fixed-fee invoices: replace changed ones, add new ones, drop removed ones.

    Returns the codes of billed milestones the amendment touches (these need approval).
    """
    before, after = _charges(old, ONE_OFF_KINDS), _charges(new, ONE_OFF_KINDS)
    billed: list[str] = []
    added: dict[BillingScheduleKind, tuple[BillingSchedule, list[ScheduledCharge]]] = {}
    for code in sorted(set(before) | set(after)):
        was, now = before.get(code), after.get(code)
        if was is not None and now is not None and _one_off_key(was[1]) == _one_off_key(now[1]):
            continue
        invoices = _find(held, BillingRecordKind.MILESTONE_INVOICE, code)
        if was is not None:
            if any(i.billed for i in invoices):
                billed.append(code)
            change.cancel_ids += [i.billing_id for i in invoices if i.status in ("", "draft", "open")]
        if now is not None:
            added.setdefault(now[0].kind, (now[0], []))[1].append(now[1])
    for schedule, charges in added.values():
        change.new_schedules.append(_schedule_with(schedule, charges, target, sequence))
    return billed


def _rate_change(change: EntityChange, target: ProvisionedEntity, old: EngagementPlan | None,
                 new: EngagementPlan | None, held: list[BillingRecord], sequence: int) -> None:
    kinds = (BillingScheduleKind.TIME_AND_MATERIALS,)
    before, after = _charges(old, kinds), _charges(new, kinds)
    charges: list[ScheduledCharge] = []
    schedule: BillingSchedule | None = None
    for code in sorted(set(before) | set(after)):
        was, now = before.get(code), after.get(code)
        if was is not None and now is not None and was[1].unit_amount == now[1].unit_amount:
            continue
        if was is not None:  # the old rate is retired: its price is deactivated
            change.cancel_ids += [r.billing_id for r in _find(held, BillingRecordKind.RATE, code)
                                  if r.status != "inactive"]
        if now is not None:
            schedule = now[0]
            charges.append(now[1])
    if schedule is not None and charges:
        change.new_schedules.append(_schedule_with(schedule, charges, target, sequence))


def monthly_recurring(terms: ContractTerms) -> Money:
    """Recurring revenue per month of the terms (the forecast's run rate)."""
    months = {BillingInterval.MONTH: 1, BillingInterval.QUARTER: 3, BillingInterval.YEAR: 12}
    total = Money.zero(terms.total_value.currency)
    for charge in terms.recurring:
        per_period = charge.per_period()
        total = total + Money(amount=per_period.amount / months[charge.interval], currency=total.currency)
    return total


__all__ = ["AmendmentPlan", "BillingRecord", "BillingRecordKind", "EntityChange", "ProvisionedEntity",
           "SubscriptionItemChange", "approval_reasons", "changed_fields", "monthly_recurring", "plan_amendment"]
