"""The one configuration loader of every flow: worker settings read through an activity, so a workflow's
replay sees the values its run saw, whatever the worker's settings are now."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.models import (
    AmendmentsConfig,
    FlowConfig,
    FlowConfigRequest,
    LedgerConfig,
    QuoteToCashConfig,
    ReconciliationConfig,
)
from canonical.ownership import SystemRole
from canonical.policy import ApprovalPolicy
from connectors.registry import AdapterRegistry, default_registry
from settings import Settings


class ConfigActivities:
    """``load_flow_config``: the only activity that reads the worker's settings (it is their reader)."""

    def __init__(self, *, settings: Settings, registry: AdapterRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or default_registry(settings)

    @activity.defn(name="load_flow_config")
    async def load_flow_config(self, request: FlowConfigRequest) -> FlowConfig:
        """The settings of ``request.flow``: approval policy, legal entities, timers, tolerances."""
        s = self.settings
        systems = self.registry.systems(s)
        if request.flow == "quote_to_cash":
            return FlowConfig(flow=request.flow, quote_to_cash=QuoteToCashConfig(
                policy=ApprovalPolicy(max_discount_percent=s.approval_max_discount_percent,
                                      max_amount=s.approval_max_amount,
                                      standard_payment_terms_days=s.approval_standard_payment_terms_days),
                entities=s.legal_entities, systems=systems,
                approval_reminder_hours=s.approval_reminder_hours,
                approval_expiry_days=s.approval_expiry_days,
                contract_poll_interval_seconds=s.contract_poll_interval_seconds,
                contract_max_wait_days=s.contract_max_wait_days,
                milestone_poll_interval_seconds=s.milestone_poll_interval_seconds,
                activity_retry_max_seconds=s.activity_retry_max_seconds,
                temporal_ui_url=s.temporal_ui_url,
                activity_timeout_seconds=s.activity_timeout_seconds,
                authority=s.approval_authority()))
        if request.flow == "amendments":
            return FlowConfig(flow=request.flow, amendments=AmendmentsConfig(
                entities=s.legal_entities, systems=systems, gap_timeout_seconds=s.amendment_gap_timeout_seconds,
                continue_as_new_after=s.amendments_continue_as_new_after,
                activity_retry_max_seconds=s.activity_retry_max_seconds, authority=s.approval_authority(),
                approval_reminder_hours=s.amendment_approval_reminder_hours,
                approval_expiry_days=s.amendment_approval_expiry_days))
        if request.flow == "account_ledger":
            return FlowConfig(flow=request.flow, account_ledger=LedgerConfig(
                entities=s.legal_entities, systems=systems, continue_after_events=s.ledger_continue_after_events,
                dedupe_window=s.ledger_dedupe_window, dso_window_days=s.ledger_dso_window_days,
                activity_retry_max_seconds=s.activity_retry_max_seconds))
        return FlowConfig(flow=request.flow, reconciliation=self._reconciliation(request.legal_entities))

    def _reconciliation(self, codes: list[str]) -> ReconciliationConfig:
        """The entities in scope (an unknown code fails the run: it would silently reconcile nothing)."""
        known = [e.code for e in self.settings.legal_entities]
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise ApplicationError(f"unknown legal entity {', '.join(unknown)}; known: {', '.join(known)}",
                                   type="UnknownLegalEntity", non_retryable=True)
        wanted = set(codes)
        entities = [e for e in self.settings.legal_entities if not wanted or e.code in wanted]
        # the descriptors' own figure: no adapter's settings need reading on every run for it
        hours = max([self.registry.erp_of(self.settings, e).rate_limits.full_read_hours for e in entities]
                    + [self.registry.chosen(self.settings, SystemRole.BILLING).rate_limits.full_read_hours])
        return ReconciliationConfig(entities=entities, systems=self.registry.systems(self.settings),
                                    read_timeout_seconds=hours * 3600,
                                    all_entities=list(self.settings.legal_entities),
                                    rounding_tolerance=self.settings.reconciliation_rounding_tolerance,
                                    activity_retry_max_seconds=self.settings.activity_retry_max_seconds)

    def all(self) -> list[Callable[..., Any]]:
        return [self.load_flow_config]


__all__ = ["ConfigActivities"]
