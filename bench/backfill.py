"""Benchmark 4, backfill under a rate limit: CRM companies -> ERP customers (CompanyBackfillWorkflow) for every
legal entity's tenant at once, with the sandboxes' rate limits on (the ERP's per tenant, as Xero's are). Reports
each tenant's achieved request rate as a share of its limit and its requests answered 429."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from pathlib import Path
from typing import Any

from bench.common import Table, Timer, bench_settings, running_stack
from bootstrap import open_connectors
from canonical import Account, LegalEntity
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
    """Every legal entity's backfill at once (one ERP tenant each, each with its own limit where the ERP's limits
    are per tenant), against one CRM read by all three."""
    settings = bench_settings(data_dir, activity_retry_max_seconds=5.0)
    entities = settings.legal_entities
    registry = default_registry(settings)
    crm = registry.chosen(settings, SystemRole.CRM)
    erps = {registry.erp_of(settings, e).name: registry.erp_of(settings, e) for e in entities}
    n, rate = args.companies, args.rate
    names = ", ".join(sorted(e.display_name for e in erps.values()))
    table = Table("backfill", f"4. Backfill under a rate limit: {n} CRM ({crm.display_name}) companies -> ERP "
                              f"({names}) customers in {len(entities)} tenants at once (ERP sandbox limit "
                              f"{rate:g}/s per tenant, CRM {args.crm_rate:g}/s, {args.batch} customers per request)",
                  ["tenant", "limit req/s", "requests", "429s", "429 share", "seconds", "achieved req/s", "of limit"])
    async with running_stack(settings) as bench:
        await seed_companies(settings, n)
        erp_emulators = [e for e in bench.emulators if e.spec.name in erps]
        crm_emulator = next(e for e in bench.emulators if e.spec is crm)
        before = await bench.stats()
        for emulator in erp_emulators:
            await emulator.faults(rate_limit_per_second=rate, rate_limit_per_tenant=True)
        await crm_emulator.faults(rate_limit_per_second=args.crm_rate)
        timer = Timer()

        async def backfill(entity: LegalEntity) -> tuple[LegalEntity, BackfillResult, float]:
            erp = registry.erp_of(settings, entity)
            result: BackfillResult = await bench.client.execute_workflow(
                CompanyBackfillWorkflow.run,
                BackfillInput(entity_code=entity.code, tenant_id=entity.erp_tenant_id, page_size=100,
                              batch_size=args.batch, crm=crm.system, erp=erp.system, erp_requests_per_second=rate,
                              crm_requests_per_second=args.crm_rate, pages_per_run=20),
                id=f"backfill-{entity.code.lower()}-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue)
            return entity, result, timer.elapsed

        done = await asyncio.gather(*(backfill(e) for e in entities))
        elapsed = timer.elapsed
        after = await bench.stats()
        await bench.clear_faults()
    figures: dict[str, dict[str, Any]] = {}
    for entity, result, seconds in done:
        erp = registry.erp_of(settings, entity)
        tenant = _delta(before[erp.name], after[erp.name], entity.erp_tenant_id)
        achieved = (tenant["requests"] - tenant["rate_limited"]) / seconds
        figures[entity.code] = {"adapter": erp.name, **tenant, "seconds": seconds, "achieved": achieved,
                                "limit": rate, "totals": result.totals.model_dump()}
        table.add(f"{entity.code} ({erp.display_name} {entity.erp_tenant_id})", rate, tenant["requests"],
                  tenant["rate_limited"], tenant["rate_limited"] / max(tenant["requests"], 1), seconds, achieved,
                  achieved / rate)
    crm_requests = after[crm.name]["requests"] - before[crm.name]["requests"]
    crm_limited = after[crm.name]["rate_limited"] - before[crm.name]["rate_limited"]
    table.add(f"CRM ({crm.display_name}), shared", args.crm_rate, crm_requests, crm_limited,
              crm_limited / max(crm_requests, 1), elapsed, (crm_requests - crm_limited) / elapsed,
              (crm_requests - crm_limited) / elapsed / args.crm_rate)
    worst = min(f["achieved"] / rate for f in figures.values())
    limited = sum(f["rate_limited"] for f in figures.values())
    table.notes += [
        *(f"{code}: {f['totals']['companies']} companies, {f['totals']['created']} created, "
          f"{f['totals']['existing']} existing; {f['totals']['pages']} pages over {f['totals']['runs']} run(s)"
          for code, f in figures.items()),
        f"target every tenant >= 0.98 of its limit with 0 x 429: {'met' if worst >= 0.98 and not limited else 'MISSED'}"
        f" (lowest {worst:.3f}, {limited} x 429)",
    ]
    table.data = {"companies": n, "elapsed_seconds": elapsed, "tenants": figures,
                  "crm": {"requests": crm_requests, "rate_limited": crm_limited}}
    return table


def _delta(before: dict[str, Any], after: dict[str, Any], tenant: str) -> dict[str, int]:
    """One tenant's requests and 429s between two readings of an emulator's statistics."""
    was = (before.get("by_tenant") or {}).get(tenant) or {"requests": 0, "rate_limited": 0}
    now = (after.get("by_tenant") or {}).get(tenant) or {"requests": 0, "rate_limited": 0}
    return {k: int(now[k]) - int(was[k]) for k in ("requests", "rate_limited")}
