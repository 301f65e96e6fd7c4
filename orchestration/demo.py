"""``make demo``: the main job on the embedded default, from the CRM side.

Starts the stack (Temporal dev server + UI, emulators, ingress, worker) on a fresh data folder, seeds
deals in the HubSpot emulator and moves them to closed-won: the emulator's signed webhooks reach the
ingress, which starts quote-to-cash. One deal needs finance approval and is approved through
``starter.py approve``; one lacks data and is corrected in the CRM. Ironclad signs by itself after a few
seconds (the emulator's auto-sign). Prints each deal's outcome and IDs and the UI link of each run.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
from temporalio.client import Client, WorkflowFailureError

from orchestration.connect import data_converter
from orchestration.launch import quote_to_cash_id
from orchestration.stack import Stack, stop_on_sigterm
from sandbox.hubspot.seed import DealSpec, Line
from settings import ROOT, Settings
from workflows.models import QuoteToCashResult, QuoteToCashStatus, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


@dataclass
class DemoDeal:
    title: str
    spec: DealSpec
    expected: Stage
    needs_approval: bool = False
    fix: dict[str, str] | None = None
    deal_id: str = ""


def demo_deals() -> list[DemoDeal]:
    return [
        DemoDeal("subscription, auto-approved", DealSpec(model="subscription", company="Northwind Traders Inc",
                                                        name="Northwind platform"), Stage.PROVISIONED),
        DemoDeal("30% discount: finance approves", DealSpec(
            model="subscription", company="Globex Corporation", name="Globex enterprise",
            lines=[Line("PLAT-ENT", "Enterprise seats", quantity="150", price="90.00", discount="30",
                        model="subscription", frequency="monthly")]), Stage.PROVISIONED, needs_approval=True),
        DemoDeal("missing region and start date: corrected in the CRM", DealSpec(
            model="milestone", company="Initech Ltd", name="Initech rollout", region=None, start_date=None),
            Stage.PROVISIONED, fix={"revops_region": "NA", "revops_start_date": "2027-03-01"}),
        DemoDeal("US platform + German rollout: split across two entities", DealSpec(
            model="subscription", company="Umbrella Holdings", name="Umbrella global",
            lines=[Line("PLAT-PRO", "Platform seats", quantity="25", price="45.00", model="subscription",
                        frequency="monthly"),
                   Line("MS-ROLLOUT-DE", "German rollout", price="12000.00", model="milestone", entity="EU01")]),
            Stage.PROVISIONED),
        DemoDeal("time and materials in the UK", DealSpec(
            model="time_and_materials", company="Stark Consulting", name="Stark advisory", region="EMEA",
            currency="GBP", country="GB"), Stage.PROVISIONED),
    ]


def starter(*args: str) -> str:
    """Run ``starter.py`` as finance would, and show what it printed."""
    done = subprocess.run([sys.executable, "starter.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=_stack_env)
    output = (done.stdout + done.stderr).strip()
    print(f"  $ starter.py {' '.join(args)}\n    {output}")
    if done.returncode != 0:
        raise RuntimeError(f"starter.py {' '.join(args)} failed: {output}")
    return output


_stack_env: dict[str, str] = {}


async def wait_stage(client: Client, workflow_id: str, stage: Stage, timeout: float = 120) -> QuoteToCashStatus:
    handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run, workflow_id)
    deadline = time.monotonic() + timeout
    while True:
        try:
            status: QuoteToCashStatus = await handle.query(QuoteToCashWorkflow.status)
            if status.stage is stage:
                return status
        except Exception:  # the run may not exist yet: the webhook is on its way
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{workflow_id} did not reach {stage.value} in {timeout:.0f}s")
        await asyncio.sleep(0.5)


async def run_demo(settings: Settings, stack: Stack) -> int:
    client = await Client.connect(stack.temporal_address, data_converter=data_converter(settings))
    async with httpx.AsyncClient(timeout=15) as http:
        (await http.post(f"{settings.ironclad_base_url}/_sandbox/autosign", json={"delay_seconds": 3.0})
         ).raise_for_status()
        deals = demo_deals()
        print("\nSeeding deals in the HubSpot emulator and moving them to closed-won (webhooks start the flows):")
        for deal in deals:
            seeded = await http.post(f"{settings.hubspot_base_url}/_sandbox/seed/deal", json=deal.spec.payload())
            seeded.raise_for_status()
            deal.deal_id = str(seeded.json()["dealId"])
            moved = await http.post(f"{settings.hubspot_base_url}/_sandbox/deals/{deal.deal_id}/stage",
                                    json={"stage": settings.hubspot_closed_won_stage})
            moved.raise_for_status()
            print(f"  deal {deal.deal_id}: {deal.spec.name} ({deal.title})")

        for deal in deals:
            workflow_id = quote_to_cash_id(deal.deal_id)
            if deal.needs_approval:
                status = await wait_stage(client, workflow_id, Stage.AWAITING_APPROVAL)
                print(f"\n{workflow_id} waits for finance: {'; '.join(status.approval.reasons)}"  # type: ignore[union-attr]
                      )
                starter("pending")
                starter("approve", workflow_id, "--approver", "Dana (Finance)", "--note", "strategic account")
            if deal.fix:
                status = await wait_stage(client, workflow_id, Stage.DATA_EXCEPTION)
                print(f"\n{workflow_id} is in a data exception: " + "; ".join(str(m) for m in status.missing))
                print(f"  a salesperson fills in {', '.join(deal.fix)} in HubSpot (its webhook re-checks the deal)")
                (await http.patch(f"{settings.hubspot_base_url}/_sandbox/deals/{deal.deal_id}",
                                  json={"properties": deal.fix})).raise_for_status()

        print("\nWaiting for every deal to finish...")
        results: list[tuple[DemoDeal, QuoteToCashResult | None, str]] = []
        for deal in deals:
            handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run, quote_to_cash_id(deal.deal_id))
            try:
                result: QuoteToCashResult = await asyncio.wait_for(handle.result(), timeout=180)
                results.append((deal, result, ""))
            except (TimeoutError, WorkflowFailureError) as exc:
                results.append((deal, None, f"{type(exc).__name__}: {exc}"))
    print_table(settings, results)
    failed = [d for d, r, _ in results if r is None or r.outcome is not d.expected]
    return 1 if failed else 0


def print_table(settings: Settings, results: list[tuple[DemoDeal, QuoteToCashResult | None, str]]) -> None:
    print("\n" + "=" * 132)
    print(f"{'deal':<9} {'name':<20} {'outcome':<12} {'entity':<6} {'Ironclad workflow':<25} {'Xero contact':<14} "
          f"{'project':<18} {'Stripe customer':<21} schedule")
    print("-" * 132)
    for deal, result, error in results:
        if result is None:
            print(f"{deal.deal_id:<9} {deal.spec.name:<20} ERROR        {error}")
            continue
        clm = result.contract.clm_workflow_id if result.contract else "-"
        rows = result.engagements or [None]
        for index, engagement in enumerate(rows):
            head = (f"{deal.deal_id:<9} {deal.spec.name:<20} {result.outcome.value:<12}" if index == 0
                    else " " * 43)
            if engagement is None:
                print(f"{head} {'-':<6} {clm or '-':<25} {result.reason}")
                continue
            project = engagement.project.code if engagement.project else "-"
            schedule = ",".join(engagement.billing_schedule_ids[:1]) or "-"
            print(f"{head} {engagement.legal_entity:<6} {(clm if index == 0 else ''):<25} "
                  f"{(engagement.erp_contact_id or '-')[:12]:<14} {project:<18} "
                  f"{engagement.billing_customer_id or '-':<21} {schedule}")
    print("=" * 132)
    print("\nEach run in the Temporal UI:")
    for deal, _result, _error in results:
        workflow_id = quote_to_cash_id(deal.deal_id)
        print(f"  {settings.temporal_ui_url}/namespaces/default/workflows/{workflow_id}")
    print("\nFind a run by any ID:  .venv/bin/python starter.py find stripe:customer:<id>")


def main() -> None:
    stop_on_sigterm()
    settings = Settings()
    data_dir = settings.data_dir / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    # The demo's own services (a fresh folder) on the configured ports; nothing else may hold them.
    demo_settings = settings.model_copy(update={"data_dir": data_dir})
    stack = Stack(settings=demo_settings, data_dir=data_dir)
    code = 1
    try:
        print("Starting the embedded stack (Temporal dev server + UI, emulators, ingress, worker)...")
        stack.start()
        _stack_env.update(stack.env())
        code = asyncio.run(run_demo(demo_settings, stack))
        stack.check_alive()
        if sys.stdin.isatty():
            print("\nThe stack stays up so the links above work; press Ctrl-C to stop it.")
            while True:
                time.sleep(1)
                stack.check_alive()
    except KeyboardInterrupt:
        print("\nstopping...")
    except Exception as exc:
        print(f"\ndemo failed: {exc}\nlogs: {data_dir / 'logs'}", file=sys.stderr)
        code = 1
    finally:
        stack.stop()
    print("\ndemo " + ("succeeded" if code == 0 else "FAILED") + f"; logs and state in {data_dir}")
    sys.exit(code)


if __name__ == "__main__":
    main()
