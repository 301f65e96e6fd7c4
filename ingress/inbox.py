"""The finance inbox: a small server-rendered page for people who do not use the Temporal UI.

    GET  /inbox            sign-in form, or the approvals waiting (deal, company, amount, discount, policy
                           reason, terms, time waited, expiry) with approve / reject and a note
    POST /inbox/login      a bearer token pasted once, kept in an HttpOnly, SameSite=Strict cookie
    POST /inbox/decide     one decision (sent exactly as the API sends it; refusals are explained)
    POST /inbox/match      settle a deal's ambiguous customer match: one candidate, or a new customer (the
                           ``choose_customer_match`` update ``starter.py match`` sends; ``ingress/matches.py``)
    POST /inbox/logout
    GET  /inbox/books      the books per legal entity: open findings (references, repairs, acknowledge), KPIs and
                           charts (``ingress/books.py``)
    POST /inbox/books/ack  acknowledge one finding with a reason
    GET  /inbox/inbox.css  the stylesheet (no inline style: the page's CSP allows this origin's only)

Jinja2 templates, no script and no build step; every control has a label and works from the keyboard.
Every answer carries the security headers of :mod:`runtime.security_headers` (no framing, no caching).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ingress.approvals import ApprovalsService, DecisionRefused, DecisionRequest
from ingress.books import AckRequest, BooksService, entity_charts
from ingress.identity import Identity, TokenInvalid, TokenVerifier
from ingress.matches import CustomerMatches
from settings import Settings

COOKIE = "revops_inbox"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
STYLESHEET = (Path(__file__).resolve().parent / "templates" / "inbox.css").read_text()


def inbox_router(service: ApprovalsService, verifier: TokenVerifier, settings: Settings,
                 books: BooksService | None = None, matches: CustomerMatches | None = None) -> APIRouter:
    router = APIRouter()

    def identity_of(request: Request) -> Identity | None:
        try:
            return verifier.verify(request.cookies.get(COOKIE))
        except TokenInvalid:
            return None

    def same_origin(request: Request) -> bool:
        """Forms are posted from this page only (the cookie is SameSite=Strict as well). A browser says so in
        ``Sec-Fetch-Site``; under ``Referrer-Policy: no-referrer`` its ``Origin`` is ``null``, never trusted."""
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None:
            return fetch_site == "same-origin"
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not origin:
            return True
        return origin != "null" and urlsplit(origin).netloc == request.headers.get("host", "")

    async def page(request: Request, identity: Identity, *, message: str = "", refusal: str = "",
                   status_code: int = 200) -> Response:
        items = await service.pending(identity)
        waiting = await matches.waiting(identity) if matches is not None else []
        return TEMPLATES.TemplateResponse(request, "inbox.html", {
            "who": service.approver_name(identity), "subject": identity.subject, "items": items, "matches": waiting,
            "message": message, "refusal": refusal, "now": datetime.now(UTC),
            "approver": service.is_approver(identity)}, status_code=status_code)

    def login(request: Request, error: str = "", status_code: int = 200) -> Response:
        return TEMPLATES.TemplateResponse(request, "login.html", {"error": error}, status_code=status_code)

    @router.get("/inbox/inbox.css")
    async def stylesheet() -> Response:
        return Response(STYLESHEET, media_type="text/css")

    @router.get("/inbox", response_class=HTMLResponse)
    async def inbox(request: Request, decided: str = "", status: str = "", matched: str = "") -> Response:
        identity = identity_of(request)
        if identity is None:
            return login(request)
        message = ""
        if decided and status in ("approved", "rejected", "pending"):
            message = (f"{decided}: approved; waiting for a second approver" if status == "pending"
                       else f"{decided}: {status}")
        elif matched:
            message = f"{matched}: customer match settled; provisioning goes on"
        return await page(request, identity, message=message)

    @router.post("/inbox/login")
    async def sign_in(request: Request, token: str = Form("")) -> Response:
        try:
            identity = verifier.verify(token.strip())
        except TokenInvalid as exc:
            return login(request, f"Sign-in refused: {exc.reason}.", 401)
        if not service.is_approver(identity):
            return login(request, f"Sign-in refused: {identity.subject} is not a registered approver.", 403)
        response = RedirectResponse("/inbox", status_code=303)
        response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict",
                            secure=settings.approvals_cookie_secure, path="/inbox", max_age=8 * 3600)
        return response

    @router.post("/inbox/logout")
    async def sign_out() -> Response:
        response = RedirectResponse("/inbox", status_code=303)
        response.delete_cookie(COOKIE, path="/inbox")
        return response

    @router.post("/inbox/decide")
    async def decide(request: Request, workflow_id: str = Form(...), decision: str = Form(...),
                     note: str = Form("")) -> Response:
        identity = identity_of(request)
        if identity is None:
            return login(request, "Your session has ended; sign in again.", 401)
        if not same_origin(request) or decision not in ("approve", "reject"):
            return await page(request, identity, refusal="The form could not be accepted.", status_code=400)
        try:
            outcome = await service.decide(identity, workflow_id,
                                           DecisionRequest(approved=decision == "approve", note=note[:2000]),
                                           channel="inbox")
        except DecisionRefused as exc:
            return await page(request, identity, refusal=f"{workflow_id}: refused. {exc.reason}",
                              status_code=exc.status)
        return RedirectResponse(f"/inbox?decided={workflow_id}&status={outcome.status}", status_code=303)

    @router.post("/inbox/match")
    async def match(request: Request, workflow_id: str = Form(...), legal_entity: str = Form(...),
                    system: str = Form("erp"), record_id: str = Form("")) -> Response:
        identity = identity_of(request)
        if identity is None:
            return login(request, "Your session has ended; sign in again.", 401)
        if matches is None or not same_origin(request):
            return await page(request, identity, refusal="The form could not be accepted.", status_code=400)
        try:
            await matches.choose(identity, workflow_id, legal_entity=legal_entity, system=system,
                                 record_id=record_id.strip() or None)
        except DecisionRefused as exc:
            return await page(request, identity, refusal=f"{workflow_id}: refused. {exc.reason}",
                              status_code=exc.status)
        return RedirectResponse(f"/inbox?matched={quote(workflow_id)}", status_code=303)

    async def books_page(request: Request, identity: Identity, *, message: str = "", refusal: str = "",
                         status_code: int = 200) -> Response:
        assert books is not None
        try:
            book = await books.books(identity)
        except DecisionRefused as exc:
            return login(request, f"{exc.reason}.", exc.status)
        charts = {e.legal_entity: entity_charts(e.kpis) for e in book.entities}
        return TEMPLATES.TemplateResponse(request, "books.html", {
            "who": service.approver_name(identity), "subject": identity.subject, "book": book, "charts": charts,
            "message": message, "refusal": refusal}, status_code=status_code)

    @router.get("/inbox/books", response_class=HTMLResponse)
    async def books_view(request: Request, acknowledged: str = "") -> Response:
        identity = identity_of(request)
        if identity is None or books is None:
            return login(request)
        message = f"finding {acknowledged} acknowledged" if acknowledged.isdigit() else ""
        return await books_page(request, identity, message=message)

    @router.post("/inbox/books/ack")
    async def books_ack(request: Request, finding_id: str = Form(...), reason: str = Form("")) -> Response:
        identity = identity_of(request)
        if identity is None or books is None:
            return login(request, "Your session has ended; sign in again.", 401)
        if not same_origin(request):
            return await books_page(request, identity, refusal="The form could not be accepted.", status_code=400)
        try:
            await books.acknowledge(identity, finding_id, AckRequest(reason=reason[:500] or " "))
        except DecisionRefused as exc:
            return await books_page(request, identity, refusal=f"finding {finding_id}: refused. {exc.reason}",
                                    status_code=exc.status)
        return RedirectResponse(f"/inbox/books?acknowledged={finding_id}", status_code=303)

    return router
