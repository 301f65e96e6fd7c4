"""From a deal and its executed terms to what must exist in ERP and billing, per legal entity.

Pure functions: the quote-to-cash workflow calls them to plan, activities carry the plan out.
Terms elements are tied to deal lines by product code (a milestone's ``code``, a rate card's
``role`` and a recurring charge's ``product_code`` are the line's product code), which is how a
deal whose lines belong to two entities is split.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from canonical.billing import BillingSchedule, BillingScheduleKind, ScheduledCharge
from canonical.contract import ContractTerms, Milestone, RateCardEntry, RecurringCharge
from canonical.deal import BillingInterval, BillingModel, Deal, DealWriteBack, ProvisionedEntity, ProvisioningRecord
from canonical.keys import milestone_task_name, project_code, time_task_name
from canonical.money import Money
from canonical.parties import LegalEntity
from canonical.policy import deal_entity, line_entity
from canonical.project import Engagement, Project, ProjectTask, TaskChargeType
from canonical.systems import OURS, System, Systems


def proposed_terms(deal: Deal) -> ContractTerms:
    """The commercial terms we send to the CLM for signature, built from the deal's lines."""
    assert deal.currency and deal.start_date, "validate the deal before proposing terms"
    currency = deal.currency
    milestones: list[Milestone] = []
    rate_card: list[RateCardEntry] = []
    recurring: list[RecurringCharge] = []
    fixed = Money.zero(currency)
    hours = Decimal(0)
    for line in deal.lines:
        model = deal.line_billing_model(line)
        unit_net = Money(amount=line.unit_price * (1 - line.discount_percent / 100), currency=currency)
        if model in (BillingModel.SUBSCRIPTION, BillingModel.RETAINER):
            # seats stay seats: the discount travels beside the unit price, rounded on the total only
            recurring.append(RecurringCharge(kind=model, product_code=line.product_code, name=line.name,
                                             quantity=line.quantity,
                                             unit_price=Money(amount=line.unit_price, currency=currency),
                                             discount_percent=line.discount_percent,
                                             interval=line.interval or BillingInterval.MONTH))
        elif model is BillingModel.TIME_AND_MATERIALS:
            rate_card.append(RateCardEntry(role=line.product_code, hourly_rate=unit_net))
            hours += line.quantity
        elif model is BillingModel.MILESTONE:
            milestones.append(Milestone(code=line.product_code, name=line.name, amount=line.net(currency)))
        elif model is BillingModel.FIXED_FEE:
            milestones.append(Milestone(code=line.product_code, name=line.name, amount=line.net(currency),
                                        due_date=deal.start_date, requires_acceptance=False))
            fixed = fixed + line.net(currency)
    return ContractTerms(
        start_date=deal.start_date,
        end_date=deal.end_date,
        total_value=deal.total(),
        billing_model=deal.billing_model or deal.line_billing_model(deal.lines[0]) or BillingModel.FIXED_FEE,
        payment_terms_days=deal.payment_terms_days if deal.payment_terms_days is not None else 30,
        milestones=milestones,
        rate_card=rate_card,
        recurring=recurring,
        fixed_fee=None if fixed.is_zero() else fixed,
        budget_hours=hours or None,
    )


class EngagementPlan(BaseModel):
    """What to provision in one legal entity: its project and its billing schedules."""

    entity: LegalEntity
    project: Project
    schedules: list[BillingSchedule] = Field(default_factory=list)
    product_codes: list[str] = Field(default_factory=list)


def add_period(start: date, interval: BillingInterval) -> date:
    months = {BillingInterval.MONTH: 1, BillingInterval.QUARTER: 3, BillingInterval.YEAR: 12}[interval]
    month = start.month - 1 + months
    year = start.year + month // 12
    month = month % 12 + 1
    day = min(start.day, 28)
    return date(year, month, day)


