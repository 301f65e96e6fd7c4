"""``python -m bench.chaos --deals 1000`` (``make chaos``): deals through the whole stack while things break.

Deals (a mix of billing models, ``--approval-share`` needing finance approval, approved by this harness)
are seeded in the CRM's emulator and moved to closed-won: the emulator's signed webhooks reach the
ingress, which starts quote-to-cash. Meanwhile ``--fault-rate`` of vendor calls fail in every emulator
(modes rotate: 503, 429 with Retry-After, timeouts past the client timeout), the worker is SIGKILLed and
restarted ``--kills`` times, the Temporal dev server is stopped and restarted on the same SQLite file
``--temporal-restarts`` times, and the CRM's deliveries are posted again, shuffled (duplicates, out of order).

At the end it counts, from the emulators' and the ingress's own SQLite files (read through each role's acts):
every deal provisioned or in a stated exception; exactly one record per business reference in every sandbox;
no ledger event without its outcome. Prints the table, writes ``bench/results/chaos.json``, exits 1 if anything
was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine
from sqlmodel import Session, col, func, select
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from bench.chaos_books import Books, Check, run_books, settle_and_check
from bench.common import (
    BenchStack,
    SqliteRecords,
    Table,
    Timer,
    bench_settings,
    gather_limited,
    records_of,
    running_stack,
)
from canonical.keys import erp_contact_reference
from canonical.ownership import SystemRole
from connectors.acts import DealDraft, DealLineDraft, RoleActs, delivery_url
from connectors.registry import VENDOR_ROLES, default_registry, role_label
from devstack.stack import stop_on_sigterm
from runtime.launch import quote_to_cash_id
from settings import Settings
from stores.events import AcceptedEvent, Delivery, EventState, unsettled_events
from workflows.models import ApprovalDecision, QuoteToCashResult, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow

T = TypeVar("T")

MODELS = ["subscription", "milestone", "time_and_materials", "retainer", "fixed_fee"]
FAULT_MODES = ["503", "429", "timeout"]


@dataclass
class ChaosDeal:
    index: int
    spec: DealDraft
    needs_approval: bool
    deal_id: str = ""
    company_id: str = ""
    result: QuoteToCashResult | None = None
    state: str = "not started"
    skipped_later: int = 0  # later runs that found the deal provisioned already


@dataclass
class Chaos:
    bench: BenchStack
    args: argparse.Namespace
    deals: list[ChaosDeal]
    rng: random.Random
    events: list[str] = field(default_factory=list)
    approvals: int = 0
    replayed: int = 0
    replay_refused: int = 0  # 503: Temporal was down (the ingress asks the vendor to deliver again)
    replay_rejected: int = 0  # any other refusal: the replay was not a valid delivery (a harness defect)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    temporal_down: bool = False
    started_at: float = field(default_factory=time.monotonic)

    def log(self, text: str) -> None:
        line = f"[{time.monotonic() - self.started_at:7.1f}s] {text}"
        self.events.append(line)
        print(line, flush=True)


def deal_specs(n: int, approval_share: float, rng: random.Random) -> list[ChaosDeal]:
    deals = []
    approvals = set(rng.sample(range(n), round(n * approval_share)))
    for index in range(n):
        model = MODELS[index % len(MODELS)]
        spec = DealDraft(model=model, name=f"Chaos {index}", company=f"Chaos{index} {rng.randrange(10**8):08d} Ltd")
        if index in approvals:  # a 30 % discount: beyond the 15 % policy limit
            spec.lines = [DealLineDraft("PLAT-ENT", "Enterprise seats", quantity="50", price="90.00", discount="30",
                               model="subscription", frequency="monthly")]
            spec.model = "subscription"
        deals.append(ChaosDeal(index=index, spec=spec, needs_approval=index in approvals))
    return deals


# ---------------------------------------------------------------------------------------------
# The disturbances
# ---------------------------------------------------------------------------------------------
async def rotate_faults(chaos: Chaos) -> None:
    """Every few seconds each sandbox gets a fault mode; ``fault_rate`` of its vendor calls fail."""
    rate, bench = chaos.args.fault_rate, chaos.bench
    hang = (bench.settings.http_timeout_seconds or 30) + 1.5
    while not chaos.stop.is_set():
        for emulator in bench.emulators:
            mode = chaos.rng.choice(FAULT_MODES)
            body: dict[str, Any] = {"seed": chaos.rng.randrange(10**6)}
            if mode == "timeout":
                body.update(timeout_rate=rate, hang_seconds=hang)
            else:
                body.update(error_rate=rate, status=int(mode))
            with contextlib.suppress(Exception):
                await emulator.faults(**body)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(chaos.stop.wait(), timeout=chaos.args.fault_period)
    with contextlib.suppress(Exception):
        await bench.clear_faults()


async def harness_decision(settings: Settings, handle: Any) -> ApprovalDecision | None:
    """The CFO's decision on the pending request, signed as the approvals API signs it (bound to its run,
    request and terms; the worker refuses anything else); ``None`` when nothing is pending."""
    from ingress.approvals import pending_approval, signed_decision

    approval = pending_approval("deal", await handle.query("status"))
    if approval is None:
        return None
    return signed_decision(settings, handle.id, approval, approver="chris@revops.example", approved=True,
                           note="auto-approved by the chaos run", channel="chaos-harness")


async def approve_pending(chaos: Chaos) -> None:
    """Finance approves every pending request (the harness plays finance)."""
    client = chaos.bench.client
    query = "WorkflowType = 'QuoteToCashWorkflow' AND ExecutionStatus = 'Running' AND Stage = 'awaiting_approval'"
    while not chaos.stop.is_set():
        if not chaos.temporal_down:
            try:
                ids = [w.id async for w in client.list_workflows(query, limit=500)]
                for workflow_id in ids:
                    with contextlib.suppress(Exception):
                        handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run, workflow_id)
                        decision = await harness_decision(chaos.bench.settings, handle)
                        if decision is not None:
                            await handle.execute_update(QuoteToCashWorkflow.decide_approval, decision)
                            chaos.approvals += 1
            except Exception:
                pass
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(chaos.stop.wait(), timeout=2)


async def replay_webhooks(chaos: Chaos) -> None:
    """Post recent CRM deliveries again, shuffled: duplicates that also arrive out of order."""
    bench = chaos.bench
    crm = bench.acts.crm
    path = default_registry(bench.settings).chosen(bench.settings, SystemRole.CRM).webhook_path
    url = delivery_url(crm, f"http://{bench.settings.ingress_host}:{bench.settings.ingress_port}{path}")
    while not chaos.stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(chaos.stop.wait(), timeout=chaos.args.replay_period)
        try:
            deliveries = await crm.controls.deliveries()
            sample = chaos.rng.sample(deliveries, min(len(deliveries), chaos.args.replay_batch))
            chaos.rng.shuffle(sample)
            for delivery in sample:
                body = delivery["body"].encode()
                response = await bench.http.post(url, content=body, headers=crm.signed_headers(url, body))
                if response.status_code < 300:
                    chaos.replayed += 1
                elif response.status_code == 503:
                    chaos.replay_refused += 1  # Temporal down: the ingress says 503, as to the vendor
                else:
                    chaos.replay_rejected += 1
        except Exception:
            pass


async def closed_count(chaos: Chaos) -> int:
    try:
        count = await chaos.bench.client.count_workflows(
            "WorkflowType = 'QuoteToCashWorkflow' AND ExecutionStatus != 'Running'")
        return count.count
    except Exception:
        return -1


async def disturb(chaos: Chaos) -> None:
    """Kill the worker and bounce Temporal at set shares of closed deals."""
    n, stack = len(chaos.deals), chaos.bench.stack
    plan: list[tuple[float, str]] = []
    kills, restarts = chaos.args.kills, chaos.args.temporal_restarts
    steps = kills + restarts
    kinds = ["kill"] * kills + ["temporal"] * restarts
    # alternate: kill, temporal, kill ...
    kinds.sort(key=lambda k: 0 if k == "kill" else 1)
    ordered = []
    while kinds:
        ordered.append(kinds.pop(0))
        if kinds and kinds[-1] == "temporal":
            ordered.append(kinds.pop())
    for i, kind in enumerate(ordered):
        plan.append(((i + 1) / (steps + 1), kind))
    for share, kind in plan:
        while not chaos.stop.is_set():
            closed = await closed_count(chaos)
            if closed >= share * n:
                break
            await asyncio.sleep(1)
        if chaos.stop.is_set():
            return
        if kind == "kill":
            chaos.log(f"SIGKILL the worker (pid {stack.process('worker').pid}) at {closed}/{n} closed")
            await asyncio.to_thread(stack.kill, "worker", signal.SIGKILL)
            await asyncio.sleep(chaos.args.down_seconds)
            await asyncio.to_thread(stack.restart, "worker")
            chaos.log(f"worker restarted (pid {stack.process('worker').pid})")
        else:
            chaos.log(f"stop the Temporal dev server at {closed}/{n} closed")
            chaos.temporal_down = True
            await asyncio.to_thread(stack.kill, "temporal", signal.SIGTERM)
            await asyncio.sleep(chaos.args.down_seconds)
            await asyncio.to_thread(stack.restart, "temporal")
            chaos.temporal_down = False
            chaos.log("Temporal dev server restarted on the same SQLite file")


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
async def seed_and_close(chaos: Chaos) -> None:
    bench = chaos.bench

    async def seed(deal: ChaosDeal) -> None:
        seeded = await bench.acts.crm.seed_deal(deal.spec)
        deal.deal_id, deal.company_id = seeded.deal_id, seeded.company_id

    await gather_limited((seed(d) for d in chaos.deals), 8)
    chaos.log(f"seeded {len(chaos.deals)} deals ({sum(d.needs_approval for d in chaos.deals)} need approval)")

    async def close(deal: ChaosDeal) -> None:
        await bench.acts.crm.move_deal(deal.deal_id)

    await gather_limited((close(d) for d in chaos.deals), 4)
    chaos.log("every deal moved to closed-won (webhooks on their way)")


async def wait_all(chaos: Chaos, deadline: float) -> None:
    client = chaos.bench.client
    pending = list(chaos.deals)
    last_report = 0.0
    while pending and time.monotonic() < deadline:
        still = []
        for deal in pending:
            try:
                workflow_id = quote_to_cash_id(chaos.bench.settings, deal.deal_id)
                description = await client.get_workflow_handle(workflow_id).describe()
            except Exception:
                deal.state = "no run"
                still.append(deal)
                continue
            if description.status is WorkflowExecutionStatus.RUNNING:
                deal.state = "running"
                still.append(deal)
            else:
                deal.state = description.status.name.lower() if description.status else "closed"
        pending = still
        if time.monotonic() - last_report > 15:
            last_report = time.monotonic()
            states = Counter(d.state for d in pending)
            chaos.log(f"{len(chaos.deals) - len(pending)}/{len(chaos.deals)} closed; open: {dict(states)}")
        if pending:
            await asyncio.sleep(2)


async def collect_results(chaos: Chaos) -> None:
    for deal in chaos.deals:
        if deal.state in ("no run", "running"):
            continue
        workflow_id = quote_to_cash_id(chaos.bench.settings, deal.deal_id)
        handle = chaos.bench.client.get_workflow_handle_for(QuoteToCashWorkflow.run, workflow_id)
        try:
            deal.result = await handle.result()
            deal.state = deal.result.outcome.value
        except WorkflowFailureError as exc:
            deal.state = f"workflow failed: {exc.cause}"
            continue
        if deal.result.outcome is Stage.SKIPPED:
            await earlier_provisioning(chaos, deal)


async def earlier_provisioning(chaos: Chaos, deal: ChaosDeal) -> None:
    """A trigger that arrives after a deal's run has completed (a late redelivery, the poll, a CRM change)
    starts a new run under the same ID, which stops at once as ``skipped``: the deal is provisioned already.
    Judge such a deal by the run that provisioned it."""
    workflow_id = quote_to_cash_id(chaos.bench.settings, deal.deal_id)
    async for run in chaos.bench.client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        if run.status is not WorkflowExecutionStatus.COMPLETED:
            continue
        handle = chaos.bench.client.get_workflow_handle_for(QuoteToCashWorkflow.run, workflow_id, run_id=run.run_id)
        result = await handle.result(follow_runs=False)
        if result.outcome is Stage.PROVISIONED:
            deal.result, deal.state = result, result.outcome.value
            deal.skipped_later += 1


# ---------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------
def count_records(settings: Settings, acts: RoleActs, deals: list[ChaosDeal]) -> list[Check]:
    """Records per business reference in each role's emulator, counted by that system's acts (their census reads
    the stored records, no request: the stack may be stopped)."""
    provisioned = [d for d in deals if d.result and d.result.outcome is Stage.PROVISIONED]
    engagements = [(d, e) for d in provisioned for e in d.result.engagements]  # type: ignore[union-attr]
    ours = {d.deal_id for d in deals}
    registry = default_registry(settings)
    crm_name = registry.chosen(settings, SystemRole.CRM).name
    label = {role: role_label(settings, role) for role in VENDOR_ROLES}
    checks: list[Check] = []

    def check(name: str, counts: Counter[Any], expected: set[Any], note: str = "") -> None:
        duplicates = sum(1 for key, n in counts.items() if n > 1)
        missing = sum(1 for key in expected if counts.get(key, 0) != 1)
        checks.append(Check(name, len(expected), sum(counts.values()), duplicates, missing, note))

    # CRM: the seeded deals and companies, once each
    crm_records = records_of(settings, SystemRole.CRM)
    check(f"{label[SystemRole.CRM]} deals by ID", acts.crm.deals_seen(crm_records), ours)
    check(f"{label[SystemRole.CRM]} companies by name", acts.crm.companies_seen(crm_records),
          {d.spec.company for d in deals})
    # CLM: one contract per deal that reached contracting
    check(f"{label[SystemRole.CLM]} contracts by deal", acts.clm.contracts_seen(records_of(settings, SystemRole.CLM)),
          {d.deal_id for d in provisioned}, "one per deal; every provisioned deal has exactly one")
    # ERP: customers by our reference per entity, projects by code per entity (every entity's ERP)
    code_of = {e.erp_tenant_id: e.code for e in settings.legal_entities}
    customers: Counter[tuple[str, str]] = Counter()
    projects: Counter[tuple[str, str]] = Counter()
    for spec in {registry.erp_of(settings, e).name: registry.erp_of(settings, e)
                 for e in settings.legal_entities}.values():
        erp = next(a for a in acts.every if a.controls.spec is spec)
        stored = SqliteRecords(settings.data_dir, spec)
        customers.update({(code_of.get(t, t), ref): n for (t, ref), n in erp.customers_seen(stored).items()})
        projects.update({(code_of.get(t, t), code): n for (t, code), n in erp.projects_seen(stored).items()})
    check(f"{label[SystemRole.ERP]} customers by reference per entity", customers,
          {(e.legal_entity, erp_contact_reference(crm_name, d.company_id, e.legal_entity)) for d, e in engagements})
    check(f"{label[SystemRole.ERP]} projects by code per entity", projects,
          {(e.legal_entity, e.project.code) for _, e in engagements if e.project})
    # billing: customers by our reference, live subscriptions per customer
    billing_records = records_of(settings, SystemRole.BILLING)
    check(f"{label[SystemRole.BILLING]} customers by reference", acts.billing.customers_seen(billing_records),
          {erp_contact_reference(crm_name, d.company_id, e.legal_entity) for d, e in engagements})
    subs = acts.billing.live_subscriptions(billing_records)
    expected_subs: dict[str, int] = defaultdict(int)
    for _, e in engagements:
        expected_subs[e.billing_customer_id or ""] += len(acts.billing.subscription_ids(e.billing_schedule_ids))
    sub_dupes = sum(1 for c, n in subs.items() if n > expected_subs.get(str(c), 0))
    sub_missing = sum(1 for c, n in expected_subs.items() if subs.get(c, 0) != n)
    checks.append(Check(f"{label[SystemRole.BILLING]} live subscriptions per customer", sum(expected_subs.values()),
                        sum(subs.values()), sub_dupes, sub_missing, "as many as the run created, no more"))
    return checks


def ledger_url(stack: Any, data_dir: Path) -> str:
    """Where the ingress keeps its ledger: the stack's PostgreSQL (``--postgres``) or its SQLite file."""
    return str(stack.extra_env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'ingress.sqlite'}")


