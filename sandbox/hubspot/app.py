"""HubSpot CRM emulator: objects v3 (deals, companies, contacts, line items), batch read / update /
upsert, search, associations v4, properties v3, private-app bearer auth, HubSpot's error and
rate-limit shapes, and ``deal.*`` webhooks signed with ``X-HubSpot-Signature-v3``.

``/_sandbox`` adds what only a person in the HubSpot UI could do: seed a deal with its company,
contacts and line items, move a deal to a stage, edit a deal, and read all of a deal's properties.

The state lives in :class:`~sandbox.hubspot.core.HubSpotSandbox`; each resource module holds a route
class with a ``register()``, and ``create_app`` only composes them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sandbox.hubspot.associations import Associations
from sandbox.hubspot.batch import Batch
from sandbox.hubspot.controls import Controls
from sandbox.hubspot.core import INLINE_ASSOCIATION_LIMIT, HubSpotSandbox, hubspot_error, hubspot_rate_limited
from sandbox.hubspot.crm import HubSpotError, Portal
from sandbox.hubspot.objects import Objects
from sandbox.hubspot.property_routes import Properties
from sandbox.hubspot.search import Search
from sandbox.hubspot.webhooks import sign_v1, sign_v3
from sandbox.kit import Store, VendorStyle, create_sandbox_app
from settings import Settings


async def _hubspot_error(_request: Request, exc: HubSpotError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content=exc.body())


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return hubspot_error(400, f"Invalid input: {exc.errors()[:3]}")


def create_app(config: Any, *, settings: Settings, database_url: str = "sqlite://") -> FastAPI:
    """The HubSpot emulator app (``create_app(adapter settings, settings=...)``, served by ``devstack.emulators``)."""
    store = Store(database_url)
    style = VendorStyle(vendor="hubspot", error=hubspot_error, rate_limited=hubspot_rate_limited)
    app = create_sandbox_app(style=style, store=store, title="HubSpot CRM sandbox")
    portal = Portal(store, extra_stages=[config.approval_stage, config.closed_won_stage])
    app.state.portal = portal
    app.state.inline_association_limit = INLINE_ASSOCIATION_LIMIT
    sandbox = HubSpotSandbox(app, config, portal)
    app.exception_handler(HubSpotError)(_hubspot_error)
    app.exception_handler(RequestValidationError)(_validation_error)

    api = APIRouter(dependencies=[Depends(sandbox.require_token)])
    for routes in (Objects(sandbox), Batch(sandbox), Search(sandbox), Associations(sandbox), Properties(sandbox)):
        routes.register(api)
    app.include_router(api)
    Controls(sandbox).register(app)
    return app


__all__ = ["create_app", "hubspot_error", "hubspot_rate_limited", "sign_v1", "sign_v3"]