def plan_engagements(deal: Deal, terms: ContractTerms, entities: list[LegalEntity],
                     erps: Mapping[str, System] | None = None) -> list[EngagementPlan]:
    """Split the executed terms by legal entity and describe the project and schedules of each.

    Customer IDs are left empty: they are filled in once the ERP contact and billing customer exist.
    ``erps`` (entity code -> its ERP) refuses an entity whose ERP would round the deal's currency.
    """
    default = deal_entity(deal, entities, erps)
    entity_of: dict[str, LegalEntity] = {line.product_code: line_entity(line, deal, entities, default, erps)
                                         for line in deal.lines}
    codes_by_entity: dict[str, list[str]] = {}
    for code, entity in entity_of.items():
        codes_by_entity.setdefault(entity.code, []).append(code)
    # Terms may add elements the deal did not have (negotiated in the CLM): they go to the main entity.
    def owner(code: str) -> LegalEntity:
        return entity_of.get(code, default)

    currency = terms.total_value.currency
    hours_by_role = _hours_by_role(deal, terms)
    plans: list[EngagementPlan] = []
    order = [default.code] + sorted(c for c in codes_by_entity if c != default.code)
    for entity_code in order:
        entity = next(e for e in entities if e.code == entity_code)
        milestones = [m for m in terms.milestones if owner(m.code).code == entity_code]
        rates = [r for r in terms.rate_card if owner(r.role).code == entity_code]
        recurring = [r for r in terms.recurring if owner(r.product_code).code == entity_code]
        if not (milestones or rates or recurring):
            continue
        tasks: list[ProjectTask] = []
        budget = Money.zero(currency)
        for m in milestones:
            tasks.append(ProjectTask(name=milestone_task_name(m.code, m.name), charge_type=TaskChargeType.FIXED,
                                     rate=m.amount))
            budget = budget + m.amount
        for r in rates:
            hours = hours_by_role.get(r.role, Decimal(0))
            minutes = int(hours * 60)
            tasks.append(ProjectTask(name=time_task_name(r.role), charge_type=TaskChargeType.TIME, rate=r.hourly_rate,
                                     estimate_minutes=minutes or None))
            budget = budget + r.hourly_rate.times(hours)
        for c in recurring:
            tasks.append(ProjectTask(name=f"{c.product_code} {c.name} ({c.interval.value}ly)",
                                     charge_type=TaskChargeType.FIXED, rate=c.per_period()))
            budget = budget + c.over_term(terms.start_date, terms.end_date)  # the budget is the term's value
        project = Project(code=project_code(deal.crm_id, entity.code), name=f"{deal.name} ({entity.code})",
                          erp_contact_id="", erp_tenant_id=entity.erp_tenant_id, budget=budget,
                          deadline=terms.end_date, tasks=tasks)
        plans.append(EngagementPlan(entity=entity, project=project,
                                    schedules=_schedules(deal, terms, entity, milestones, rates, recurring),
                                    product_codes=sorted(codes_by_entity.get(entity_code, []))))
    return plans


def _hours_by_role(deal: Deal, terms: ContractTerms) -> dict[str, Decimal]:
    """The executed ``budget_hours`` shared among the rate card's roles.

    Each role gets its share in proportion to the hours its deal lines carried (a flat split would give
    a 100-hour role and a 10-hour role 55 hours each, and wrong budgets per entity); evenly when the
    deal has no hours for any role (rate card negotiated in the CLM).
    """
    if not terms.rate_card or not terms.budget_hours:
        return {}
    roles = list(dict.fromkeys(r.role for r in terms.rate_card))
    deal_hours = {
        role: sum((line.quantity for line in deal.lines if line.product_code == role
                   and deal.line_billing_model(line) is BillingModel.TIME_AND_MATERIALS), Decimal(0))
        for role in roles
    }
    known = sum(deal_hours.values(), Decimal(0))
    if not known:
        return {role: terms.budget_hours / len(roles) for role in roles}
    return {role: terms.budget_hours * deal_hours[role] / known for role in roles}