def _in_ledger(url: str, fn: Callable[..., T]) -> T:
    """One data function of the ledger (:mod:`stores.events`) on a connection of its own."""
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return fn(session=session)
    finally:
        engine.dispose()


def _tally(*, session: Session) -> dict[str, Any]:
    states = session.exec(select(AcceptedEvent.state, func.count()).group_by(col(AcceptedEvent.state))).all()
    outcomes = session.exec(select(Delivery.outcome, func.count()).group_by(col(Delivery.outcome))).all()
    unsettled = session.exec(select(AcceptedEvent).where(col(AcceptedEvent.state) != EventState.DONE.value)
                             .limit(10)).all()
    return {"events_by_state": {str(k): int(n) for k, n in states},
            "deliveries_by_outcome": {str(k): int(n) for k, n in outcomes},
            "unsettled_sample": [(e.vendor, e.vendor_event_id, e.state, e.attempts, e.last_error)
                                 for e in unsettled]}


def ledger_state(url: str) -> dict[str, Any]:
    """Events by state, deliveries by outcome and a sample of the events without their outcome."""
    return _in_ledger(url, _tally)


def pending_events(url: str) -> list[tuple[str, datetime, datetime | None]]:
    """(state, last touched, next attempt) of each event in the ledger without its outcome yet."""
    return _in_ledger(url, unsettled_events)


