"""The SLA alert's input, ``revops_open_exception_oldest_age_seconds``, runs from the exception's start: a
refused ERP posting re-posted (and refused again) keeps its age, so ``RevOpsExceptionOverSla`` fires for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client

from observability.metrics import WorkerMetrics
from settings import Settings
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.workflows.test_ledger import LedgerRig, ledger_rig, until
from workflows.ledger import AccountLedgerWorkflow
from workflows.models import RepostRequest


@pytest_asyncio.fixture
async def rig(client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
              ) -> AsyncIterator[LedgerRig]:
    async with ledger_rig(client, flow_settings, sandboxes) as value:
        yield value


async def test_exception_age_runs_from_the_refusal_not_from_the_last_repost(rig: LedgerRig, tmp_path: Path) -> None:
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["310.00"])
    with rig.sandboxes["xero"].faults(error_rate=1.0, status=400, path_prefix="/api.xro/2.0/Invoices",
                                      methods=["PUT"]):
        handle = await rig.finalize(account, invoice_id)
        refused = await until(handle, lambda s: s.exception_kind == "erp_rejected", "posting refused")
        refused_at = max(t.at for t in refused.timeline)  # the refusal is the newest entry
        await asyncio.sleep(2)
        # the re-post (an operator's here; the ledger's own every hour) is refused again: a newer timeline entry
        again = await handle.execute_update(AccountLedgerWorkflow.repost, RepostRequest())
        assert again.still_pending
        status = await until(handle, lambda s: max(t.at for t in s.timeline) >= refused_at + timedelta(seconds=2),
                             "re-post noted")
    assert status.exception_kind == "erp_rejected"

    # five hours after the refusal: a 4-hour SLA is past, whatever the re-posts did meanwhile
    settings = rig.settings.model_copy(update={"data_dir": tmp_path})
    metrics = WorkerMetrics(settings)
    now = refused_at + timedelta(hours=5)

    async def age() -> float | None:
        await metrics.refresh(rig.client, now=now)
        return metrics.registry.get_sample_value("revops_open_exception_oldest_age_seconds",
                                                 {"workflow": "AccountLedgerWorkflow", "kind": "erp_rejected"})

    seconds = await eventually(age, lambda v: v is not None, what="the ledger listed")
    assert seconds is not None
    assert abs(seconds - 5 * 3600) < 1.0, seconds  # from the refusal; the last re-post would give 5h - 2s or less
    assert seconds > metrics.registry.get_sample_value("revops_exception_sla_seconds", {"kind": "erp_rejected"})
