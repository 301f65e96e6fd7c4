"""DocuSign eSignature emulator: the JWT grant and userinfo on the account server's paths, envelopes from a
seeded template on REST v2.1's paths (``/restapi/v2.1/accounts/{accountId}/...``), DocuSign's error body
(``{"errorCode", "message"}``) and ``X-RateLimit-*`` headers, and Connect deliveries (JSON, HMAC-signed).

``/_sandbox`` adds the human acts no public API offers: sign, decline, amend, auto-sign, expire tokens, set the
Connect HMAC keys. The state lives in :class:`~sandbox.docusign.core.DocuSignSandbox`; each resource module
holds a route class with a ``register()``, and ``create_app`` only composes them.
"""

from __future__ import annotations

from typing import Any

from sandbox.docusign.controls import Controls
from sandbox.docusign.core import STYLE, DocuSignSandbox, docusign_error
from sandbox.docusign.routes import Envelopes, OAuth, rate_limit_headers_middleware
from sandbox.kit import Store, create_sandbox_app
from settings import Settings


def create_app(config: Any, *, settings: Settings, database_url: str = "sqlite://") -> Any:
    """The DocuSign emulator, trusting ``config``'s integration key, user, account and key pair."""
    store = Store(database_url)
    app = create_sandbox_app(style=STYLE, store=store, title="DocuSign sandbox")
    sandbox = DocuSignSandbox(config, store, app)
    app.state.docusign = sandbox
    app.middleware("http")(rate_limit_headers_middleware(sandbox))
    for routes in (OAuth(sandbox), Envelopes(sandbox), Controls(sandbox)):
        routes.register(app)
    return app


__all__ = ["DocuSignSandbox", "create_app", "docusign_error"]