def _schedules(deal: Deal, terms: ContractTerms, entity: LegalEntity, milestones: list[Milestone],
               rates: list[RateCardEntry], recurring: list[RecurringCharge]) -> list[BillingSchedule]:
    currency = terms.total_value.currency
    common: dict[str, Any] = {"customer_id": "", "currency": currency, "start_date": terms.start_date,
                              "end_date": terms.end_date, "days_until_due": terms.payment_terms_days,
                              "metadata": {"revops_deal_id": deal.crm_id, "revops_legal_entity": entity.code}}
    schedules: list[BillingSchedule] = []
    for kind, model in ((BillingScheduleKind.SUBSCRIPTION, BillingModel.SUBSCRIPTION),
                        (BillingScheduleKind.RETAINER, BillingModel.RETAINER)):
        charges = [ScheduledCharge(product_code=c.product_code, description=c.name, unit_amount=c.net_unit_price(),
                                   quantity=c.quantity, interval=c.interval, amount=c.per_period())
                   for c in recurring if c.kind == model]
        if charges:
            schedules.append(BillingSchedule(kind=kind, charges=charges, **common))
    fixed = [m for m in milestones if not m.requires_acceptance]
    accepted = [m for m in milestones if m.requires_acceptance]
    if fixed:
        schedules.append(BillingSchedule(kind=BillingScheduleKind.FIXED_FEE, charges=[
            ScheduledCharge(product_code=m.code, description=m.name, unit_amount=m.amount,
                            bill_on=m.due_date or terms.start_date) for m in fixed], **common))
    if accepted:
        schedules.append(BillingSchedule(kind=BillingScheduleKind.MILESTONE, charges=[
            ScheduledCharge(product_code=m.code, description=m.name, unit_amount=m.amount,
                            bill_on=m.due_date or (terms.end_date or terms.start_date + timedelta(days=90)))
            for m in accepted], **common))
    if rates:
        schedules.append(BillingSchedule(kind=BillingScheduleKind.TIME_AND_MATERIALS, charges=[
            ScheduledCharge(product_code=r.role, description=f"{r.role} per hour", unit_amount=r.hourly_rate)
            for r in rates], **common))
    return schedules




def provisioning_record(engagements: list[Engagement]) -> ProvisioningRecord:
    """What quote-to-cash provisioned, per entity, as it is written back to the CRM."""
    entities = [ProvisionedEntity(legal_entity=e.legal_entity, tenant_id=e.project.erp_tenant_id,
                                  project_code=e.project.code, project_id=e.project.erp_id or "",
                                  erp_contact_id=e.erp_contact_id or "",
                                  billing_customer_id=e.billing_customer_id or "",
                                  budget=str(e.project.budget.amount))
                for e in engagements if e.project is not None]
    billing_ids = list(dict.fromkeys(i for e in engagements for i in e.billing_schedule_ids))
    return ProvisioningRecord(entities=entities, billing_ids=billing_ids)



def written_back_refs(written: DealWriteBack, systems: Systems) -> list[str]:
    """The business keys of what an earlier run wrote back to a deal (a re-run shows and is found by them)."""
    keys = [systems.clm.ref("workflow", written.clm_workflow_id)] if written.clm_workflow_id else []
    if written.clm_record_id:
        keys.append(systems.clm.ref("record", written.clm_record_id))
    record = written.provisioned or ProvisioningRecord()
    for e in record.entities:
        erp = systems.erp.get(e.legal_entity)
        if erp is not None:  # an entity no longer configured: its ERP's name is not known here
            keys += [erp.ref(obj, value) for obj, value in (("contact", e.erp_contact_id),
                                                            ("project", e.project_id)) if value]
        if e.project_code:
            keys.append(OURS.ref("project", e.project_code))
        if e.billing_customer_id:
            keys.append(systems.billing.ref("customer", e.billing_customer_id))
    return keys + [systems.billing.ref_of_id(i, "schedule") for i in record.billing_ids]


__all__ = ["EngagementPlan", "plan_engagements", "proposed_terms", "provisioning_record", "written_back_refs"]
