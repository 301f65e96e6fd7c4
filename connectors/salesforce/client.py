"""The Salesforce CRM adapter (:class:`connectors.ports.CrmPort`) over the REST API (one pinned version, v60.0).

Deals are Opportunities: read with their Account, their contacts through OpportunityContactRole and their
OpportunityLineItems (product data through PricebookEntry.Product2). Polls are SOQL on ``SystemModstamp``, paged
by ``nextRecordsUrl``. Write-backs are PATCHes of our ``Revops_*__c`` custom fields, idempotent by nature;
companies are upserted by the ``Revops_External_Ref__c`` external-ID field through sObject Collections (200
records per call), so repeating an upsert changes nothing.

Every call reads ``Sforce-Limit-Info`` (``api-usage=used/allowed`` in the org's rolling 24 hours); once usage
passes the headroom the calls are paced, so the org's allowance is not spent by us alone.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx

from canonical import Account, Deal
from canonical.backfill import CompanyPage
from canonical.reconciliation import FIGURES, Figures
from canonical.requests import AccountFigures, DealPage, DealWriteBack, UpsertResult
from connectors.errors import ConnectorError, NotFound, RateLimited, Rejected, Unavailable
from connectors.http import build_client, send
from connectors.identifiers import segment
from connectors.pacing import Pacer
from connectors.salesforce import mapping
from connectors.salesforce.auth import TOKEN_PATH, SalesforceAuth
from connectors.salesforce.errors import VENDOR, describe, error_for, error_message, reclassified
from connectors.salesforce.ids import normalise_id
from connectors.salesforce.spec import SalesforceSettings
from settings import Settings

log = logging.getLogger(__name__)

#: sObject Collections take at most 200 records per call
COLLECTION_LIMIT = 200
#: the query batch sizes Salesforce honours (``Sforce-Query-Options: batchSize``)
MIN_BATCH, MAX_BATCH = 200, 2000
MAX_PAGES = 10_000
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
#: CrmFigures object types -> sObjects
_FIGURE_OBJECTS = {"companies": "Account", "deals": "Opportunity", "account": "Account", "deal": "Opportunity"}


class SalesforceCrm:
    """CRM port for Salesforce. Build with :func:`from_settings`; close with :meth:`aclose`."""

    vendor = VENDOR

    def __init__(self, client: httpx.AsyncClient, *, api_version: str = "v60.0",
                 approval_stage: str = "Negotiation/Review", closed_won_stage: str = "Closed Won",
                 external_id_field: str = mapping.EXTERNAL_REF_FIELD, requests_per_second: float = 5.0,
                 limit_headroom: float = 0.8, auth: SalesforceAuth | None = None,
                 token_client: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self.auth = auth  # the connected app's session (tests read how many tokens it fetched)
        self._token_client = token_client
        self.api_version = api_version
        self.approval_stage = approval_stage
        self.closed_won_stage = closed_won_stage
        self.external_id_field = external_id_field
        self._pacer = Pacer(requests_per_second)
        self._headroom = limit_headroom
        #: (used, allowed) from the last ``Sforce-Limit-Info``
        self.api_usage: tuple[int, int] | None = None
        client.event_hooks.setdefault("response", []).append(self._read_limits)

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._token_client is not None:
            await self._token_client.aclose()

    # -- transport ------------------------------------------------------------------------------
    async def _read_limits(self, response: httpx.Response) -> None:
        match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.api_usage = (int(match.group(1)), int(match.group(2)))

    @property
    def paced(self) -> bool:
        """Whether the org's API usage passed the headroom (every call then takes a pacer slot)."""
        return bool(self.api_usage and self.api_usage[1] and self.api_usage[0] >= self._headroom * self.api_usage[1])

    def _data(self, rest: str) -> str:
        return f"/services/data/{self.api_version}/{rest}"

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self.paced:
            await self._pacer.take()
        try:
            response = await send(self._client, method, path, vendor=VENDOR, error_message=error_message, **kwargs)
        except ConnectorError as exc:
            fixed = reclassified(exc)
            if fixed is exc:  # never raise an error "from" itself: its cause chain would loop
                raise
            raise fixed from exc
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise Unavailable(f"malformed JSON from {method} {path}", vendor=VENDOR,
                              status=response.status_code) from exc

    def _sobject(self, name: str, record_id: str | None = None) -> str:
        base = self._data(f"sobjects/{segment(name, 'sObject type')}")
        return f"{base}/{normalise_id(record_id)}" if record_id is not None else base

    # -- SOQL -----------------------------------------------------------------------------------
    async def query(self, soql: str, *, batch_size: int | None = None) -> dict[str, Any]:
        """One page of a SOQL query (``records``, ``done``, ``nextRecordsUrl``)."""
        headers = {"Sforce-Query-Options": f"batchSize={max(MIN_BATCH, min(batch_size, MAX_BATCH))}"} \
            if batch_size else {}
        return self._page(await self._call("GET", self._data("query/"), params={"q": soql}, headers=headers))

    async def query_more(self, next_records_url: str) -> dict[str, Any]:
        """The page a ``nextRecordsUrl`` names (only a query locator of this API version is followed)."""
        prefix = self._data("query/")
        locator = next_records_url.removeprefix(prefix)
        if not next_records_url.startswith(prefix) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", locator):
            raise Rejected(f"not a query locator of {self.api_version}", vendor=VENDOR)
        return self._page(await self._call("GET", prefix + locator))

    async def query_all(self, soql: str) -> list[dict[str, Any]]:
        """Every record of a query, following ``nextRecordsUrl``."""
        page = await self.query(soql)
        records = list(page["records"])
        for _ in range(MAX_PAGES):
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                break
            page = await self.query_more(str(page["nextRecordsUrl"]))
            records.extend(page["records"])
        return records

    @staticmethod
    def _page(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise Unavailable("unexpected query response: no 'records'", vendor=VENDOR)
        return body

    # -- deals ----------------------------------------------------------------------------------
    async def get_deal(self, deal_id: str) -> Deal:
        """The opportunity with its account, contact roles and line items."""
        opportunity_id = normalise_id(deal_id, "Opportunity ID")
        record = await self._call("GET", self._sobject("Opportunity", opportunity_id),
                                  params={"fields": ",".join(mapping.OPPORTUNITY_READ_FIELDS)})
        if not isinstance(record, dict) or "Id" not in record:
            raise Unavailable("unexpected Opportunity response: no 'Id'", vendor=VENDOR)
        account = None
        if record.get("AccountId"):
            try:
                account = await self._call("GET", self._sobject("Account", str(record["AccountId"])),
                                           params={"fields": ",".join(mapping.ACCOUNT_READ_FIELDS)})
            except NotFound:
                log.warning("salesforce opportunity %s: its account is gone", opportunity_id)
        where = f"WHERE OpportunityId = {mapping.soql_string(opportunity_id)}"
        roles = await self.query_all(f"SELECT {', '.join(mapping.CONTACT_ROLE_READ_FIELDS)} "
                                     f"FROM OpportunityContactRole {where}")
        lines = await self.query_all(f"SELECT {', '.join(mapping.LINE_ITEM_READ_FIELDS)} "
                                     f"FROM OpportunityLineItem {where} ORDER BY SortOrder, Id")
        return mapping.deal_from_salesforce(record, account=account, contact_roles=roles, line_items=lines)

    async def write_back(self, deal_id: str, update: DealWriteBack) -> None:
        """PATCH the opportunity's ``Revops_*__c`` fields that are set."""
        fields = mapping.writeback_fields(update)
        if fields:
            await self._call("PATCH", self._sobject("Opportunity", deal_id), json=fields)

    async def search_deals_modified_since(self, since: datetime, *, after: str | None = None,
                                          limit: int = 100) -> DealPage:
        """Opportunities with ``SystemModstamp >= since``, oldest change first; ``after`` is the previous page's
        ``nextRecordsUrl``. The deals carry their own fields only: the poller loads each with :meth:`get_deal`."""
        if after:
            page = await self.query_more(after)
        else:
            page = await self.query(
                f"SELECT {', '.join(mapping.OPPORTUNITY_READ_FIELDS)} FROM Opportunity "
                f"WHERE SystemModstamp >= {mapping.soql_datetime(since)} ORDER BY SystemModstamp ASC, Id ASC",
                batch_size=limit)
        records = page["records"]
        moments = [m for r in records if (m := mapping.parse_datetime(r.get("SystemModstamp")))]
        next_url = page.get("nextRecordsUrl") if not page.get("done", True) else None
        return DealPage(deals=[mapping.deal_from_salesforce(r) for r in records],
                        next_after=str(next_url) if next_url else None,
                        checkpoint=max(moments) if moments else None)

    async def deals_modified_since(self, since: datetime, *, page_size: int = 100,
                                   pacer: Pacer | None = None) -> AsyncIterator[DealPage]:
        """Every opportunity modified at or after ``since``, page by page; a rate limit waits and asks again."""
        after: str | None = None
        for _ in range(MAX_PAGES):
            if pacer is not None:
                await pacer.take()
            try:
                page = await self.search_deals_modified_since(since, after=after, limit=page_size)
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after or 1.0)
                continue
            yield page
            if not page.next_after:
                return
            after = page.next_after

    # -- accounts -------------------------------------------------------------------------------
    async def upsert_companies(self, accounts: list[Account]) -> UpsertResult:
        """Accounts with a ``crm_id`` are updated by ID; the others upserted by the external-ID field, 200 per
        sObject Collections call. IDs come back in input order."""
        ids: list[str | None] = [None] * len(accounts)
        created = updated = 0
        by_ref: dict[str, list[int]] = {}
        by_id: dict[str, list[int]] = {}
        for index, account in enumerate(accounts):
            if account.crm_id:
                by_id.setdefault(normalise_id(account.crm_id, "Account ID"), []).append(index)
                continue
            try:
                by_ref.setdefault(mapping.account_external_ref(account), []).append(index)
            except ValueError as exc:
                raise Rejected(str(exc), vendor=VENDOR) from exc

        def record(index: int, **extra: str) -> dict[str, Any]:
            return {"attributes": {"type": "Account"}, **mapping.account_fields(accounts[index]), **extra}

        refs = list(by_ref)
        path = self._data(f"composite/sobjects/Account/{segment(self.external_id_field, 'external ID field')}")
        for start in range(0, len(refs), COLLECTION_LIMIT):
            chunk = refs[start:start + COLLECTION_LIMIT]
            results = await self._call("PATCH", path, json={"allOrNone": False, "records": [
                record(by_ref[ref][0], **{self.external_id_field: ref}) for ref in chunk]})
            for ref, result in zip(chunk, self._results(results, len(chunk)), strict=True):
                for index in by_ref[ref]:
                    ids[index] = normalise_id(result["id"])
                created, updated = (created + 1, updated) if result.get("created") else (created, updated + 1)
        crm_ids = list(by_id)
        for start in range(0, len(crm_ids), COLLECTION_LIMIT):
            chunk = crm_ids[start:start + COLLECTION_LIMIT]
            results = await self._call("PATCH", self._data("composite/sobjects"), json={"allOrNone": False, "records": [
                record(by_id[crm_id][0], Id=crm_id) for crm_id in chunk]})
            for crm_id, _result in zip(chunk, self._results(results, len(chunk)), strict=True):
                for index in by_id[crm_id]:
                    ids[index] = crm_id
                updated += 1
        return UpsertResult(ids=[i for i in ids if i is not None], created=created, updated=updated)

    @staticmethod
    def _results(body: Any, expected: int) -> list[dict[str, Any]]:
        """An sObject Collections answer: one result per record, in order; the first failure raised."""
        if not isinstance(body, list) or len(body) != expected:
            raise Unavailable("sObject Collections answered a different number of results", vendor=VENDOR)
        for result in body:
            if not isinstance(result, dict) or not result.get("success"):
                errors = result.get("errors") if isinstance(result, dict) else None
                errors = errors if isinstance(errors, list) else []
                code = str(errors[0].get("statusCode") or "") if errors and isinstance(errors[0], dict) else ""
                raise error_for(code, f"collection: {describe(errors)}", status=200)
        return body

    async def list_companies(self, *, after: str | None = None, limit: int = 100) -> CompanyPage:
        """One page of accounts in ID order (``after``: the last ID of the previous page)."""
        size = max(1, min(limit, MAX_BATCH))
        where = f" WHERE Id > {mapping.soql_string(normalise_id(after, 'Account ID'))}" if after else ""
        page = await self.query(f"SELECT {', '.join(mapping.ACCOUNT_READ_FIELDS)} FROM Account{where} "
                                f"ORDER BY Id ASC LIMIT {size}")
        accounts = [mapping.account_from_salesforce(r) for r in page["records"]]
        return CompanyPage(accounts=accounts, next_after=accounts[-1].crm_id if len(accounts) == size else None)

    # -- figures --------------------------------------------------------------------------------
    async def write_account_figures(self, company_id: str, figures: list[AccountFigures]) -> None:
        """Billing roll-ups on the account, one custom field per figure and currency."""
        fields = mapping.figures_fields(figures)
        if fields:
            await self._call("PATCH", self._sobject("Account", company_id), json=fields)

    async def write_deal_figures(self, deal_id: str, figures: list[AccountFigures]) -> None:
        """The same roll-ups for the invoices of one opportunity."""
        fields = mapping.figures_fields(figures)
        if fields:
            await self._call("PATCH", self._sobject("Opportunity", deal_id), json=fields)

    async def read_figures(self, object_type: str, ids: list[str], currencies: list[str]
                           ) -> dict[str, dict[str, Figures]]:
        """The roll-ups on accounts or opportunities per record and currency; records gone are left out."""
        sobject = _FIGURE_OBJECTS.get(object_type)
        if sobject is None:
            raise Rejected(f"no figures on {object_type!r}", vendor=VENDOR)
        wanted = [mapping.figure_field(f, c) for c in currencies for f in FIGURES]
        found: dict[str, dict[str, Figures]] = {}
        normalised = [normalise_id(i) for i in ids]
        for start in range(0, len(normalised), COLLECTION_LIMIT):
            chunk = normalised[start:start + COLLECTION_LIMIT]
            rows = await self.query_all(f"SELECT Id, {', '.join(wanted)} FROM {sobject} WHERE Id IN "
                                        f"({', '.join(mapping.soql_string(i) for i in chunk)})")
            for row in rows:
                found[normalise_id(row["Id"])] = {
                    c: Figures(currency=c, **{f: _figure(row.get(mapping.figure_field(f, c))) for f in FIGURES})
                    for c in currencies}
        by_original = dict(zip(normalised, ids, strict=True))
        return {by_original.get(k, k): v for k, v in found.items()}


def _figure(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def from_settings(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                  timeout: httpx.Timeout | float | None = None,
                  config: SalesforceSettings | None = None) -> SalesforceCrm:
    """The adapter for the configured org (``SALESFORCE_BASE_URL``), authenticated as its connected app."""
    config = config or SalesforceSettings.of(settings)
    timeout = timeout if timeout is not None else settings.http_timeout_seconds
    base = config.base_url.rstrip("/")
    token_client = build_client(base_url=base, transport=transport, timeout=timeout)
    auth = SalesforceAuth(token_url=f"{base}{TOKEN_PATH}", client_id=config.client_id,
                          client_secret=config.client_secret, jwt_username=config.jwt_username,
                          jwt_private_key=config.jwt_private_key, jwt_audience=config.jwt_audience,
                          token_client=token_client)
    client = build_client(base_url=base, transport=transport, timeout=timeout, auth=auth,
                          headers={"Accept": "application/json"})
    return SalesforceCrm(client, api_version=config.api_version, approval_stage=config.approval_stage,
                         closed_won_stage=config.closed_won_stage, external_id_field=config.external_id_field,
                         requests_per_second=config.requests_per_second, limit_headroom=config.limit_headroom,
                         auth=auth, token_client=token_client)
