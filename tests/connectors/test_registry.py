"""Adapters by configuration: one per role, and per legal entity for the ERP (``connectors/registry.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.models import CreateErpContactsInput, ErpContactsResult, FindErpContactsInput
from canonical import Account
from canonical.backfill import ErpCustomerDraft
from canonical.keys import erp_contact_reference
from canonical.ownership import SystemRole
from connectors.errors import UnknownTenant
from connectors.registry import UnknownAdapter, build_adapters, default_registry, role_label
from connectors.xero import XeroErp
from settings import Settings
from tests.helpers.fakes import FakeErp
from tests.helpers.servers import SandboxHandle
from worker import Stores, activities_for, open_connectors


def _with_entity_adapter(settings: Settings, code: str, adapter: str) -> Settings:
    """Settings where only ``code``'s legal entity names ``adapter`` for its books: configuration, no code."""
    entities = [e.model_copy(update={"erp_adapter": adapter}) if e.code == code else e
                for e in settings.legal_entities]
    return settings.model_copy(update={"legal_entities": entities})


def _activity(activities: list[Callable[..., Any]], name: str) -> Callable[..., Any]:
    return next(fn for fn in activities if getattr(fn, "__temporal_activity_definition").name == name)


async def test_registry_a_second_erp_for_one_entity_by_configuration_only(
        settings: Settings, client: Client, xero_sandbox: SandboxHandle) -> None:
    memory = FakeErp()
    registry = default_registry().with_adapter(SystemRole.ERP, "memory", lambda _settings, _transport: memory)
    configured = _with_entity_adapter(settings, "EU01", "memory")
    eu, us = configured.entity("EU01"), configured.entity("US01")
    company = uuid.uuid4().hex[:10]

    async with open_connectors(configured, registry=registry) as connectors:
        # the worker's own activities (composition root), not a hand-built ERP class
        served = activities_for(configured, connectors, client=client, stores=Stores.from_settings(configured))
        find, create = _activity(served, "find_erp_contacts"), _activity(served, "create_erp_contacts")
        env = ActivityEnvironment()
        results: dict[str, ErpContactsResult] = {}
        for entity in (eu, us):
            draft = ErpCustomerDraft(account=Account(name=f"Routed {company} {entity.code}", crm_id=company),
                                     reference=erp_contact_reference("hubspot", company, entity.code))
            plan = await env.run(find, FindErpContactsInput(tenant_id=entity.erp_tenant_id, drafts=[draft]))
            assert [d.reference for d in plan.missing] == [draft.reference]
            results[entity.code] = await env.run(create, CreateErpContactsInput(
                tenant_id=entity.erp_tenant_id, drafts=plan.missing,
                idempotency_key=f"routing-{company}-{entity.code}"))

    eu_ref, us_ref = (erp_contact_reference("hubspot", company, "EU01"),
                      erp_contact_reference("hubspot", company, "US01"))
    # EU01's contact went to the in-memory ERP, and only there
    assert list(memory.contacts) == [eu.erp_tenant_id]
    assert memory.contacts[eu.erp_tenant_id][eu_ref].erp_contact_id == results["EU01"].contact_ids[eu_ref]
    assert memory.batches == [(eu.erp_tenant_id, [eu_ref])]
    assert not xero_sandbox.store.list("contact", tenant=eu.erp_tenant_id,
                                       where=lambda c: c.get("ContactNumber") == eu_ref)
    # US01's went to Xero (the sandbox), and not to the in-memory ERP
    in_xero = xero_sandbox.store.list("contact", tenant=us.erp_tenant_id,
                                      where=lambda c: c.get("ContactNumber") == us_ref)
    assert [c["ContactID"] for c in in_xero] == [results["US01"].contact_ids[us_ref]]
    assert results["US01"].ours == [us_ref]


async def test_registry_routes_each_tenant_to_its_entity_adapter(settings: Settings) -> None:
    memory = FakeErp()
    registry = default_registry().with_adapter(SystemRole.ERP, "memory", lambda _s, _t: memory)
    configured = _with_entity_adapter(settings, "UK01", "memory")
    adapters = build_adapters(configured, registry=registry)
    router = adapters.erp
    try:
        assert router.adapter_for(configured.entity("UK01").erp_tenant_id) is memory
        assert isinstance(router.adapter_for(configured.entity("US01").erp_tenant_id), XeroErp)
        with pytest.raises(UnknownTenant, match="tenant-no-entity-names"):  # no fallback to ERP_ADAPTER's
            router.adapter_for("tenant-no-entity-names")
    finally:
        await adapters.aclose()
    assert role_label(configured, SystemRole.ERP, registry) == "ERP (Xero, memory)"
    assert role_label(configured, SystemRole.CRM, registry) == "CRM (HubSpot)"


def test_registry_unknown_role_adapter_fails_at_start_naming_the_known_ones(settings: Settings) -> None:
    with pytest.raises(UnknownAdapter,
                       match=r"unknown CRM adapter 'pipedrive'; known: hubspot, salesforce \(set CRM_ADAPTER\)"):
        build_adapters(settings.model_copy(update={"crm_adapter": "pipedrive"}))


def test_registry_unknown_entity_erp_adapter_fails_at_start_naming_the_entity(settings: Settings) -> None:
    with pytest.raises(UnknownAdapter,
                       match="unknown ERP adapter 'quickbooks' of legal entity EU01; known: netsuite, xero"):
        build_adapters(_with_entity_adapter(settings, "EU01", "quickbooks"))


async def test_registry_entity_on_netsuite_is_routed_to_the_netsuite_adapter(settings: Settings) -> None:
    from connectors.netsuite import NetSuiteErp
    from connectors.xero import XeroErp

    built = build_adapters(_with_entity_adapter(settings, "US01", "netsuite"))
    try:
        assert isinstance(built.erp.adapter_for(settings.entity("US01").erp_tenant_id), NetSuiteErp)
        assert isinstance(built.erp.adapter_for(settings.entity("EU01").erp_tenant_id), XeroErp)
    finally:
        await built.aclose()


def test_registry_settings_choose_adapters_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_ADAPTER", "netsuite")
    monkeypatch.setenv("CRM_ADAPTER", "salesforce")
    chosen = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (chosen.crm_adapter, chosen.clm_adapter, chosen.billing_adapter, chosen.erp_adapter) == (
        "salesforce", None, None, "netsuite")  # unset: the registry's first adapter of the role
    registry = default_registry()
    assert registry.chosen(chosen, SystemRole.CRM).name == "salesforce"  # configuration chooses it
    assert registry.chosen(chosen, SystemRole.ERP).name == "netsuite"
    assert registry.chosen(chosen, SystemRole.CLM).name == "ironclad"
