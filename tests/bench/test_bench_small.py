"""The benchmarks at a tiny size, so a harness that no longer runs is found by ``make test``, not by the next
``make bench`` (the month-end burst stopped at its last check for weeks when business references began refusing
a blank ID). Figures are not judged here (``make bench`` reports them); what each run checks is: the burst posts
every invoice and payment once with the CRM's figures right, and the backfill reaches every tenant at once."""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import parser, run_one
from bench.burst import workflow_task_warnings


async def test_bench_burst_small_posts_every_event_once(tmp_path: Path) -> None:
    args = parser().parse_args(["--events", "40", "--customers", "2", "--burst-timeout", "240"])
    table = await run_one("burst", args, tmp_path / "burst")
    report = table.render()
    assert table.data["done_seconds"], report  # every invoice paid in the ERP and the CRM's figures right
    assert not table.incomplete, report  # so `python -m bench` does not keep its data folder as unfinished
    assert table.data["deadlocked_activations"] == 0, report  # no ledger activation ran past the SDK's 2 s
    assert table.data["invoices"] == 20 and table.data["events"] == 40, report
    assert table.data["duplicates"] == 0 and table.data["amount_mismatches"] == 0, report
    assert table.data["crm_mismatches"] == 0, report
    # where the time went, by process: the ingress took the posts, the worker and the server ran the ledger
    cpu = table.data["cpu_seconds"]
    assert set(cpu) == {"accepting", "settling"}, report
    for phase, used in cpu.items():
        assert {"temporal", "sandbox", "ingress", "worker", "harness"} <= set(used), (phase, report)
        assert all(seconds >= 0 for seconds in used.values()), (phase, report)  # a reading, not a NaN
    assert cpu["accepting"]["ingress"] > 0 and cpu["accepting"]["harness"] > 0, report
    assert cpu["accepting"]["worker"] + cpu["settling"]["worker"] > 0, report
    assert sum(1 for note in table.notes if note.startswith("CPU seconds during")) == 2, report


async def test_bench_backfill_small_runs_every_tenant_at_once(tmp_path: Path) -> None:
    args = parser().parse_args(["--companies", "60", "--rate", "20", "--crm-rate", "20", "--batch", "10"])
    table = await run_one("backfill", args, tmp_path / "backfill")
    report = table.render()
    tenants = table.data["tenants"]
    assert set(tenants) == {"US01", "EU01", "UK01"}, report
    for code, figures in tenants.items():
        assert figures["totals"]["companies"] == 60 and figures["totals"]["created"] == 60, (code, report)
        assert figures["requests"] > 0 and figures["rate_limited"] == 0, (code, report)


def test_burst_counts_the_sdks_slow_and_deadlocked_workflow_task_warnings(tmp_path: Path) -> None:
    """Lines as the SDK writes them (core's warning with colour codes, the Python worker's JSON log line), in
    both replicas' logs; other lines, and the ingress's log, are not counted."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "worker.log").write_text(
        "\x1b[2m2026-12-07T13:47:14.198493Z\x1b[0m \x1b[33m WARN\x1b[0m temporalio_sdk_core::worker::workflow::"
        "managed_run: [TMPRL1104] 649b:286:1 Workflow task duration exceeded 5 seconds. "
        "workflow_type=AccountLedgerWorkflow\n"
        '{"level": "warning", "msg": "Completing activity as failed (poll_billing_changes)"}\n', encoding="utf-8")
    (logs / "worker-2.log").write_text(
        '{"level": "warning", "logger": "temporalio.worker._workflow", "msg": "Failed activation on workflow '
        "AccountLedgerWorkflow: [TMPRL1101] Potential deadlock detected: workflow didn't yield within 2 "
        'second(s)."}\n', encoding="utf-8")
    (logs / "ingress.log").write_text("[TMPRL1104] not a worker\n", encoding="utf-8")
    assert workflow_task_warnings(logs) == {"TMPRL1104": 1, "TMPRL1101": 1}
