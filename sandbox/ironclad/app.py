"""Ironclad emulator: OAuth 2.0 client credentials, workflows launched from templates, records with
amendments, cancel, the webhook verification key, and RSA-signed webhooks, on Ironclad's own paths
(``/oauth/token``, ``/public/api/v1/...``) and error shapes (``{"code", "message", "param"}``).

``/_sandbox`` adds the human acts no public API offers: approve, sign (all parties), auto-sign, execute an
amendment, expire tokens, rotate the webhook signing key.

The state lives in :class:`~sandbox.ironclad.core.IroncladSandbox`; each resource module holds a route
class with a ``register()``, and ``create_app`` only composes them.
"""

from __future__ import annotations

from typing import Any

from sandbox.ironclad.auth import OAuth
from sandbox.ironclad.controls import Controls
from sandbox.ironclad.core import STYLE, IroncladSandbox, ironclad_error
from sandbox.ironclad.records import Records
from sandbox.ironclad.webhooks import Webhooks
from sandbox.ironclad.workflows import Workflows
from sandbox.kit import Store, create_sandbox_app
from settings import Settings


def create_app(config: Any, *, settings: Settings, database_url: str = "sqlite://") -> Any:
    """The Ironclad emulator."""
    store = Store(database_url)
    app = create_sandbox_app(style=STYLE, store=store, title="Ironclad sandbox")
    sandbox = IroncladSandbox(app, config, store)
    app.state.ironclad = sandbox
    for routes in (OAuth(sandbox), Workflows(sandbox), Records(sandbox), Webhooks(sandbox), Controls(sandbox)):
        routes.register(app)
    return app


__all__ = ["IroncladSandbox", "create_app", "ironclad_error"]