def swept_by(rows: list[tuple[str, datetime, datetime | None]], *, stranded_after: float,
             sweep_every: float) -> datetime | None:
    """The latest moment by which the ledger's upkeep sweep will have routed every one of ``rows`` again (None:
    nothing is waiting). An event ``in_flight`` counts as stranded ``stranded_after`` seconds after it was last
    touched, a ``failed`` one is due when its backoff ends, and the sweep runs every ``sweep_every`` seconds, so
    an event is routed again at most one interval after it is due."""
    due: list[datetime] = []
    for state, touched, next_attempt in rows:
        if state == "failed":
            due.append(next_attempt or touched)
        else:  # in flight: routed right now, or stranded by a process that died
            due.append(touched + timedelta(seconds=stranded_after))
    return max(due) + timedelta(seconds=sweep_every) if due else None


async def ledger_settled(url: str, settings: Settings, *, slack: float = 60, cap: float = 1200) -> None:
    """Before the stack stops: let deliveries still being handled (the CRM's webhooks for the last write-backs,
    the emulators' retries) reach their outcome, so the count below sees settled events, not a snapshot.

    An event claimed by a replica killed mid-route stays in flight until it counts as stranded; a failed one
    waits for its backoff; then the next upkeep sweep routes it (:func:`swept_by`). So the wait runs to that
    moment and a little past it (``slack``, for the route itself), never a fixed time; ``cap`` bounds it."""
    give_up = time.monotonic() + cap
    while time.monotonic() < give_up:
        rows = await asyncio.to_thread(pending_events, url)
        deadline = swept_by(rows, stranded_after=settings.ledger_stranded_after_seconds,
                            sweep_every=settings.ledger_upkeep_interval_seconds)
        if deadline is None or datetime.now(UTC) > deadline + timedelta(seconds=slack):
            return
        await asyncio.sleep(1)


