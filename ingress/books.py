"""The books: what finance looks at to sign a month off, per legal entity, beside the approvals.

    GET  /books                   open reconciliation findings and KPIs per legal entity (JSON)
    POST /findings/{id}/ack       {"reason": str}: acknowledge a finding as the token's person
    GET  /inbox/books             the same as a page: findings with their references and repairs, the KPIs with a
                                  DSO chart per currency and a cycle-time chart, an acknowledge form per finding
    POST /inbox/books/ack         the page's acknowledge form (the same service call as the API)

Only registered approvers (finance) read the books or acknowledge; every call is authenticated like the
approvals API (bearer JWT, or the inbox's cookie). A reason is operator text: printable, bounded, not blank.
The charts are server-rendered SVG (no script), so the inbox's strict CSP holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session

from canonical.kpis import EntityKpis, KpiReport
from canonical.text import operator_text
from ingress.approvals import ApprovalsService, DecisionRefused
from ingress.identity import Identity
from observability.kpis import gather_kpis
from settings import Settings
from stores.findings import OPEN, UnknownFinding, acknowledge, list_findings

log = logging.getLogger("revops.books")
KPI_TIMEOUT_SECONDS = 20


class BookFinding(BaseModel):
    """One open finding as finance reads it."""

    id: int
    kind: str
    severity: str = ""
    legal_entity: str = ""
    detail: str = ""
    billing_amount: str = ""
    erp_amount: str = ""
    refs: list[str] = Field(default_factory=list)
    repair: str = ""
    times_seen: int = 1
    last_seen_at: datetime
    acknowledged_by: str = ""
    ack_reason: str = ""


class EntityBook(BaseModel):
    """One legal entity's open findings and KPIs."""

    legal_entity: str
    findings: list[BookFinding] = Field(default_factory=list)
    kpis: EntityKpis | None = None


class Books(BaseModel):
    """Every entity's book; ``kpis_unavailable`` says why the KPIs are missing when they are."""

    as_of: datetime
    entities: list[EntityBook] = Field(default_factory=list)
    kpis_unavailable: str = ""


class AckRequest(BaseModel):
    """Acknowledge a finding: the reason is kept with it and shown to everyone."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class BooksService:
    """Reads the findings store and the KPIs; acknowledges findings for authenticated finance people."""

    def __init__(self, settings: Settings, approvals: ApprovalsService, findings: Engine) -> None:
        self.settings = settings
        self.approvals = approvals
        self.findings = findings

    def _finance(self, identity: Identity) -> None:
        if not self.approvals.is_approver(identity):
            raise DecisionRefused(403, f"{identity.subject!r} is not a registered finance approver")

    async def books(self, identity: Identity) -> Books:
        """Open findings per entity (an unknown or empty entity under ``-``) and each entity's KPIs."""
        self._finance(identity)
        findings = await asyncio.to_thread(self._open_findings)
        report, unavailable = await self._kpis()
        codes = [e.code for e in self.settings.legal_entities]
        extra = sorted({f.legal_entity or "-" for f in findings} - set(codes))
        entities = []
        for code in [*codes, *extra]:
            kpis = None
            if report is not None:
                try:
                    kpis = report.entity(code)
                except KeyError:
                    kpis = None
            entities.append(EntityBook(legal_entity=code, kpis=kpis,
                                       findings=[f for f in findings if (f.legal_entity or "-") == code]))
        return Books(as_of=datetime.now(UTC), entities=entities, kpis_unavailable=unavailable)

    def _open_findings(self) -> list[BookFinding]:
        with Session(self.findings) as session:
            rows = list_findings(session=session, status=OPEN, limit=1000)
            return [BookFinding(id=r.id or 0, kind=r.kind, severity=r.severity, legal_entity=r.legal_entity,
                                detail=r.detail, billing_amount=r.billing_amount, erp_amount=r.erp_amount,
                                refs=r.ref_list(), repair=r.repair, times_seen=r.times_seen,
                                last_seen_at=r.last_seen_at, acknowledged_by=r.acknowledged_by,
                                ack_reason=r.ack_reason) for r in rows]

    async def _kpis(self) -> tuple[KpiReport | None, str]:
        try:
            client = await self.approvals.clients.get()
            async with asyncio.timeout(KPI_TIMEOUT_SECONDS):
                return await gather_kpis(client, self.settings), ""
        except Exception as exc:  # the findings still show; the page says why the KPIs do not
            log.warning("KPIs unavailable: %s", type(exc).__name__)
            return None, f"the KPIs could not be read now ({type(exc).__name__}); the findings are current"

    async def acknowledge(self, identity: Identity, finding_id: str, request: AckRequest) -> BookFinding:
        """Acknowledge an open finding as the caller (by the approver's name), with a reason."""
        self._finance(identity)
        try:
            reason = operator_text(request.reason, what="reason", max_length=500)
        except ValueError as exc:
            raise DecisionRefused(422, str(exc)) from exc
        if not finding_id.isdigit():
            raise DecisionRefused(404, "a finding is named by its number")
        who = self.approvals.approver_name(identity)

        def write() -> BookFinding:
            with Session(self.findings) as session:
                [row, *_rest] = acknowledge(session=session, finding=finding_id, reason=reason, by=who,
                                            now=datetime.now(UTC))
                return BookFinding(id=row.id or 0, kind=row.kind, severity=row.severity,
                                   legal_entity=row.legal_entity, detail=row.detail, refs=row.ref_list(),
                                   repair=row.repair, times_seen=row.times_seen, last_seen_at=row.last_seen_at,
                                   acknowledged_by=row.acknowledged_by, ack_reason=row.ack_reason)

        try:
            return await asyncio.to_thread(write)
        except UnknownFinding as exc:
            raise DecisionRefused(404, f"no finding {finding_id}") from exc
        except ValueError as exc:  # closed already, or a reason the store refuses
            raise DecisionRefused(409, str(exc)) from exc


