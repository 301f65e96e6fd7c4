"""The Ironclad CLM adapter: ``ClmPort`` over Ironclad's public API v1.

Paths are the vendor's (``<base>/public/api/v1/...``); the OAuth 2.0 client-credentials token comes from
``<base>/oauth/token`` and every call acts as ``IRONCLAD_USER_EMAIL`` (``x-as-user-email``), which
Ironclad requires for client-credentials tokens. Ironclad has no idempotency header, so a launch first
lists workflows filtered by our ``revopsKey`` attribute and creates only when none exists.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from canonical import Contract, ContractStatus, ContractTerms
from canonical.requests import ContractRequest
from connectors.errors import NotFound, Rejected, Unavailable
from connectors.http import ClientCredentialsAuth, build_client, send
from connectors.identifiers import SAFE_ID, segment
from connectors.ironclad import mapping
from connectors.ironclad.mapping import KEY_ATTRIBUTE, MappingError
from connectors.ironclad.spec import IroncladSettings
from connectors.pacing import Pacer
from settings import Settings

VENDOR = "ironclad"
log = logging.getLogger("revops.connectors")


def _id(value: str | None) -> str:
    """An Ironclad workflow or record ID, quoted for a path; ``InvalidIdentifier`` otherwise."""
    return segment(value, "Ironclad ID", SAFE_ID, vendor=VENDOR)
API_PREFIX = "/public/api/v1"
TOKEN_PATH = "/oauth/token"
#: what the adapter does, as Ironclad OAuth scopes
SCOPES = ("public.workflows.readWorkflows public.workflows.createWorkflows public.workflows.cancel "
          "public.records.readRecords")
_ALL_STATUSES = ("active", "paused", "completed", "cancelled")
_MAX_PAGES = 50
_MAX_RECORD_PAGES = 1000  # a bound on the records listing: 100,000 contracts


def error_message(response: httpx.Response) -> str:
    """Ironclad's explanation: ``{"code", "message", "param"}`` (API) or ``{"error", "error_description"}``
    (OAuth)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if not isinstance(body, dict):
        return response.text[:500]
    if "message" in body:
        parts = [str(body.get("code") or ""), str(body["message"])]
        text = ": ".join(p for p in parts if p)
        return f"{text} (param {body['param']})" if body.get("param") else text
    if "error" in body:
        return f"{body['error']}: {body.get('error_description', '')}".rstrip(": ")
    return response.text[:500]


def _json(response: httpx.Response) -> Any:
    try:
        # Decimal keeps monetary amounts exact
        return json.loads(response.content, parse_float=Decimal)
    except ValueError as exc:
        raise Unavailable(f"unreadable response from {response.request.url.path}", vendor=VENDOR,
                          status=response.status_code) from exc