# ---------------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, data_dir: Path) -> tuple[Table, bool]:
    rng = random.Random(args.seed)
    settings = bench_settings(
        data_dir, contract_poll_interval_seconds=args.contract_poll, activity_retry_max_seconds=args.retry_max,
        http_timeout_seconds=args.http_timeout, poll_interval_seconds=args.deal_poll,
        activity_timeout_seconds=args.activity_timeout, ledger_upkeep_interval_seconds=args.ledger_sweep,
        ingress_temporal_timeout_seconds=3.0, **({"stack": args.stack} if args.stack else {}))
    deals = deal_specs(args.deals, args.approval_share, rng)
    timer = Timer()
    async with running_stack(settings, with_ingress=True, replicas=args.replicas,
                             with_postgres=args.postgres) as bench:
        for emulator in bench.emulators:
            await emulator.webhook_retries(args.webhook_attempts)
        await bench.acts.clm.auto_sign(args.sign_delay)
        chaos = Chaos(bench=bench, args=args, deals=deals, rng=rng)
        await seed_and_close_with_faults(chaos)
        await wait_all(chaos, time.monotonic() + args.timeout)
        await collect_results(chaos)
        books = Books()
        if args.book_deals:  # the books phase runs under the same faults
            books = await run_books(chaos, deals=args.book_deals, amendments=args.amendments_per_deal,
                                    periods=args.periods, timeout=args.timeout)
        chaos.stop.set()
        await asyncio.wait(chaos.background, timeout=60)  # type: ignore[attr-defined]
        await bench.clear_faults()
        await settle_and_check(chaos, books)
        stats = await bench.stats()
        acts = bench.acts
        url = ledger_url(bench.stack, data_dir)
        await ledger_settled(url, settings)
        ledger = await asyncio.to_thread(ledger_state, url)  # before the stack (and its PostgreSQL) stops
    elapsed = timer.elapsed
    checks = count_records(settings, acts, deals)
    return report(args, chaos, [*checks, *books.checks], ledger, stats, elapsed, books)


