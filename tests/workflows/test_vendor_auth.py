"""A vendor refusing our credentials (401/403) is a visible business exception, not a silent retry: the run
shows ``vendor_auth_failed`` while it retries every 5 minutes, and carries on by itself once the key works."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from settings import Settings
from tests.helpers.servers import SandboxHandle
from tests.workflows.test_ledger import ledger_rig, until


async def test_ledger_shows_an_erp_refusing_our_credentials_and_carries_on_once_fixed(
        time_skipping_env: WorkflowEnvironment, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]) -> None:
    async with ledger_rig(time_skipping_env.client, flow_settings, sandboxes) as rig:
        account = await rig.account()
        [invoice_id] = await rig.invoices(account, ["75.00"])
        with rig.sandboxes["xero"].faults(error_rate=1.0, status=401, path_prefix="/api.xro/2.0/Invoices",
                                          methods=["PUT"]):
            handle = await rig.finalize(account, invoice_id)
            status = await until(handle, lambda s: s.exception_kind == "vendor_auth_failed", "auth failure visible")
            assert any("credentials" in t.note for t in status.timeline)
            described = await handle.describe()
            assert described.search_attributes.get("ExceptionKind") == ["vendor_auth_failed"]
            assert await rig.erp_invoice(invoice_id) is None

        await time_skipping_env.sleep(timedelta(minutes=6))  # the key is fixed; the next retry (every 5 minutes)

        status = await until(handle, lambda s: s.exception_kind == "" and s.open_items[0].erp_invoice_id,
                             "posted once the key works")
        assert rig.erp_count("invoice", invoice_id) == 1
        described = await handle.describe()
        assert described.search_attributes.get("ExceptionKind") == [""]