def _formula_text(value: str) -> str:
    """A value inside an Ironclad filter formula's single quotes."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


class IroncladClm:
    """``ClmPort`` for Ironclad: launch a workflow, follow it, read the executed record and amendments."""

    vendor = VENDOR

    def __init__(self, client: httpx.AsyncClient, *, token_client: httpx.AsyncClient | None = None,
                 page_size: int = 100, template_id: str = "tmpl-msa-order-form",
                 reads_per_second: float | None = None) -> None:
        self._client = client
        # the amendment poll's reads (a record list, then each changed contract with its amendments) are paced
        # here, where each request is made: the caller sees only pages
        self._reads_per_second = reads_per_second
        self._template_id = template_id  # contracts launch from it unless a request names another
        self._token_client = token_client
        self._page_size = page_size
        # one launch per key at a time in this process, so look-up-before-create cannot race itself;
        # weak values: a key's lock goes away once no launch holds it
        self._launch_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._token_client is not None:
            await self._token_client.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await send(self._client, method, f"{API_PREFIX}{path}", vendor=VENDOR,
                          error_message=error_message, **kwargs)

    # -- ClmPort ---------------------------------------------------------------------------------
    async def launch_contract(self, request: ContractRequest, *, idempotency_key: str) -> Contract:
        """Launch the contract workflow, or return the one already launched with this key."""
        try:
            if request.template_id is None:
                request = request.model_copy(update={"template_id": self._template_id})
            body = mapping.launch_body(request, idempotency_key=idempotency_key)
        except MappingError as exc:
            raise Rejected(f"cannot encode the contract request: {exc}", vendor=VENDOR) from exc
        lock = self._launch_locks.get(idempotency_key)
        if lock is None:
            lock = self._launch_locks[idempotency_key] = asyncio.Lock()
        async with lock:
            existing = await self._find_by_key(idempotency_key)
            if existing is not None:
                found = mapping.contract_from_workflow(existing)
                # already signed: answer with the executed record, as get_contract would
                return await self.get_contract(str(existing["id"])) if found.clm_record_id else found
            response = await self._request("POST", "/workflows", json=body)
            return mapping.contract_from_workflow(_json(response))

    async def get_contract(self, clm_workflow_id: str) -> Contract:
        """The workflow's status; once completed, the record's executed terms and amendments."""
        workflow = _json(await self._request("GET", f"/workflows/{_id(clm_workflow_id)}"))
        contract = mapping.contract_from_workflow(workflow)
        if contract.status is ContractStatus.EXECUTED and contract.clm_record_id:
            executed = await self.get_record(contract.clm_record_id)
            return executed.model_copy(update={"clm_workflow_id": contract.clm_workflow_id,
                                               "deal_crm_id": executed.deal_crm_id or contract.deal_crm_id})
        return contract

    async def get_record(self, record_id: str) -> Contract:
        """An executed record with its terms as amended and every amendment, in sequence."""
        return await self._contract(record_id, None)

    async def _contract(self, record_id: str, pacer: Pacer | None) -> Contract:
        """:meth:`get_record`, each read taking a ``pacer`` slot when one is given."""
        record = await self._get_record(record_id, pacer)
        amendments = [await self._get_record(str(ref), pacer) for ref in record.get("amendments") or []]
        try:
            return mapping.contract_from_record(record, amendments)
        except MappingError as exc:
            raise Rejected(f"record {record_id} cannot be read as a contract: {exc}", vendor=VENDOR) from exc

    async def get_signed_terms(self, record_id: str) -> ContractTerms:
        """The record's terms as first signed (before its amendments), from the properties' original values."""
        record = await self._get_record(record_id)
        amendments = [await self._get_record(str(ref)) for ref in record.get("amendments") or []]
        try:
            return mapping.signed_terms_from_record(record, amendments)
        except MappingError as exc:
            raise Rejected(f"record {record_id} cannot be read as contract terms: {exc}", vendor=VENDOR) from exc

    async def cancel_contract(self, clm_workflow_id: str, *, reason: str) -> None:
        """Cancel the workflow with ``reason`` as its comment; cancelling a cancelled one is a no-op."""
        try:
            await self._request("POST", f"/workflows/{_id(clm_workflow_id)}/cancel",
                                json={"comment": {"message": reason or "cancelled by revops"}})
        except Rejected:
            # a retry after a lost response: the workflow is already cancelled, which is what we want
            workflow = _json(await self._request("GET", f"/workflows/{_id(clm_workflow_id)}"))
            if workflow.get("status") != "cancelled":
                raise

    async def list_executed_records(self, *, deal_ids: list[str] | None = None) -> list[Contract]:
        """Every executed contract record (amendment records left out), as contracts with their terms as
        they stand; ``deal_ids`` keeps those of these CRM deals. A record whose terms cannot be read still
        comes back (without terms) so reconciliation sees it."""
        wanted = set(deal_ids) if deal_ids is not None else None
        contracts: list[Contract] = []
        size = 100  # the records list's largest page
        for page in range(_MAX_RECORD_PAGES):
            body = _json(await self._request("GET", "/records", params={"page": page, "pageSize": size}))
            items = body.get("list") or []
            for record in items:
                props = mapping.property_values(record.get("properties") or {})
                if record.get("parentId") or mapping.AMENDMENT_NUMBER in props:
                    continue
                deal_id = props.get("revopsDealId")
                if wanted is not None and deal_id not in wanted:
                    continue
                try:
                    contracts.append(mapping.contract_from_record(record, []))
                except MappingError:
                    contracts.append(Contract(clm_record_id=str(record["id"]), title=str(record.get("name") or ""),
                                              counterparty=str(props.get("counterpartyName") or ""),
                                              status=ContractStatus.EXECUTED,
                                              deal_crm_id=str(deal_id) if deal_id else None))
            if len(items) < size or (page + 1) * size >= int(body.get("count") or 0):
                break
        return contracts

    async def records_changed_since(self, since: datetime, *, cursor: str | None = None
                                    ) -> tuple[list[Contract], str | None]:
        """One page of records updated at or after ``since`` (``GET /records?lastUpdated=…``, oldest update
        first), as the executed contracts they belong to: an amendment record names its parent, which is read
        with all its amendments. ``cursor`` is Ironclad's page number. A record that cannot be read as a
        contract (not launched by us, or gone since) is left out with a warning naming its ID."""
        stamp = (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC)
        page = int(cursor) if cursor and cursor.isdigit() else 0
        size = 100  # the records list's largest page
        pacer = Pacer(self._reads_per_second) if self._reads_per_second else None
        if pacer is not None:
            await pacer.take()
        body = _json(await self._request("GET", "/records", params={
            "lastUpdated": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "sortField": "lastUpdated", "sortDirection": "ASC", "page": page, "pageSize": size}))
        items = body.get("list") or []
        wanted: list[str] = []
        for record in items:
            record_id = str(record.get("parentId") or record.get("id") or "")
            if record_id and record_id not in wanted:
                wanted.append(record_id)
        contracts: list[Contract] = []
        for record_id in wanted:
            try:
                contracts.append(await self._contract(record_id, pacer))
            except (Rejected, NotFound) as exc:  # InvalidIdentifier is a Rejected
                log.warning("record left out of the amendment poll: unreadable",
                            extra={"vendor": VENDOR, "record_id": record_id[:64], "error": type(exc).__name__})
        more = len(items) == size and (page + 1) * size < int(body.get("count") or 0)
        return contracts, str(page + 1) if more else None

    # -- beyond the port ----------------------------------------------------------------------
    async def webhook_verification_key(self) -> str:
        """The PEM public key Ironclad signs webhooks with (``GET /webhooks/verification-key``)."""
        response = await self._request("GET", "/webhooks/verification-key", headers={"Accept": "text/plain"})
        return response.text

    async def _get_record(self, record_id: str, pacer: Pacer | None = None) -> dict[str, Any]:
        if pacer is not None:
            await pacer.take()
        record = _json(await self._request("GET", f"/records/{_id(record_id)}"))
        if not isinstance(record, dict):
            raise Unavailable(f"record {record_id}: unexpected body", vendor=VENDOR)
        return record

    async def _find_by_key(self, key: str) -> dict[str, Any] | None:
        """The oldest workflow launched with ``key`` (any status), following Ironclad's pages."""
        matches: list[dict[str, Any]] = []
        for page in range(_MAX_PAGES):
            params: list[tuple[str, str | int]] = [("status", s) for s in _ALL_STATUSES]
            params += [("filter", f"Equals([{KEY_ATTRIBUTE}], '{_formula_text(key)}')"),
                       ("page", page), ("pageSize", self._page_size)]
            body = _json(await self._request("GET", "/workflows", params=params))
            items = body.get("list") or []
            matches += [w for w in items if (w.get("attributes") or {}).get(KEY_ATTRIBUTE) == key]
            if len(items) < self._page_size or (page + 1) * self._page_size >= int(body.get("count") or 0):
                break
        return min(matches, key=lambda w: str(w.get("created") or "")) if matches else None


def from_settings(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                  timeout: float | httpx.Timeout | None = None, config: IroncladSettings | None = None
                  ) -> IroncladClm:
    """The adapter for the configured Ironclad (``IRONCLAD_BASE_URL``) with client-credentials auth."""
    config = config or IroncladSettings.of(settings)
    base = config.base_url.rstrip("/")
    timeout = timeout if timeout is not None else settings.http_timeout_seconds
    token_client = build_client(base_url=base, transport=transport, timeout=timeout)
    auth = ClientCredentialsAuth(token_url=f"{base}{TOKEN_PATH}", client_id=config.client_id,
                                 client_secret=config.client_secret, scope=SCOPES, vendor=VENDOR,
                                 token_client=token_client, body_format="json")
    client = build_client(base_url=base, auth=auth, transport=transport, timeout=timeout,
                          headers={"x-as-user-email": config.user_email, "Accept": "application/json"})
    return IroncladClm(client, token_client=token_client, template_id=config.template_id,
                       reads_per_second=config.requests_per_second)


__all__ = ["IroncladClm", "error_message", "from_settings"]
