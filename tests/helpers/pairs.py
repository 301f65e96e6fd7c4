"""The CRM/CLM pairs the stack presets name (``connectors/stacks.json``): flow tests run against each pair,
parametrised, never copied per vendor. A :class:`Pair` holds the settings that choose the pair and each side's
human acts (a salesperson in the CRM, a signer and the legal team in the CLM), so a test speaks in roles:
seed a deal, sign its contract, amend it, read back what the flows wrote to the deal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle

from canonical import ContractTerms
from connectors.acts import ClmActs, CrmActs, DealDraft, SeededDeal
from runtime.launch import start_quote_to_cash
from settings import Settings, stack_presets
from tests.helpers.waiting import eventually
from workflows.models import QuoteToCashResult, QuoteToCashStatus, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


def crm_clm_stacks() -> list[str]:
    """One stack preset per distinct CRM/CLM choice (the first that names it): the pairs to run flows against."""
    seen: dict[tuple[Any, Any], str] = {}
    for name, preset in stack_presets().items():
        seen.setdefault((preset.get("crm_adapter"), preset.get("clm_adapter")), name)
    return list(seen.values())


def pair_settings(settings: Settings, stack: str) -> Settings:
    """``settings`` with the CRM and CLM the ``stack`` preset chooses (the registry's defaults where it names
    none); the ERPs stay as ``settings`` has them."""
    preset = stack_presets()[stack]
    return settings.model_copy(update={k: preset.get(k) for k in ("crm_adapter", "clm_adapter")})


@dataclass
class Pair:
    """A CRM and a CLM chosen by settings alone, and the people acting in each."""

    stack: str
    settings: Settings
    crm_name: str
    clm_name: str
    crm: CrmActs
    clm: ClmActs

    async def seed(self, draft: DealDraft | None = None) -> SeededDeal:
        return await self.crm.seed_deal(draft or DealDraft())

    async def sign_when_out(self, handle: WorkflowHandle[Any, Any]) -> str:
        """Wait until the run sent its contract out for signature, then every party signs it in the CLM."""
        status: QuoteToCashStatus = await eventually(
            lambda: handle.query(QuoteToCashWorkflow.status),
            lambda s: s.stage is Stage.AWAITING_SIGNATURE and bool(s.contract and s.contract.clm_workflow_id),
            timeout=60, what="the contract out for signature")
        contract_id = status.contract.clm_workflow_id  # type: ignore[union-attr]
        assert contract_id
        await self.clm.sign(contract_id)
        return contract_id

    async def provision(self, client: Client, draft: DealDraft | None = None
                        ) -> tuple[SeededDeal, QuoteToCashResult]:
        """Quote-to-cash for a new deal, signed in the CLM, run to its end (provisioned)."""
        seeded = await self.seed(draft)
        handle = await start_quote_to_cash(client, self.settings, seeded.deal_id)
        await self.sign_when_out(handle)
        result: QuoteToCashResult = await handle.result()
        assert result.outcome is Stage.PROVISIONED, result.reason
        assert result.contract and result.contract.clm_record_id and result.contract.terms
        return seeded, result

    async def amend(self, record_id: str, sequence: int, before: ContractTerms, after: ContractTerms) -> str:
        """The CLM executes amendment ``sequence`` with what changed; the amendment's own ID."""
        done = await self.clm.amend(record_id, sequence=sequence, before=before, after=after)
        amendment_id = str(done.get("amendment_id") or "")
        assert amendment_id, done
        return amendment_id

    async def deal_field(self, deal_id: str, field: str) -> str:
        """What the flows wrote back to the deal's ``field`` (a :class:`~canonical.deal.DealWriteBack` name)."""
        return await self.crm.written_back(deal_id, field)


__all__ = ["Pair", "crm_clm_stacks", "pair_settings"]
