"""Benchmark 2, throughput ceiling: K deals in flight through quote-to-cash, beside K no-op workflows on the
same server and worker: with the same steps as a deal (its regular activities and its local ones, the ceiling
the target is measured against), and with all of them regular or all local."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import EventType

from bench.common import BenchStack, Table, Timer, bench_settings, cpu_between, cpu_note, running_stack, stack_cpu
from bench.noop import NoopInput, NoopWorkflow
from connectors.acts import DealDraft
from runtime.launch import start_quote_to_cash
from workflows.models import QuoteToCashResult, Stage

WHY_REGULAR = ("quote-to-cash's vendor writes stay regular activities: each may retry for hours with Retry-After "
               "and 5-minute backoff, and must show in the UI with its summary and attempts; its short reads and "
               "idempotent CRM write-backs are local activities (one marker each), which the no-op mirrors")


async def activities_per_deal(bench: BenchStack, workflow_id: str) -> tuple[int, int]:
    """A deal's regular activities and its local ones (one marker each)."""
    history = await bench.client.get_workflow_handle(workflow_id).fetch_history()
    regular = sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    local = sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED)
    return regular, local


async def deals_in_flight(bench: BenchStack, k: int) -> tuple[float, list[str]]:
    deal_ids = [await bench.seed_deal(DealDraft(model="subscription")) for _ in range(k)]
    timer = Timer()
    handles = await asyncio.gather(*(start_quote_to_cash(bench.client, bench.settings, d, trigger="bench")
                                     for d in deal_ids))
    results: list[QuoteToCashResult] = await asyncio.gather(*(h.result() for h in handles))
    elapsed = timer.elapsed
    bad = [r for r in results if r.outcome is not Stage.PROVISIONED]
    if bad:
        raise RuntimeError(f"{len(bad)} deal(s) not provisioned: {bad[0].reason}")
    return elapsed, [h.id for h in handles]


async def noops_in_flight(bench: BenchStack, k: int, activities: int, *, local: bool,
                          local_activities: int = 0) -> float:
    timer = Timer()
    handles = await asyncio.gather(*(bench.client.start_workflow(
        NoopWorkflow.run, NoopInput(activities=activities, local=local, local_activities=local_activities,
                                    payload_bytes=1500),
        id=f"noop-{uuid.uuid4().hex[:10]}", task_queue=bench.settings.task_queue) for _ in range(k)))
    await asyncio.gather(*(h.result() for h in handles))
    return timer.elapsed


async def run(args: argparse.Namespace, data_dir: Path) -> Table:
    settings = bench_settings(data_dir, contract_poll_interval_seconds=args.poll, activity_retry_max_seconds=2.0)
    k = args.k
    webhooks = getattr(args, "webhooks", True)
    signature = "CLM webhook -> ingress -> signal" if webhooks else f"contract poll {args.poll:g}s only"
    table = Table("throughput", f"2. Throughput ceiling: {k} workflows in flight on one worker "
                                f"(max_concurrent_activities=200, auto-sign 0s, {signature})",
                  ["workload", "workflows", "steps each", "seconds", "workflows/s", "steps/s",
                   "ratio q2c/no-op"])
    async with running_stack(settings, with_ingress=webhooks) as bench:
        await bench.acts.clm.auto_sign(0)
        await deals_in_flight(bench, min(k, 4))  # warm the connection pools and the worker
        cpu = [stack_cpu(bench)]
        q2c_seconds, ids = await deals_in_flight(bench, k)
        cpu.append(stack_cpu(bench))
        n_regular, n_local = await activities_per_deal(bench, ids[0])
        per_deal = n_regular + n_local
        cpu.append(stack_cpu(bench))
        mixed = await noops_in_flight(bench, k, n_regular, local=False, local_activities=n_local)
        cpu.append(stack_cpu(bench))
        regular = await noops_in_flight(bench, k, per_deal, local=False)
        cpu.append(stack_cpu(bench))
        local = await noops_in_flight(bench, k, per_deal, local=True)
        cpu.append(stack_cpu(bench))
    steps = f"{n_regular} + {n_local} local"
    rows = [("quote-to-cash", steps, q2c_seconds), ("no-op, the same steps", steps, mixed),
            ("no-op, all regular", f"{per_deal}", regular), ("no-op, all local", f"{per_deal} local", local)]
    q2c_rate = k / q2c_seconds
    for name, shape, seconds in rows:
        rate = k / seconds
        table.add(name, k, shape, seconds, rate, rate * per_deal, q2c_rate / rate)
    ratio = q2c_rate / (k / mixed)
    phases = {"quote-to-cash": (0, 1), "no-op same steps": (2, 3), "no-op regular": (3, 4), "no-op local": (4, 5)}
    cpu_use = {phase: cpu_between(cpu[a], cpu[b]) for phase, (a, b) in phases.items()}
    for phase, use in cpu_use.items():
        table.notes.append(cpu_note(phase, use))
    table.notes.append(f"target q2c/no-op (the same steps) >= 0.8: {'met' if ratio >= 0.8 else 'MISSED'} "
                       f"({ratio:.2f}); against all {per_deal} regular: {q2c_rate / (k / regular):.2f}")
    table.notes.append(WHY_REGULAR)
    table.data = {"k": k, "activities_per_deal": per_deal, "regular_per_deal": n_regular, "local_per_deal": n_local,
                  "q2c_seconds": q2c_seconds, "noop_same_steps_seconds": mixed, "noop_regular_seconds": regular,
                  "noop_local_seconds": local, "cpu_seconds": cpu_use, "ratio_same_steps": ratio,
                  "ratio_regular": q2c_rate / (k / regular), "ratio_local": q2c_rate / (k / local)}
    return table
