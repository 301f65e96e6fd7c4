"""Benchmark 1, orchestration overhead: one deal at a time through quote-to-cash (approval by policy,
signature by the CLM emulator's auto-sign), beside the same connector calls made by a plain asyncio
script with no durability. Runs alternate (workflow, plain, workflow, ...) so noise hits both alike."""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.common import BenchStack, Table, Timer, bench_settings, running_stack, summary
from bootstrap import Connectors, open_connectors
from canonical import Engagement
from canonical.keys import erp_contact_reference
from canonical.policy import ApprovalPolicy, approval_reasons, deal_entity
from canonical.provisioning import plan_engagements, proposed_terms, provisioning_record
from canonical.requests import ContractRequest, DealWriteBack
from connectors.acts import DealDraft
from connectors.registry import systems_of
from runtime.launch import start_quote_to_cash
from settings import Settings
from workflows.models import QuoteToCashResult, Stage


async def plain_quote_to_cash(settings: Settings, c: Connectors, deal_id: str, run_id: str) -> None:
    """The connector calls of quote-to-cash in the workflow's order, with its write-backs, no durability."""
    from canonical import ContractStatus as Status

    wid = f"plain-{run_id}"
    key = f"{wid}:plain"
    deal = await c.crm.get_deal(deal_id)
    assert not deal.missing_commercial_fields()
    entity = deal_entity(deal, settings.legal_entities)
    policy = ApprovalPolicy(max_discount_percent=settings.approval_max_discount_percent,
                            max_amount=settings.approval_max_amount,
                            standard_payment_terms_days=settings.approval_standard_payment_terms_days)
    assert not approval_reasons(deal, policy), "the overhead deal must be approved by policy"
    assert deal.account is not None and deal.billing_contact is not None
    request = ContractRequest(deal_crm_id=deal.crm_id, title=f"{deal.name} - Order Form",
                              legal_entity=entity.code,
                              counterparty=deal.account, signer=deal.billing_contact, terms=proposed_terms(deal))
    contract = await c.clm.launch_contract(request, idempotency_key=f"{key}:contract")
    assert contract.clm_workflow_id
    await c.crm.write_back(deal_id, DealWriteBack(revops_status=Stage.AWAITING_SIGNATURE.value,
                                                  approval_status="auto-approved",
                                                  clm_workflow_id=contract.clm_workflow_id, revops_workflow_id=wid))
    while True:  # the workflow's wait: the poll interval, then a check
        await asyncio.sleep(settings.contract_poll_interval_seconds)
        contract = await c.clm.get_contract(contract.clm_workflow_id)
        if contract.clm_record_id and contract.terms is None:
            record = await c.clm.get_record(contract.clm_record_id)
            contract = contract.model_copy(update={"terms": record.terms, "executed_on": record.executed_on})
        if contract.status is Status.EXECUTED and contract.terms is not None:
            break
    plans = plan_engagements(deal, contract.terms, settings.legal_entities)
    await c.crm.write_back(deal_id, DealWriteBack(revops_status=Stage.PROVISIONING.value, revops_workflow_id=wid,
                                                  clm_record_id=contract.clm_record_id,
                                                  contract_value=str(contract.terms.total_value.amount)))
    engagements: list[Engagement] = []
    for plan in plans:
        tenant = plan.entity.erp_tenant_id
        ref = erp_contact_reference(systems_of(settings).crm.name, deal.account.crm_id or "", plan.entity.code)
        await c.erp.find_customer(tenant, ref)
        account = await c.erp.upsert_customer(tenant, deal.account, contact=deal.billing_contact, reference=ref,
                                              idempotency_key=f"{key}:erp-contact-{plan.entity.code}")
        contact_id = account.erp_contact_id or ""
        project = await c.erp.create_project(tenant, plan.project.model_copy(update={"erp_contact_id": contact_id}),
                                             idempotency_key=f"{key}:erp-project-{plan.entity.code}")
        customer_id = await c.billing.find_customer(ref) or await c.billing.ensure_customer(
            deal.account, contact=deal.billing_contact, reference=ref, legal_entity=plan.entity.code,
            idempotency_key=f"{key}:billing-customer-{plan.entity.code}")
        schedule_ids: list[str] = []
        for index, schedule in enumerate(plan.schedules):
            schedule = schedule.model_copy(update={"customer_id": customer_id, "metadata": {
                **schedule.metadata, "revops_project": project.code, "revops_workflow": wid}})
            created = await c.billing.create_schedule(
                schedule, idempotency_key=f"{key}:billing-{plan.entity.code}-{schedule.kind.value}-{index}")
            schedule_ids += [i for i in [created.billing_id, *created.item_ids] if i]
        engagements.append(Engagement(deal_crm_id=deal_id, legal_entity=plan.entity.code, erp_contact_id=contact_id,
                                      project=project, billing_customer_id=customer_id,
                                      billing_schedule_ids=schedule_ids))
    await c.crm.write_back(deal_id, DealWriteBack(revops_status=Stage.PROVISIONED.value, revops_exception="",
                                                  revops_workflow_id=wid,
                                                  provisioned=provisioning_record(engagements)))