def books_router(books: BooksService, caller: Callable[..., Identity]) -> APIRouter:
    """``GET /books`` and ``POST /findings/{id}/ack`` for bearer-token callers (``caller`` verifies the token)."""
    router = APIRouter()

    @router.get("/books")
    async def read_books(identity: Identity = Depends(caller)) -> Books:  # noqa: B008
        return await books.books(identity)

    @router.post("/findings/{finding_id}/ack")
    async def acknowledge_finding(finding_id: str, body: AckRequest,
                                  identity: Identity = Depends(caller)) -> BookFinding:  # noqa: B008
        return await books.acknowledge(identity, finding_id, body)

    return router


# -- charts: server-rendered SVG bars (no script, no inline style) ---------------------------------------------
class Bar(BaseModel):
    label: str
    value: float
    text: str


def bar_chart(title: str, bars: list[Bar], *, unit: str) -> str:
    """A horizontal bar chart as SVG markup (escaped by the template engine's ``|safe`` caller only for this
    markup, which holds no user text but labels we build from codes and numbers)."""
    if not bars:
        return ""
    width, row, label_w = 420, 22, 150
    top = max((b.value for b in bars), default=0.0) or 1.0
    height = row * len(bars) + 8
    parts = [f'<svg role="img" aria-label="{_esc(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{_esc(title)}</title>']
    for i, bar in enumerate(bars):
        y = 4 + i * row
        length = max(1.0, (width - label_w - 80) * bar.value / top)
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{_esc(bar.label)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="14" fill="#2a6f97"></rect>'
                     f'<text x="{label_w + length + 4:.1f}" y="{y + 14}" font-size="12">{_esc(bar.text)} {unit}'
                     f'</text>')
    parts.append("</svg>")
    return "".join(parts)


def _esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def entity_charts(kpis: EntityKpis | None) -> list[str]:
    """The DSO per currency and the cycle times (p50) of one entity, as SVG."""
    if kpis is None:
        return []
    dso = []
    for figure in kpis.dso:
        try:
            days = Decimal(figure.dso_days) if figure.dso_days is not None else None
        except InvalidOperation:
            days = None
        if days is not None:
            dso.append(Bar(label=figure.currency, value=float(days), text=f"{days:.1f}"))
    cycles = [Bar(label=label, value=d.p50_seconds / 3600, text=f"{d.p50_seconds / 3600:.1f}")
              for label, d in (("contract → project", kpis.contract_signed_to_project),
                               ("won → billing live", kpis.closed_won_to_billing_live),
                               ("amendment", kpis.amendment_propagation)) if d.p50_seconds is not None]
    return [c for c in (bar_chart(f"DSO by currency, {kpis.legal_entity}", dso, unit="days"),
                        bar_chart(f"Cycle times (p50), {kpis.legal_entity}", cycles, unit="h")) if c]


__all__ = ["AckRequest", "BookFinding", "Books", "BooksService", "EntityBook", "bar_chart", "books_router",
           "entity_charts"]
