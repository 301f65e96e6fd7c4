"""The approvals API: people decide finance approvals here, authenticated, and nowhere else.

    GET  /approvals                  pending approvals (deal and amendment), with whether the caller may decide
    POST /approvals/{workflowId}     {"approved": bool, "note": str}: decide as the token's subject
    GET  /books, POST /findings/{id}/ack   the books per legal entity (``ingress/books.py``)

Served with the ingress but on its own port (``approvals_port``, 8010), so the webhook port alone can face the
internet. Every request carries a bearer JWT (:mod:`ingress.identity`); 401 when it is missing, forged or
expired. A decision is checked before anything is signed: the workflow ID must follow the ID grammar of
``canonical.keys``, the pending request is read from the workflow's ``status`` query (its run, request ID and
terms), the caller's authority is judged by the same pure rule the workflow uses, and the terms digest is
computed again from what was read. Only then does the API mint a nonce and sign exactly that decision
(``canonical.authority.sign_approval``) and send it as the ``decide_approval`` update to that run; the
workflow's validator checks it again. Every refusal is a 4xx with the reason; a malformed body is 422.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from sqlalchemy import Engine
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from canonical.authority import ApprovalFacts, authority_refusal, sign_approval, terms_digest
from canonical.keys import approval_subject_of
from ingress.identity import Identity, TokenInvalid, TokenVerifier
from intake import ClientProvider, RoutingUnavailable
from runtime.security_headers import SecurityHeaders
from settings import Settings
from workflows.models import ApprovalDecision, ApprovalOutcome, ApprovalState

log = logging.getLogger("revops.approvals")

_PENDING_QUERY = 'ExecutionStatus = "Running" AND Stage = "awaiting_approval" AND ' \
                 '(WorkflowType = "QuoteToCashWorkflow" OR WorkflowType = "ContractAmendmentsWorkflow")'


class PendingApproval(BaseModel):
    """One approval waiting for people, as the API and the inbox show it."""

    workflow_id: str
    kind: str = Field(description="deal or amendment")
    title: str = ""
    company: str = ""
    amount: str = ""
    discount_percent: str = ""
    legal_entity: str = ""
    reasons: list[str] = Field(default_factory=list)
    terms: str = ""
    requested_at: datetime
    expires_at: datetime
    waited: str = ""
    required: int = 1
    decided_by: list[str] = Field(default_factory=list)
    may_decide: bool = True
    refusal: str = Field(default="", description="why the caller may not decide (the validator will refuse)")


class DecisionRequest(BaseModel):
    """The body of ``POST /approvals/{workflowId}``: nothing else (the approver is the token's subject, the
    nonce is the API's own)."""

    model_config = ConfigDict(extra="forbid")

    approved: StrictBool
    note: str = Field(default="", max_length=2000)


class DecisionRefused(Exception):
    """The workflow refused the decision (403), or there is no such approval (404)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _waited(since: datetime, now: datetime) -> str:
    minutes = int((now - since).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m"


class ApprovalsService:
    """Lists pending approvals and sends signed decisions; shared by the JSON API and the inbox."""

    def __init__(self, settings: Settings, clients: ClientProvider) -> None:
        self.settings = settings
        self.clients = clients
        self.authority = settings.approval_authority()
        settings.approval_keys()  # refused at construction when the keys are malformed

    def is_approver(self, identity: Identity) -> bool:
        return self.authority.approver(identity.subject) is not None

    def approver_name(self, identity: Identity) -> str:
        approver = self.authority.approver(identity.subject)
        return approver.name if approver else identity.subject

    async def pending(self, identity: Identity) -> list[PendingApproval]:
        client = await self.clients.get()
        now = datetime.now(UTC)
        found: list[PendingApproval] = []
        async for execution in client.list_workflows(_PENDING_QUERY):
            try:
                status = await client.get_workflow_handle(execution.id).query("status")
            except RPCError as exc:  # finished between the listing and the query
                log.info("approval %s not readable: %s", execution.id, exc.message)
                continue
            item = self._item(execution.id, status, identity, now)
            if item is not None:
                found.append(item)
        return sorted(found, key=lambda i: i.expires_at)

    def _item(self, workflow_id: str, status: dict[str, Any], identity: Identity,
              now: datetime) -> PendingApproval | None:
        kind = approval_subject_of(workflow_id)
        approval = pending_approval(kind, status)
        if kind is None or approval is None:
            return None
        facts = approval.facts or ApprovalFacts()
        decided_by = [d.approver for d in approval.decisions]
        refusal = authority_refusal(self.authority, facts, identity.subject, decided_by) or ""
        return PendingApproval(
            workflow_id=workflow_id, kind=kind,
            title=approval.title or status.get("deal_name", ""), company=approval.company or status.get("company", ""),
            amount=str(facts.amount) if facts.amount else status.get("amount", ""),
            discount_percent=str(facts.discount_percent), legal_entity=facts.legal_entity,
            reasons=approval.reasons, terms=approval.terms, requested_at=approval.requested_at,
            expires_at=approval.expires_at, waited=_waited(approval.requested_at, now), required=approval.required,
            decided_by=decided_by, may_decide=not refusal, refusal=refusal)

    async def decide(self, identity: Identity, workflow_id: str, request: DecisionRequest,
                     *, channel: str) -> ApprovalOutcome:
        """Check, then sign, then send: nothing is signed that was not checked a moment before."""
        kind = approval_subject_of(workflow_id)
        if kind is None:
            raise DecisionRefused(404, "not a deal or contract approval: the workflow ID is not one of ours")
        if not self.is_approver(identity):
            raise DecisionRefused(403, f"{identity.subject!r} is not a registered approver")
        client = await self.clients.get()
        try:
            status = await client.get_workflow_handle(workflow_id).query("status")
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise DecisionRefused(404, f"no running workflow {workflow_id}") from exc
            raise
        approval = pending_approval(kind, status)
        if approval is None:
            raise DecisionRefused(409, f"no approval is pending for {workflow_id}")
        facts = approval.facts or ApprovalFacts()
        refusal = authority_refusal(self.authority, facts, identity.subject, [d.approver for d in approval.decisions])
        if refusal:
            raise DecisionRefused(403, refusal)
        digest = terms_digest(facts, approval.amendment_sequence)
        if digest != approval.terms_digest or not approval.run_id or approval.request_id < 1:
            raise DecisionRefused(409, f"the pending approval of {workflow_id} cannot be verified; reload it")
        decision = signed_decision(self.settings, workflow_id, approval, approver=identity.subject,
                                   approved=request.approved, note=request.note, channel=channel)
        try:
            outcome: ApprovalOutcome = await client.get_workflow_handle(
                workflow_id, run_id=approval.run_id).execute_update(
                "decide_approval", decision, result_type=ApprovalOutcome)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise DecisionRefused(403, getattr(cause, "message", None) or str(cause or exc)) from exc
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise DecisionRefused(404, f"no running workflow {workflow_id}") from exc
            raise
        log.info("approval decided", extra={"workflow_id": workflow_id, "status": outcome.status,
                                            "channel": channel, "request_id": approval.request_id})
        return outcome


def signed_decision(settings: Settings, workflow_id: str, approval: ApprovalState, *, approver: str,
                    approved: bool, note: str = "", channel: str, now: datetime | None = None) -> ApprovalDecision:
    """``approver``'s decision on the pending ``approval``, signed with the first approval signing key: bound to
    its run, request and terms (computed again from its facts), with a fresh nonce. The one place a proof is
    made (the API after its checks; the chaos harness and the tests that play the API)."""
    key_id, key = next(iter(settings.approval_keys().items()))
    proof = sign_approval(key_id=key_id, key=key, workflow_id=workflow_id, run_id=approval.run_id,
                          request_id=approval.request_id,
                          terms=terms_digest(approval.facts or ApprovalFacts(), approval.amendment_sequence),
                          approver=approver, approved=approved, note=note, subject=approver, channel=channel,
                          nonce=secrets.token_hex(16), now=now or datetime.now(UTC),
                          ttl=timedelta(seconds=settings.approval_proof_ttl_seconds))
    return ApprovalDecision(approver=approver, approved=approved, note=note, proof=proof)


def pending_approval(kind: str | None, status: dict[str, Any]) -> ApprovalState | None:
    """The approval waiting for a decision in a ``status`` query's answer (a deal's, or the amendment being
    applied), or ``None``."""
    if kind is None or not isinstance(status, dict):
        return None
    raw = (status.get("current") or {}).get("approval") if kind == "amendment" else status.get("approval")
    if not raw:
        return None
    try:
        approval = ApprovalState.model_validate(raw)
    except ValidationError:
        return None
    if approval.status != "pending" or approval.decision is not None:
        return None
    return approval


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def create_approvals_app(*, settings: Settings, clients: ClientProvider,
                         verifier: TokenVerifier | None = None, findings: Engine | None = None) -> FastAPI:
    """The approvals API, the books and the finance inbox on one app (served on ``approvals_port``); the books
    read the reconciliation findings (``findings``, from settings unless given)."""
    from ingress.books import BooksService, books_router
    from ingress.inbox import inbox_router
    from ingress.matches import CustomerMatches
    from stores.findings import findings_engine

    service = ApprovalsService(settings, clients)
    books = BooksService(settings, service, findings or findings_engine(settings.findings_database_url))
    verifier = verifier or TokenVerifier.from_settings(settings)
    app = FastAPI(title="RevOps approvals", openapi_url=None, docs_url=None, redoc_url=None)
    app.add_middleware(SecurityHeaders)
    app.state.approvals = service

    @app.exception_handler(RequestValidationError)
    async def _malformed(_request: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": "malformed request: " + "; ".join(reasons[:5])})

    @app.exception_handler(TokenInvalid)
    async def _unauthorized(_request: Request, exc: TokenInvalid) -> JSONResponse:
        return JSONResponse(status_code=401, content={"detail": exc.reason},
                            headers={"WWW-Authenticate": 'Bearer realm="revops-approvals"'})

    @app.exception_handler(DecisionRefused)
    async def _refused(_request: Request, exc: DecisionRefused) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": exc.reason})

    @app.exception_handler(RoutingUnavailable)
    async def _unavailable(_request: Request, exc: RoutingUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": exc.reason}, headers={"Retry-After": "30"})

    def caller(request: Request) -> Identity:
        return verifier.verify(bearer(request))

    router = APIRouter()

    @router.get("/approvals")
    async def list_pending(identity: Identity = Depends(caller)) -> list[PendingApproval]:  # noqa: B008
        if not service.is_approver(identity):
            raise DecisionRefused(403, f"{identity.subject!r} is not a registered approver")
        return await service.pending(identity)

    @router.post("/approvals/{workflow_id}")
    async def decide(workflow_id: str, body: DecisionRequest,
                     identity: Identity = Depends(caller)) -> ApprovalOutcome:  # noqa: B008
        return await service.decide(identity, workflow_id, body, channel="api")

    app.include_router(router)
    app.include_router(books_router(books, caller))
    app.include_router(inbox_router(service, verifier, settings, books, CustomerMatches(service, clients)))
    return app


def approvals_server(settings: Settings) -> Any:
    """The uvicorn server of the approvals API and inbox on ``approvals_host:approvals_port``."""
    import uvicorn

    from bootstrap import client_provider

    app = create_approvals_app(settings=settings, clients=client_provider(settings))
    config = uvicorn.Config(app, host=settings.approvals_host, port=settings.approvals_port, log_level="info",
                            access_log=False, log_config=None)  # uvicorn's lines go through our JSON handler
    return uvicorn.Server(config)


__all__ = ["ApprovalsService", "DecisionRefused", "PendingApproval", "approvals_server", "create_approvals_app",
           "pending_approval", "signed_decision"]
