"""A CRM company's figures owner writes the unbilled balance next to billed, paid, outstanding and overdue:
each deal's executed contract value (read from the CLM) less what was invoiced net of credit notes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from temporalio.client import Client
from temporalio.worker import Worker

from canonical import Account, BillingModel, Contact, ContractTerms, Money
from canonical.company_figures import FiguresReport
from canonical.ledger import CurrencySums
from canonical.requests import AccountFigures, ContractRequest
from settings import Settings
from tests.helpers.activities import role_activities
from tests.helpers.fakes import FakePorts, fake_deal
from tests.helpers.waiting import eventually
from workflows.company_figures import CompanyFiguresWorkflow
from workflows.models import FIGURES_SIGNAL, CompanyFiguresInput


def report(company: str, deal: str, *, billed: str, credited: str = "0", at: datetime) -> FiguresReport:
    sums = [CurrencySums(currency="USD", billed=Decimal(billed), credited=Decimal(credited),
                         outstanding=Decimal(billed) - Decimal(credited), billed_in_window=Decimal(billed))]
    return FiguresReport(customer_id="cus_us", company_id=company, as_of=at, dso_window_days=90, company=sums,
                         deals={deal: sums})


def unbilled(figures: list[AccountFigures]) -> dict[str, str | None]:
    return {f.currency: f.unbilled for f in figures}


async def test_unbilled_is_written_to_the_crm_and_goes_back_up_after_a_credit_note_and_a_void(
        client: Client, flow_settings: Settings) -> None:
    """By hand: contract 30,000.00, one 12,000.00 invoice -> 18,000.00 unbilled on the deal and the company; a
    2,000.00 credit note -> 20,000.00; the invoice voided (billed no more) -> 30,000.00."""
    ports = FakePorts()
    deal = fake_deal(model=BillingModel.MILESTONE)
    ports.add_deal(deal)
    assert deal.account and deal.account.crm_id
    company = deal.account.crm_id
    ports.crm.companies[company] = deal.account
    launched = await ports.clm.launch_contract(ContractRequest(
        deal_crm_id=deal.crm_id, title="Order form", legal_entity="US01", counterparty=Account(name="Fake Co"),
        signer=Contact(first_name="Sam", last_name="Signer", email="sam@example.com"),
        terms=ContractTerms(start_date=date(2027, 1, 1), total_value=Money.of("30000.00", "USD"),
                            billing_model=BillingModel.MILESTONE)), idempotency_key=f"k-{uuid.uuid4()}")
    assert launched.clm_workflow_id
    ports.clm.sign(launched.clm_workflow_id)
    at = datetime.now(UTC)
    async with Worker(client, task_queue=flow_settings.task_queue, workflows=[CompanyFiguresWorkflow],
                      activities=role_activities(flow_settings, **ports.as_kwargs())):
        handle = await client.start_workflow(
            CompanyFiguresWorkflow.run, CompanyFiguresInput(company_id=company, reports=[
                report(company, deal.crm_id, billed="12000.00", at=at)]),
            id=f"figures-fake-{uuid.uuid4()}", task_queue=flow_settings.task_queue)
        deal_figures = await eventually(lambda: ports.crm.figures.get(deal.crm_id, []),
                                        lambda f: unbilled(f) == {"USD": "18000.00"}, what="18,000.00 unbilled")
        assert (deal_figures[0].billed, deal_figures[0].credited) == ("12000.00", "0.00")
        assert unbilled(ports.crm.figures[company]) == {"USD": "18000.00"}

        await handle.signal(FIGURES_SIGNAL, report(company, deal.crm_id, billed="12000.00", credited="2000.00",
                                                   at=at + timedelta(minutes=1)))
        await eventually(lambda: ports.crm.figures.get(deal.crm_id, []),
                         lambda f: unbilled(f) == {"USD": "20000.00"}, what="credit note: 20,000.00 unbilled")

        await handle.signal(FIGURES_SIGNAL, report(company, deal.crm_id, billed="0", at=at + timedelta(minutes=2)))
        await eventually(lambda: ports.crm.figures.get(company, []),
                         lambda f: unbilled(f) == {"USD": "30000.00"}, what="void: 30,000.00 unbilled")
        shown = await handle.query(CompanyFiguresWorkflow.figures)
        assert unbilled(shown.deals[deal.crm_id]) == {"USD": "30000.00"}
        await handle.terminate("test over")
