"""The HubSpot CRM adapter (:class:`connectors.ports.CrmPort`) over CRM objects v3, associations v4
and properties v3, authenticated with a private-app bearer token.

Idempotency: companies are upserted by ``revops_external_ref`` (a ``hasUniqueValue`` property), so
repeating an upsert changes nothing; write-backs are PATCHes of our own ``revops_*`` properties,
idempotent by nature. HubSpot refuses writes to properties that do not exist, so the adapter creates
its property definitions through the Properties API: lazily before its first write (once per
adapter), or eagerly when the worker calls :meth:`HubSpotCrm.ensure_properties` at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import httpx

from canonical import Account, Deal
from canonical.backfill import CompanyPage
from canonical.reconciliation import FIGURES, Figures
from canonical.requests import AccountFigures, DealPage, DealWriteBack, UpsertResult
from connectors.errors import ConnectorError, NotFound, RateLimited, Rejected, Unavailable
from connectors.http import build_client, parse_retry_after, send
from connectors.hubspot import mapping
from connectors.hubspot.spec import HubSpotSettings
from connectors.identifiers import NUMERIC_ID, checked_id, segment
from connectors.pacing import Pacer
from settings import Settings

log = logging.getLogger(__name__)


def _id(value: str | None) -> str:
    """A HubSpot object ID (numeric), quoted for a path; ``InvalidIdentifier`` otherwise."""
    return segment(value, "HubSpot object ID", NUMERIC_ID, vendor=VENDOR)

VENDOR = "hubspot"
BATCH_LIMIT = 100
#: HubSpot's search returns at most this many results per query
SEARCH_WINDOW = 10_000
SEARCH_LIMIT = 200
ASSOCIATION_PAGE = 500
MAX_PAGES = 1000  # bound on any cursor walk
#: seconds to wait per HubSpot rate-limit policy when a 429 carries no Retry-After
POLICY_WAIT = {"SECONDLY": 1.0, "TEN_SECONDLY": 10.0, "TEN_SECONDLY_ROLLING": 10.0, "MINUTELY": 60.0,
               "DAILY": 3600.0}
_ASSOCIATION_KEYS = {"companies": "companies", "contacts": "contacts", "line_items": "line_items",
                     "line items": "line_items", "0-2": "companies", "0-1": "contacts", "0-8": "line_items"}


def error_message(response: httpx.Response) -> str:
    """HubSpot's explanation: ``<category>: <message> (<error details>)``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if not isinstance(body, dict):
        return response.text[:500]
    message = str(body.get("message") or "")
    details = [str(e["message"]) for e in body.get("errors") or []
               if isinstance(e, dict) and e.get("message") and str(e["message"]) not in message]
    if details:
        message = f"{message} ({'; '.join(details)})" if message else "; ".join(details)
    category = body.get("category") or body.get("errorType")
    return f"{category}: {message}" if category else message


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` when HubSpot sends it, else the wait its rate-limit policy implies."""
    header = parse_retry_after(response.headers.get("Retry-After"))
    if header is not None or response.status_code != 429:
        return header
    try:
        policy = str(response.json().get("policyName") or "").upper()
    except (ValueError, AttributeError):
        policy = ""
    if policy in POLICY_WAIT:
        return POLICY_WAIT[policy]
    interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
    try:
        return float(interval) / 1000 if interval else 1.0
    except ValueError:
        return 1.0


def _missing_property(exc: Rejected) -> bool:
    return "PROPERTY_DOESNT_EXIST" in exc.message


class HubSpotCrm:
    """CRM port for HubSpot. Build with :func:`from_settings`; close with :meth:`aclose`."""

    vendor = VENDOR

    def __init__(self, client: httpx.AsyncClient, *, approval_stage: str = "contractsent",
                 closed_won_stage: str = "closedwon") -> None:
        self._client = client
        self.approval_stage = approval_stage  # the deal stages that start quote-to-cash (HUBSPOT_*_STAGE)
        self.closed_won_stage = closed_won_stage
        self._known: dict[str, set[str]] = {}  # object type -> property names known to exist
        self._ensured = False
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- transport ------------------------------------------------------------------------------
    async def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await send(self._client, method, url, vendor=VENDOR, error_message=error_message,
                              retry_after=retry_after, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise Unavailable(f"malformed JSON from {method} {url}: {response.text[:200]!r}", vendor=VENDOR,
                              status=response.status_code) from exc

    @staticmethod
    def _shape(body: Any, key: str, what: str) -> Any:
        if not isinstance(body, dict) or key not in body:
            raise Unavailable(f"unexpected {what} response: no {key!r}", vendor=VENDOR)
        return body[key]

    # -- properties -----------------------------------------------------------------------------
    async def ensure_properties(self) -> None:
        """Create every missing ``revops_*`` property definition (deals, companies, contacts,
        line items). Safe to call repeatedly and from several workers at once."""
        async with self._lock:
            for object_type, specs in mapping.REVOPS_PROPERTIES.items():
                await self._ensure(object_type, specs, refresh=True)
            self._ensured = True

    async def prepare(self) -> None:
        """At the worker's start (``connectors.registry.Prepares``): the custom properties."""
        await self.ensure_properties()

    async def _ensure_once(self) -> None:
        if not self._ensured:
            await self.ensure_properties()

    async def _ensure(self, object_type: str, specs: list[dict[str, Any]], *, refresh: bool = False) -> None:
        known = self._known.get(object_type)
        if known is not None and not refresh and all(s["name"] in known for s in specs):
            return
        body = await self._call("GET", f"/crm/v3/properties/{object_type}")
        known = {str(p.get("name")) for p in self._shape(body, "results", "properties") if isinstance(p, dict)}
        self._known[object_type] = known
        for spec in specs:
            if spec["name"] in known:
                continue
            try:
                await self._call("POST", f"/crm/v3/properties/{object_type}",
                                 json=mapping.property_definition(object_type, spec))
            except ConnectorError as exc:
                # Another worker created it in the meantime: that is what we wanted.
                if exc.status != 409:
                    raise
            known.add(spec["name"])
            log.info("hubspot property %s.%s created", object_type, spec["name"])

    async def _write(self, method: str, url: str, object_type: str, body: dict[str, Any],
                     specs: list[dict[str, Any]] | None = None) -> Any:
        """A write of ``revops_*`` properties: ensure they exist, and if HubSpot still says one
        does not (deleted by an admin), recreate and try once more."""
        await self._ensure_once()
        try:
            return await self._call(method, url, json=body)
        except Rejected as exc:
            if not _missing_property(exc):
                raise
            log.warning("hubspot says a property is missing (%s); recreating", exc.message)
            self._known.pop(object_type, None)
            async with self._lock:
                await self._ensure(object_type, [*mapping.REVOPS_PROPERTIES[object_type], *(specs or [])],
                                   refresh=True)
            return await self._call(method, url, json=body)

    # -- deals ----------------------------------------------------------------------------------
    async def get_deal(self, deal_id: str) -> Deal:
        """The deal with its primary company, contacts and line items."""
        body = await self._call("GET", f"/crm/v3/objects/deals/{_id(deal_id)}", params={
            "properties": ",".join(mapping.DEAL_READ_PROPERTIES),
            "associations": "companies,contacts,line_items"})
        if not isinstance(body, dict) or "id" not in body:
            raise Unavailable("unexpected deal response: no 'id'", vendor=VENDOR)
        ids = await self._associated_ids(deal_id, body.get("associations") or {})
        company_ids = ids.get("companies", [])
        companies = await self._batch_read("companies", company_ids[:1], mapping.COMPANY_PROPERTIES)
        contacts = await self._batch_read("contacts", ids.get("contacts", []), mapping.CONTACT_PROPERTIES)
        lines = await self._batch_read("line_items", ids.get("line_items", []), mapping.LINE_ITEM_PROPERTIES)
        return mapping.deal_from_hubspot(body, company=companies[0] if companies else None,
                                         contacts=contacts, line_items=lines)

    async def _associated_ids(self, deal_id: str, associations: Mapping[str, Any]) -> dict[str, list[str]]:
        """IDs per object type from a v3 read, primary company first; a paged collection is read
        in full through associations v4."""
        result: dict[str, list[str]] = {}
        for key, collection in associations.items():
            object_type = _ASSOCIATION_KEYS.get(key)
            if object_type is None or not isinstance(collection, dict):
                continue
            rows = [r for r in collection.get("results") or [] if isinstance(r, dict) and r.get("id")]
            if (collection.get("paging") or {}).get("next"):
                result[object_type] = await self.associated_ids_v4("deals", deal_id, object_type)
                continue
            primary = [str(r["id"]) for r in rows if r.get("type") == "deal_to_company"]
            ordered = primary + [str(r["id"]) for r in rows]
            result[object_type] = list(dict.fromkeys(ordered))
        return result

    async def associated_ids_v4(self, object_type: str, object_id: str, to_type: str) -> list[str]:
        """All associated IDs through ``GET /crm/v4/objects/.../associations/...`` (primary first)."""
        primary: list[str] = []
        others: list[str] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"limit": ASSOCIATION_PAGE, **({"after": after} if after else {})}
            kind, to_kind = segment(object_type, "HubSpot object type"), segment(to_type, "HubSpot object type")
            body = await self._call("GET", f"/crm/v4/objects/{kind}/{_id(object_id)}/associations/{to_kind}",
                                    params=params)
            for row in self._shape(body, "results", "associations"):
                labels = {t.get("label") for t in row.get("associationTypes") or [] if isinstance(t, dict)}
                (primary if "Primary" in labels else others).append(str(row["toObjectId"]))
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
        return list(dict.fromkeys(primary + others))

    async def _batch_read(self, object_type: str, ids: list[str], properties: list[str]) -> list[dict[str, Any]]:
        """Objects by ID, in the order asked; ones HubSpot no longer has are left out."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start:start + BATCH_LIMIT]
            body = await self._call("POST", f"/crm/v3/objects/{object_type}/batch/read", json={
                "inputs": [{"id": checked_id(i, "HubSpot ID", NUMERIC_ID, vendor=VENDOR)} for i in chunk],
                "properties": properties, "propertiesWithHistory": []})
            for obj in self._shape(body, "results", "batch read"):
                found[str(obj["id"])] = obj
            if body.get("errors"):
                log.warning("hubspot %s batch read: %s", object_type, body["errors"])
        return [found[i] for i in ids if i in found]

    async def write_back(self, deal_id: str, update: DealWriteBack) -> None:
        """PATCH the deal's ``revops_*`` properties with the fields that are set."""
        properties = mapping.writeback_properties(update)
        if not properties:
            return
        await self._write("PATCH", f"/crm/v3/objects/deals/{_id(deal_id)}", "deals", {"properties": properties})

    async def search_deals_modified_since(self, since: datetime, *, after: str | None = None,
                                          limit: int = 100) -> DealPage:
        """Deals with ``hs_lastmodifieddate >= since``, oldest change first.

        The deals carry their own properties only (no company, contacts or lines): the poller
        starts a workflow per deal, which loads the full deal with :meth:`get_deal`.
        """
        body = await self._call("POST", "/crm/v3/objects/deals/search", json={
            "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                                           "value": mapping.millis(since)}]}],
            "sorts": ["hs_lastmodifieddate"],
            "properties": mapping.DEAL_READ_PROPERTIES,
            "limit": max(1, min(limit, SEARCH_LIMIT)),
            "after": after or "0",
        })
        results = self._shape(body, "results", "search")
        deals = [mapping.deal_from_hubspot(obj) for obj in results]
        moments = [m for obj in results
                   if (m := mapping.parse_datetime((obj.get("properties") or {}).get("hs_lastmodifieddate")))]
        next_after = ((body.get("paging") or {}).get("next") or {}).get("after")
        return DealPage(deals=deals, next_after=str(next_after) if next_after else None,
                        checkpoint=max(moments) if moments else None)

    async def deals_modified_since(self, since: datetime, *, page_size: int = 100,
                                   pacer: Pacer | None = None) -> AsyncIterator[DealPage]:
        """Every deal modified at or after ``since``, page by page, oldest change first.

        HubSpot's search returns at most :data:`SEARCH_WINDOW` results per query: before paging past it, the
        query starts again from the newest modification seen. A 429 waits the vendor's Retry-After and
        asks again (a read, safe to repeat).
        """
        query_since, after, offset = since, None, 0
        newest: datetime | None = None
        while True:
            if pacer is not None:
                await pacer.take()
            try:
                page = await self.search_deals_modified_since(query_since, after=after, limit=page_size)
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after or 1.0)
                continue
            yield page
            if page.checkpoint and (newest is None or page.checkpoint > newest):
                newest = page.checkpoint
            if not page.next_after:
                return
            offset = int(page.next_after) if page.next_after.isdigit() else offset + page_size
            if offset + page_size > SEARCH_WINDOW and newest is not None:
                query_since, after, offset = newest, None, 0  # the search window is exhausted: move it
            else:
                after = page.next_after

    # -- companies ------------------------------------------------------------------------------
    async def upsert_companies(self, accounts: list[Account]) -> UpsertResult:
        """Accounts with a ``crm_id`` are updated by ID; the others are upserted by
        ``revops_external_ref`` (see :func:`mapping.company_external_ref`). IDs come back in input order."""
        ids: list[str | None] = [None] * len(accounts)
        created = updated = 0
        by_ref: dict[str, list[int]] = {}
        by_id: dict[str, list[int]] = {}
        for index, account in enumerate(accounts):
            try:
                ref = mapping.company_external_ref(account)
            except ValueError as exc:
                if not account.crm_id:
                    raise Rejected(str(exc), vendor=VENDOR) from exc
                ref = None
            if account.crm_id:
                by_id.setdefault(account.crm_id, []).append(index)
            else:
                by_ref.setdefault(ref or "", []).append(index)

        def props(index: int) -> dict[str, str]:
            account = accounts[index]
            values = mapping.company_properties(account)
            try:
                values[mapping.EXTERNAL_REF_PROPERTY] = mapping.company_external_ref(account)
            except ValueError:
                pass
            return values

        refs = list(by_ref)
        for start in range(0, len(refs), BATCH_LIMIT):
            chunk = refs[start:start + BATCH_LIMIT]
            body = await self._write("POST", "/crm/v3/objects/companies/batch/upsert", "companies", {"inputs": [
                {"id": ref, "idProperty": mapping.EXTERNAL_REF_PROPERTY, "properties": props(by_ref[ref][0])}
                for ref in chunk]})
            self._raise_batch_errors(body, "upsert")
            for obj in self._shape(body, "results", "batch upsert"):
                ref = (obj.get("properties") or {}).get(mapping.EXTERNAL_REF_PROPERTY)
                if ref not in by_ref:
                    raise Unavailable(f"batch upsert returned an unknown reference {ref!r}", vendor=VENDOR)
                for index in by_ref[ref]:
                    ids[index] = str(obj["id"])
                created, updated = (created + 1, updated) if obj.get("new") else (created, updated + 1)
        crm_ids = list(by_id)
        for start in range(0, len(crm_ids), BATCH_LIMIT):
            chunk = crm_ids[start:start + BATCH_LIMIT]
            body = await self._write("POST", "/crm/v3/objects/companies/batch/update", "companies", {"inputs": [
                {"id": crm_id, "properties": props(by_id[crm_id][0])} for crm_id in chunk]})
            self._raise_batch_errors(body, "update")
            for obj in self._shape(body, "results", "batch update"):
                for index in by_id.get(str(obj["id"]), []):
                    ids[index] = str(obj["id"])
                updated += 1
        if any(i is None for i in ids):
            raise Unavailable("batch upsert did not return every company", vendor=VENDOR)
        return UpsertResult(ids=[i for i in ids if i is not None], created=created, updated=updated)

    async def list_companies(self, *, after: str | None = None, limit: int = 100) -> CompanyPage:
        """``GET /crm/v3/objects/companies`` one page at a time (``limit`` at most 100, ``after`` cursor)."""
        params: dict[str, Any] = {"limit": max(1, min(limit, 100)),
                                  "properties": ",".join(mapping.COMPANY_PROPERTIES), "archived": "false"}
        if after:
            params["after"] = after
        body = await self._call("GET", "/crm/v3/objects/companies", params=params)
        results = self._shape(body, "results", "companies list")
        next_after = (((body.get("paging") or {}).get("next")) or {}).get("after")
        return CompanyPage(accounts=[mapping.account_from_hubspot(obj) for obj in results],
                           next_after=str(next_after) if next_after else None)

    @staticmethod
    def _raise_batch_errors(body: Any, verb: str) -> None:
        errors = body.get("errors") if isinstance(body, dict) else None
        if not errors:
            return
        first = errors[0] if isinstance(errors[0], dict) else {}
        message = f"{first.get('category', 'ERROR')}: {first.get('message', '')} {first.get('context', '')}"
        if first.get("category") == "OBJECT_NOT_FOUND":
            raise NotFound(f"batch {verb}: {message}", vendor=VENDOR, status=207)
        raise Rejected(f"batch {verb}: {message}", vendor=VENDOR, status=207)

    async def write_account_figures(self, company_id: str, figures: list[AccountFigures]) -> None:
        """Billing roll-ups on the company, one property per figure and currency (created on demand)."""
        await self._write_figures("companies", company_id, figures)

    async def write_deal_figures(self, deal_id: str, figures: list[AccountFigures]) -> None:
        """The same billing roll-ups as the company's, for the invoices of one deal."""
        await self._write_figures("deals", deal_id, figures)

    async def _write_figures(self, object_type: str, object_id: str, figures: list[AccountFigures]) -> None:
        """``revops_*`` properties per figure and currency on one object, the properties created on demand."""
        properties = mapping.figures_properties(figures)
        if not properties:
            return
        await self._ensure_once()
        specs = mapping.figure_definitions(properties)
        async with self._lock:
            await self._ensure(object_type, specs)
        await self._write("PATCH", f"/crm/v3/objects/{segment(object_type, 'HubSpot object type')}/{_id(object_id)}",
                          object_type,
                          {"properties": properties}, specs)

    async def read_figures(self, object_type: str, ids: list[str], currencies: list[str]
                           ) -> dict[str, dict[str, Figures]]:
        """The billing roll-ups on companies or deals (``object_type``), per object and currency, as the CRM
        holds them now (a figure never written is ``None``); objects HubSpot no longer has are left out."""
        wanted = [mapping.figure_property(f, c) for c in currencies for f in FIGURES]
        found: dict[str, dict[str, Figures]] = {}
        for obj in await self._batch_read(object_type, ids, wanted):
            props = obj.get("properties") or {}
            found[str(obj["id"])] = {c: Figures(currency=c, **{f: props.get(mapping.figure_property(f, c)) or None
                                                             for f in FIGURES}) for c in currencies}
        return found


def from_settings(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                  timeout: httpx.Timeout | float | None = None, config: HubSpotSettings | None = None) -> HubSpotCrm:
    """The adapter for the configured portal (``HUBSPOT_BASE_URL``) with the private-app token."""
    config = config or HubSpotSettings.of(settings)
    timeout = timeout if timeout is not None else settings.http_timeout_seconds
    client = build_client(base_url=config.base_url, transport=transport, timeout=timeout,
                          headers={"Authorization": f"Bearer {config.access_token}",
                                   "Accept": "application/json"})
    return HubSpotCrm(client, approval_stage=config.approval_stage, closed_won_stage=config.closed_won_stage)
