"""Delivery: the engagement and its ERP project with tasks and budget."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field

from canonical.money import DecimalAmount, Money


class TaskChargeType(StrEnum):
    TIME = "time"
    FIXED = "fixed"
    NON_CHARGEABLE = "non_chargeable"


class ProjectTask(BaseModel):
    """A task on the ERP project (a milestone, a role's time, a retainer period)."""

    erp_id: str | None = None
    name: str = Field(min_length=1)
    charge_type: TaskChargeType
    rate: Money
    estimate_minutes: int | None = Field(default=None, ge=0)


class Project(BaseModel):
    """The ERP project that delivery books time and cost against."""

    erp_id: str | None = None
    code: str = Field(min_length=1, description="our project code, also the external reference")
    name: str
    erp_contact_id: str
    erp_tenant_id: str
    budget: Money
    deadline: date | None = None
    tasks: list[ProjectTask] = Field(default_factory=list)


class TimeEntryStatus(StrEnum):
    """Where a time entry stands in the project system: ``active`` (open, approved for billing when its task is
    chargeable by time), ``locked`` (changing state, e.g. being invoiced there), ``invoiced`` (invoiced there)."""

    ACTIVE = "active"
    LOCKED = "locked"
    INVOICED = "invoiced"


class TimeEntry(BaseModel):
    """Hours booked on a task."""

    erp_id: str | None = None
    task_erp_id: str
    user_id: str
    minutes: int = Field(gt=0)
    date: date
    description: str | None = None
    status: TimeEntryStatus = TimeEntryStatus.ACTIVE


class Engagement(BaseModel):
    """Everything provisioned for one executed contract in one legal entity."""

    deal_crm_id: str
    legal_entity: str
    contract_record_id: str | None = None
    erp_contact_id: str | None = None
    project: Project | None = None
    billing_customer_id: str | None = None
    billing_schedule_ids: list[str] = Field(default_factory=list)
    hours_budget: DecimalAmount | None = None
