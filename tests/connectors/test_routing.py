"""Routing by legal entity (``connectors/routing.py``): an explicit tenant map that refuses what it does not know."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.erp import ErpActivities
from activities.ledger import PostInvoiceInput
from canonical import Account
from connectors.errors import ConnectorError, UnknownTenant
from connectors.registry import build_adapters
from connectors.routing import ErpRouter
from settings import Settings
from tests.helpers.fakes import FakeErp, fake_invoice


async def test_routing_a_typoed_tenant_reaches_no_erp() -> None:
    eu, us = FakeErp(), FakeErp()
    router = ErpRouter({"tenant-eu": eu, "tenant-us": us})

    with pytest.raises(UnknownTenant) as refused:
        await router.upsert_customer("tenant-eu ", Account(name="Typo Co"), contact=None,
                                     reference="ref-typo", idempotency_key="key-typo")

    message = str(refused.value)
    assert "'tenant-eu '" in message and "tenant-eu, tenant-us" in message
    assert refused.value.tenant_id == "tenant-eu " and refused.value.known == ["tenant-eu", "tenant-us"]
    assert eu.contacts == {} and us.contacts == {}  # nothing written anywhere
    # a business refusal the activity layer makes non-retryable, not a crash
    assert isinstance(refused.value, ConnectorError) and refused.value.error_type == "UnknownTenant"


async def test_routing_a_known_tenant_reaches_only_its_adapter() -> None:
    eu, us = FakeErp(), FakeErp()
    router = ErpRouter({"tenant-eu": eu, "tenant-us": us})

    created = await router.upsert_customer("tenant-us", Account(name="Routed Co"), contact=None,
                                           reference="ref-us", idempotency_key="key-us")

    assert router.adapter_for("tenant-us") is us
    assert us.contacts["tenant-us"]["ref-us"].erp_contact_id == created.erp_contact_id
    assert eu.contacts == {}


async def test_routing_no_tenant_at_all_is_refused_by_every_capability() -> None:
    router = ErpRouter({"tenant-eu": FakeErp()})
    with pytest.raises(UnknownTenant, match="tenant ''; known: tenant-eu$"):
        router.adapter_for("")
    with pytest.raises(UnknownTenant):
        await router.list_projects("tenant-xx")


async def test_routing_built_from_settings_knows_exactly_the_entities_tenants(settings: Settings) -> None:
    adapters = build_adapters(settings)
    try:
        for entity in settings.legal_entities:
            assert adapters.erp.adapter_for(entity.erp_tenant_id) is not None
        assert sorted(adapters.erp.tenants) == sorted(e.erp_tenant_id for e in settings.legal_entities)
        with pytest.raises(UnknownTenant, match="tenant-no-entity-names"):
            adapters.erp.adapter_for("tenant-no-entity-names")
    finally:
        await adapters.aclose()


async def test_routing_an_activity_for_an_unknown_tenant_fails_for_good_and_posts_nothing() -> None:
    eu = FakeErp()
    activities = ErpActivities(erp=ErpRouter({"tenant-eu": eu}))  # type: ignore[arg-type]

    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.post_erp_invoice, PostInvoiceInput(
            tenant_id="tenant-ue", invoice=fake_invoice("in_typo"), erp_contact_id="contact-1",
            idempotency_key="post-in_typo"))

    # a business refusal the workflow shows (no retry storm), naming what to fix in configuration
    assert refused.value.type == "UnknownTenant" and refused.value.non_retryable
    assert "'tenant-ue'" in refused.value.message and "known: tenant-eu" in refused.value.message
    assert eu.invoices == {}
