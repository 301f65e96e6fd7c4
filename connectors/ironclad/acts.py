"""The customer and the legal team in Ironclad, through the emulator's ``/_sandbox/`` controls
(:class:`connectors.acts.ClmActs`)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from canonical import ContractTerms
from connectors.acts import EmulatorControls, RecordSource, Signed
from connectors.errors import Rejected
from connectors.ironclad.mapping import terms_to_attributes
from connectors.ironclad.spec import IroncladSettings

if TYPE_CHECKING:  # pragma: no cover
    from settings import Settings


class IroncladActs:
    """:class:`connectors.acts.ClmActs` for Ironclad."""

    def __init__(self, controls: EmulatorControls, config: IroncladSettings, settings: Settings) -> None:
        self.controls = controls
        self.config = config
        self.settings = settings

    def signed_headers(self, url: str, body: bytes) -> dict[str, str]:
        """Ironclad signs with its own private key: only the emulator can deliver its webhooks."""
        raise Rejected("Ironclad's webhooks are signed with its private key; only it can deliver them",
                       vendor=self.controls.spec.name)

    async def sign(self, contract_id: str, *, executed_date: str | None = None) -> Signed:
        body = {"executed_date": executed_date} if executed_date else None
        signed = await self.controls.control(f"workflows/{contract_id}/sign", body)
        return Signed(contract_id=str(signed.get("workflowId") or contract_id),
                      record_id=str(signed.get("recordId") or ""), status=str(signed.get("status") or ""))

    async def decline(self, contract_id: str, *, reason: str) -> Signed:
        declined = await self.controls.control(f"workflows/{contract_id}/decline", {"reason": reason})
        return Signed(contract_id=str(declined.get("workflowId") or contract_id), record_id="",
                      status=str(declined.get("status") or ""))

    async def auto_sign(self, delay_seconds: float) -> None:
        await self.controls.control("autosign", {"delay_seconds": delay_seconds})

    async def amend(self, record_id: str, *, sequence: int, before: ContractTerms | None = None,
                    after: ContractTerms | None = None, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        props: dict[str, Any] = dict(attributes or {})
        if before is not None and after is not None:
            old, new = terms_to_attributes(before), terms_to_attributes(after)
            props.update({k: v for k, v in new.items() if old.get(k) != v})
        done = dict(await self.controls.control(f"records/{record_id}/amendments",
                                                {"sequence": sequence, "properties": props}) or {})
        return {**done, "amendment_id": str(done.get("recordId") or "")}

    def contracts_seen(self, records: RecordSource) -> Counter[str]:
        return Counter(str(doc["attributes"]["revopsDealId"]) for _, doc in records.records("workflow")
                       if (doc.get("attributes") or {}).get("revopsDealId"))


def create_acts(controls: EmulatorControls, config: IroncladSettings, settings: Settings) -> IroncladActs:
    return IroncladActs(controls, config, settings)


__all__ = ["IroncladActs", "create_acts"]