async def seed_and_close_with_faults(chaos: Chaos) -> None:
    # seed first (the /_sandbox acts are never faulted), then break things while the deals flow
    tasks = [asyncio.create_task(rotate_faults(chaos)), asyncio.create_task(approve_pending(chaos)),
             asyncio.create_task(replay_webhooks(chaos)), asyncio.create_task(disturb(chaos))]
    chaos.background = tasks  # type: ignore[attr-defined]
    await seed_and_close(chaos)


def report(args: argparse.Namespace, chaos: Chaos, checks: list[Check], ledger: dict[str, Any],
           stats: dict[str, Any], elapsed: float, books: Books | None = None) -> tuple[Table, bool]:
    deals = chaos.deals
    outcomes = Counter(d.state for d in deals)
    lost = [d for d in deals if d.result is None]
    exceptions = [d for d in deals if d.result and d.result.outcome is not Stage.PROVISIONED]
    unstated = [d for d in exceptions if not d.result or not d.result.reason]
    unsettled = sum(n for state, n in ledger["events_by_state"].items() if state != "done")
    table = Table("chaos", f"Chaos: {len(deals)} deals, {args.fault_rate:.0%} vendor faults (503/429/timeouts), "
                           f"{args.kills} worker SIGKILLs, {args.temporal_restarts} Temporal restart(s), "
                           f"duplicate + out-of-order webhooks"
                           + (f"; books: {sum(b.amended for b in books.deals)} amendments, "
                              f"{sum(len(b.invoices) for b in books.deals)} invoices, "
                              f"{sum(b.payments for b in books.deals)} payments" if books and books.deals else "")
                           + f" ({elapsed:.0f}s)",
                  ["check", "expected", "found", "duplicates", "missing/wrong", "result"])
    table.add("deals provisioned", len(deals), outcomes.get(Stage.PROVISIONED.value, 0), "-", "-",
              ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
    table.add("deals lost (no outcome)", 0, len(lost), "-", len(lost), "OK" if not lost else "LOST")
    table.add("deals in an exception without a reason", 0, len(unstated), "-", len(unstated),
              "OK" if not unstated else "UNSTATED")
    for c in checks:
        table.add(c.name, c.expected, c.found, c.duplicates, c.missing, "OK" if c.ok else "FAIL")
    table.add("ledger events without outcome", 0, unsettled, "-", unsettled, "OK" if not unsettled else "FAIL")
    rejected = chaos.replay_rejected
    table.add("replayed CRM deliveries rejected", 0, rejected, "-", rejected, "OK" if not rejected else "FAIL")
    faults = {v: {k: s[k] for k in ("requests", "faults", "rate_limited", "timeouts")} for v, s in stats.items()}
    injected = sum(f["faults"] + f["timeouts"] for f in faults.values())
    requests = sum(f["requests"] for f in faults.values())
    table.notes += [
        f"vendor requests {requests}, injected failures {injected} ({injected / max(requests, 1):.1%}); "
        + "; ".join(f"{v}: {f['faults']} errors, {f['timeouts']} timeouts of {f['requests']}"
                    for v, f in faults.items()),
        f"approvals given by the harness: {chaos.approvals}; CRM deliveries replayed: {chaos.replayed} "
        f"(+{chaos.replay_refused} refused with 503 while Temporal was down, {chaos.replay_rejected} rejected)",
        f"ledger: events {ledger['events_by_state']}, deliveries {ledger['deliveries_by_outcome']}",
        f"deals whose run was followed by a later trigger's run that ended `skipped` (already provisioned; "
        f"judged by the run that provisioned them): {sum(1 for d in deals if d.skipped_later)}",
        *chaos.events,
    ]
    for d in exceptions[:10]:
        table.notes.append(f"exception: deal {d.deal_id} {d.state}: {d.result.reason if d.result else ''}"[:200])
    ok = not lost and not unstated and not unsettled and not rejected and all(c.ok for c in checks)
    table.notes.append("RESULT: " + ("nothing lost, nothing duplicated" if ok else "LOST OR DUPLICATED - see above"))
    if books and books.reconciliation is not None:
        table.notes.append(f"reconciliation {books.reconciliation.run_id}: {books.reconciliation.still_open} open, "
                           f"counts {books.reconciliation.counts}")
    for c in checks:
        if not c.ok and c.note:
            table.notes.append(f"{c.name}: {c.note}"[:300])
    table.data = {"deals": len(deals), "outcomes": dict(outcomes), "lost": [d.deal_id for d in lost],
                  "checks": [c.__dict__ for c in checks], "ledger": ledger, "vendor_stats": stats,
                  "elapsed_seconds": elapsed, "ok": ok,
                  "replays": {"accepted": chaos.replayed, "refused_503": chaos.replay_refused,
                              "rejected": chaos.replay_rejected}}
    return table, ok


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--deals", type=int, default=1000)
    p.add_argument("--approval-share", type=float, default=0.10)
    p.add_argument("--fault-rate", type=float, default=0.20, help="share of vendor calls that fail")
    p.add_argument("--fault-period", type=float, default=5.0, help="seconds between fault-mode rotations")
    p.add_argument("--kills", type=int, default=2, help="worker SIGKILLs")
    p.add_argument("--temporal-restarts", type=int, default=1)
    p.add_argument("--down-seconds", type=float, default=3.0, help="how long the worker / Temporal stay down")
    p.add_argument("--replay-period", type=float, default=3.0, help="seconds between bursts of replayed webhooks")
    p.add_argument("--replay-batch", type=int, default=10, help="CRM deliveries replayed per burst")
    p.add_argument("--webhook-attempts", type=int, default=20, help="delivery attempts of the emulators")
    p.add_argument("--sign-delay", type=float, default=1.0, help="CLM auto-sign delay, seconds")
    p.add_argument("--contract-poll", type=float, default=5.0, help="quote-to-cash contract poll, seconds")
    p.add_argument("--deal-poll", type=float, default=15.0, help="CRM deal poll (the lost-webhook net)")
    p.add_argument("--ledger-sweep", type=float, default=30.0,
                   help="seconds between sweeps of the event ledger (the upkeep schedule; the product's default is "
                        "300): the run waits for the sweep to route again what a killed replica stranded")
    p.add_argument("--retry-max", type=float, default=3.0, help="activity retry backoff cap, seconds")
    p.add_argument("--http-timeout", type=float, default=2.0, help="vendor client timeout, seconds")
    p.add_argument("--activity-timeout", type=float, default=15.0,
                   help="quote-to-cash step start-to-close, seconds (how soon a step lost in a crash is retried)")
    p.add_argument("--timeout", type=float, default=1800, help="give up waiting after this many seconds")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--stack", default=None, help="a named stack (connectors/stacks.json; default: STACK or "
                   "the registry's first adapter of each role)")
    p.add_argument("--replicas", type=int, default=1, help="ingress and worker processes (make chaos REPLICAS=2): "
                   "the emulators deliver to each ingress in turn; the books phase kills one ingress with SIGKILL")
    p.add_argument("--postgres", action="store_true", help="the stores on a temporary PostgreSQL server "
                   "(make chaos PG=1); the books phase restarts it")
    p.add_argument("--book-deals", type=int, default=250,
                   help="books phase: subscription deals to amend, bill and get paid (0: no books phase); with the "
                   "defaults 500 amendments, 1,500 invoices and 1,750 payments")
    p.add_argument("--amendments-per-deal", type=int, default=2, help="books phase: amendments per contract")
    p.add_argument("--periods", type=int, default=6, help="books phase: periods billed per subscription (the "
                   "first paid in two parts)")
    p.add_argument("--keep", action="store_true", help="keep the data folder (logs, SQLite files)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stop_on_sigterm()
    data_dir = Path(tempfile.mkdtemp(prefix="revops-chaos-"))
    try:
        table, ok = asyncio.run(run(args, data_dir))
    except Exception:
        print(f"chaos run broke; logs in {data_dir / 'logs'}", file=sys.stderr)
        raise
    table.emit()
    if args.keep or not ok:
        print(f"state and logs kept in {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
