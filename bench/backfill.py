"""Benchmark 4, backfill under a rate limit: CRM companies -> ERP customers (CompanyBackfillWorkflow)
with the sandboxes' rate limits on. Reports the achieved ERP request rate as a share of its limit and
the share of requests answered 429."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from bench.common import Table, Timer, bench_settings, running_stack
from bootstrap import open_connectors
from canonical import Account
from canonical.ownership import SystemRole
from connectors.registry import default_registry
from workflows.backfill import BackfillInput, BackfillResult, CompanyBackfillWorkflow


async def seed_companies(settings, n: int) -> None:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:6]
    async with open_connectors(settings) as c:
        for start in range(0, n, 100):
            await c.crm.upsert_companies([
                Account(name=f"Backfill {run} {i:06d} Ltd", domain=f"bf{run}-{i}.example.com", country="US")
                for i in range(start, min(n, start + 100))])


async def run(args: argparse.Namespace, data_dir: Path) -> Table:
    settings = bench_settings(data_dir, activity_retry_max_seconds=5.0)
    entity = settings.entity("US01")
    registry = default_registry(settings)
    crm, erp = registry.chosen(settings, SystemRole.CRM), registry.erp_of(settings, entity)
    n, rate = args.companies, args.rate
    table = Table("backfill", f"4. Backfill under a rate limit: {n} CRM ({crm.display_name}) companies -> ERP "
                              f"({erp.display_name}) customers (ERP sandbox limit {rate:g}/s, CRM "
                              f"{args.crm_rate:g}/s, {args.batch} customers per request)",
                  ["system", "limit req/s", "requests", "429s", "429 share", "achieved req/s", "of limit"])
    async with running_stack(settings) as bench:
        await seed_companies(settings, n)
        erp_emulator = next(e for e in bench.emulators if e.spec is erp)
        crm_emulator = next(e for e in bench.emulators if e.spec is crm)
        before = await bench.stats()
        await erp_emulator.faults(rate_limit_per_second=rate)
        await crm_emulator.faults(rate_limit_per_second=args.crm_rate)
        timer = Timer()
        result: BackfillResult = await bench.client.execute_workflow(
            CompanyBackfillWorkflow.run,
            BackfillInput(entity_code=entity.code, tenant_id=entity.erp_tenant_id, page_size=100,
                          batch_size=args.batch, crm=crm.system, erp=erp.system, erp_requests_per_second=rate,
                          crm_requests_per_second=args.crm_rate, pages_per_run=20),
            id=f"backfill-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue)
        elapsed = timer.elapsed
        after = await bench.stats()
        await bench.clear_faults()
        counts = await erp_emulator.counts()
    figures = {}
    for spec, limit in ((erp, rate), (crm, args.crm_rate)):
        requests = after[spec.name]["requests"] - before[spec.name]["requests"]
        limited = after[spec.name]["rate_limited"] - before[spec.name]["rate_limited"]
        achieved = (requests - limited) / elapsed
        figures[spec.role.value] = {"adapter": spec.name, "requests": requests, "rate_limited": limited,
                                    "achieved": achieved, "limit": limit}
        table.add(f"{spec.role.label} ({spec.display_name})", limit, requests, limited, limited / max(requests, 1),
                  achieved, achieved / limit)
    totals = result.totals
    erp_figures = figures[erp.role.value]
    table.notes += [
        f"{totals.companies} companies in {elapsed:.1f}s ({totals.companies / elapsed:.0f}/s): {totals.created} "
        f"created, {totals.existing} existing; {totals.pages} pages over {totals.runs} run(s) (continue-as-new)",
        f"target ERP achieved >= 0.95 of limit: {'met' if erp_figures['achieved'] / rate >= 0.95 else 'MISSED'} "
        f"({erp_figures['achieved'] / rate:.3f}); 429 share < 1 %: "
        f"{'met' if erp_figures['rate_limited'] / max(erp_figures['requests'], 1) < 0.01 else 'MISSED'}",
        f"ERP objects now: {counts}",
    ]
    table.data = {"companies": n, "elapsed_seconds": elapsed, "totals": totals.model_dump(), "systems": figures}
    return table