async def workflow_quote_to_cash(bench: BenchStack, deal_id: str) -> QuoteToCashResult:
    handle = await start_quote_to_cash(bench.client, bench.settings, deal_id, trigger="bench")
    result: QuoteToCashResult = await handle.result()
    if result.outcome is not Stage.PROVISIONED:
        raise RuntimeError(f"deal {deal_id}: {result.outcome.value} ({result.reason})")
    return result


#: one timed path: the stack whose deal it runs, and the run of a deal seeded there (the seeding is not timed)
TimedPath = tuple[BenchStack, Callable[[str], Awaitable[object]]]


async def take_turns(paths: dict[str, TimedPath], n: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per deal on each path, the paths taking turns (the order flips every round), so that a slower
    minute of the machine weighs on all of them alike; the first ``warmup`` rounds are not counted."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for i in range(warmup + n):
        for name in names if i % 2 == 0 else reversed(names):
            bench, run_deal = paths[name]
            deal_id = await bench.seed_deal(DealDraft(model="subscription"))
            timer = Timer()
            await run_deal(deal_id)
            if i >= warmup:
                times[name].append(timer.elapsed)
    return times


async def measure(bench: BenchStack, n: int, warmup: int) -> tuple[list[float], list[float]]:
    async with open_connectors(bench.settings) as connectors:
        async def plain(deal_id: str) -> None:
            await plain_quote_to_cash(bench.settings, connectors, deal_id, f"{deal_id}-{time.time_ns()}")

        times = await take_turns({"workflow": (bench, functools.partial(workflow_quote_to_cash, bench)),
                                  "plain": (bench, plain)}, n, warmup)
    return times["workflow"], times["plain"]


async def timer_lateness(bench: BenchStack) -> dict[str, float]:
    """Where one workflow's time went: timer lateness, activity and workflow-task durations (from history)."""
    from temporalio.api.enums.v1 import EventType as E

    from runtime.launch import quote_to_cash_id

    deal_id = await bench.seed_deal(DealDraft(model="subscription"))
    await workflow_quote_to_cash(bench, deal_id)
    history = await bench.client.get_workflow_handle(quote_to_cash_id(bench.settings, deal_id)).fetch_history()
    at = {e.event_id: e.event_time.ToDatetime().timestamp() for e in history.events}
    timer = activity = task = 0.0
    activities = tasks = 0
    for e in history.events:
        if e.event_type == E.EVENT_TYPE_TIMER_FIRED:
            timer += at[e.event_id] - at[e.timer_fired_event_attributes.started_event_id]
        elif e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            activity += at[e.event_id] - at[e.activity_task_completed_event_attributes.scheduled_event_id]
            activities += 1
        elif e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            task += at[e.event_id] - at[e.workflow_task_completed_event_attributes.scheduled_event_id]
            tasks += 1
    return {"timer_seconds": timer, "activities": activities, "activity_ms": 1000 * activity / max(activities, 1),
            "workflow_task_ms": 1000 * task / max(tasks, 1), "workflow_tasks": tasks}


async def run(args: argparse.Namespace, data_dir: Path) -> Table:
    settings = bench_settings(data_dir, contract_poll_interval_seconds=args.poll, activity_retry_max_seconds=2.0)
    webhooks = getattr(args, "webhooks", False)
    table = Table("overhead", f"1. Orchestration overhead: one subscription deal at a time, n={args.n} each "
                              f"(contract poll {args.poll:g}s, auto-sign 0s, "
                              f"{'CLM webhook -> ingress -> signal on' if webhooks else 'poll only'})",
                  ["path", "n", "p50 s", "p95 s", "mean s", "min s", "max s"])
    async with running_stack(settings, with_ingress=webhooks) as bench:
        await bench.acts.clm.auto_sign(0)
        durable, plain = await measure(bench, args.n, args.warmup)
        timers = await timer_lateness(bench)
    d, p = summary(durable), summary(plain)
    for name, s in (("quote-to-cash workflow", d), ("plain asyncio script", p)):
        table.add(name, s["n"], s["p50"], s["p95"], s["mean"], s["min"], s["max"])
    ratio50, ratio95 = d["p50"] / p["p50"], d["p95"] / p["p95"]
    table.add("ratio workflow/plain", "", ratio50, ratio95, d["mean"] / p["mean"], "", "")
    how = ("the workflow is woken by the contract_executed signal, the script sleeps one poll" if webhooks
           else f"both paths wait one {args.poll:g}s contract poll")
    table.notes.append(f"target p50 ratio <= 1.25: {'met' if ratio50 <= 1.25 else 'MISSED'} ({ratio50:.2f}x); {how}")
    table.notes.append(f"overhead per deal at p50: {d['p50'] - p['p50']:.3f}s; the {args.poll:g}s contract-poll "
                       f"timer waited {timers['timer_seconds']:.3f}s in all; "
                       f"{timers['activities']} activities, mean schedule->completed {timers['activity_ms']:.0f} ms, "
                       f"mean workflow task {timers['workflow_task_ms']:.0f} ms")
    table.data = {"timers": timers, "webhooks": webhooks, "workflow": d, "plain": p, "ratio_p50": ratio50,
                  "ratio_p95": ratio95, "workflow_samples": durable, "plain_samples": plain, "poll_seconds": args.poll}
    return table
