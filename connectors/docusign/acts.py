"""The customer and the legal team in DocuSign, through the emulator's ``/_sandbox/`` controls
(:class:`connectors.acts.ClmActs`): a person signs or declines an envelope, an amendment is signed."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from canonical import ContractTerms
from connectors.acts import EmulatorControls, RecordSource, Signed
from connectors.docusign.mapping import DEAL_FIELD, PARENT_FIELD, custom_fields, terms_to_tabs
from connectors.docusign.spec import DocuSignSettings
from connectors.docusign.webhooks import signature_headers

if TYPE_CHECKING:  # pragma: no cover
    from settings import Settings


class DocuSignActs:
    """:class:`connectors.acts.ClmActs` for DocuSign."""

    def __init__(self, controls: EmulatorControls, config: DocuSignSettings, settings: Settings) -> None:
        self.controls = controls
        self.config = config
        self.settings = settings

    def signed_headers(self, url: str, body: bytes) -> dict[str, str]:
        """Connect's headers: the HMAC of the body under each key we share with DocuSign."""
        return {"Content-Type": "application/json", **signature_headers(self.config.connect_hmac_keys, body)}

    async def sign(self, contract_id: str, *, executed_date: str | None = None) -> Signed:
        body = {"completed_date": executed_date} if executed_date else None
        signed = await self.controls.control(f"envelopes/{contract_id}/sign", body)
        return Signed(contract_id=str(signed.get("envelopeId") or contract_id),
                      record_id=str(signed.get("envelopeId") or contract_id), status=str(signed.get("status") or ""))

    async def decline(self, contract_id: str, *, reason: str) -> Signed:
        declined = await self.controls.control(f"envelopes/{contract_id}/decline", {"reason": reason})
        return Signed(contract_id=str(declined.get("envelopeId") or contract_id), record_id="",
                      status=str(declined.get("status") or ""))

    async def auto_sign(self, delay_seconds: float) -> None:
        await self.controls.control("autosign", {"delay_seconds": delay_seconds})

    async def amend(self, record_id: str, *, sequence: int, before: ContractTerms | None = None,
                    after: ContractTerms | None = None, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        """An amendment envelope for the original ``record_id``, signed at once: the tabs that change from
        ``before`` to ``after`` plus ``attributes`` (tab labels)."""
        # tab values are text in DocuSign, whatever a person typed
        tabs: dict[str, Any] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (attributes or {}).items()}
        if before is not None and after is not None:
            old, new = terms_to_tabs(before), terms_to_tabs(after)
            tabs.update({k: v for k, v in new.items() if old.get(k) != v})
            tabs.update({k: "" for k in old if k not in new})
        done = dict(await self.controls.control(f"envelopes/{record_id}/amendments",
                                                {"sequence": sequence, "tabs": tabs}) or {})
        return {**done, "amendment_id": str(done.get("envelopeId") or "")}

    def contracts_seen(self, records: RecordSource) -> Counter[str]:
        seen: Counter[str] = Counter()
        for _tenant, envelope in records.records("envelope"):
            fields = custom_fields(envelope)
            if fields.get(DEAL_FIELD) and not fields.get(PARENT_FIELD):
                seen[fields[DEAL_FIELD]] += 1
        return seen


def create_acts(controls: EmulatorControls, config: DocuSignSettings, settings: Settings) -> DocuSignActs:
    return DocuSignActs(controls, config, settings)


__all__ = ["DocuSignActs", "create_acts"]
