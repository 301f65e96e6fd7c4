"""The codec server: the Temporal UI and CLI decode (and encode) payloads through it, with our keys.

    POST /encode   POST /decode      {"payloads": [{"metadata": {...}, "data": "..."}]}  (Temporal's JSON)
    GET  /login    POST /login       a form that takes the token and sets the session cookie
    POST /logout

Authentication: the codec token (``CODEC_SERVER_TOKEN``; unset, a random one under ``data_dir``, made on
first use), sent either as ``Authorization: Bearer <token>`` (the CLI: ``temporal workflow show
--codec-endpoint http://localhost:8081 --codec-auth "Bearer <token>"``) or as the ``revops_codec`` cookie
that ``/login`` sets (the UI, which sends cross-origin credentials when its codec setting "Include
cross-origin credentials" is on). Without it: 401, and the UI shows ciphertext. CORS answers only the UI
origins in settings, with credentials. Every other path or method is refused; bodies are bounded.
"""

from __future__ import annotations

import argparse
import hmac
import secrets
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from runtime.security_headers import SecurityHeaders
from settings import Settings
from stores.codec import CodecKeyError, EncryptionCodec, Keyring, local_secret

COOKIE = "revops_codec"
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_PAYLOADS = 1000

_LOGIN_FORM = """<!doctype html><html><head><meta charset="utf-8"><title>RevOps codec</title></head>
<body><h1>RevOps codec server</h1><p>{note}</p>
<form method="post" action="/login"><label>Codec token <input type="password" name="token" autofocus></label>
<button type="submit">Sign in</button></form></body></html>"""


def token_file(settings: Settings) -> Path:
    return settings.data_dir / "codec-server.token"


def codec_token(settings: Settings) -> str:
    """``CODEC_SERVER_TOKEN``, or the local token file (made with a random token when missing)."""
    if settings.codec_server_token:
        return settings.codec_server_token
    return local_secret(token_file(settings), lambda: secrets.token_urlsafe(32)).strip()


def create_codec_app(*, keyring: Keyring, token: str, cors_origins: list[str]) -> FastAPI:
    """The codec server over ``keyring``, answering only requests that carry ``token``."""
    if len(token) < 16:
        raise ValueError("the codec server token must be at least 16 characters")
    codec = EncryptionCodec(keyring)
    app = FastAPI(title="RevOps codec server", openapi_url=None, docs_url=None, redoc_url=None)
    app.add_middleware(SecurityHeaders)  # its login page is never framed, decoded payloads never cached
    app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_credentials=True,
                       allow_methods=["POST"], allow_headers=["content-type", "x-namespace", "authorization"],
                       max_age=600)

    def authorized(request: Request) -> bool:
        given = request.cookies.get(COOKIE, "")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            given = header[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), token.encode())

    async def payloads_of(request: Request) -> Payloads | Response:
        if not authorized(request):
            return JSONResponse({"error": "codec token required"}, status_code=401)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            payloads = json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError, RecursionError):
            return JSONResponse({"error": "expected {\"payloads\": [...]}"}, status_code=400)
        if len(payloads.payloads) > MAX_PAYLOADS:
            return JSONResponse({"error": "too many payloads"}, status_code=413)
        return payloads

    def answer(payloads: Payloads) -> Response:
        return Response(json_format.MessageToJson(payloads), media_type="application/json")

    @app.post("/encode")
    async def encode(request: Request) -> Response:
        payloads = await payloads_of(request)
        if isinstance(payloads, Response):
            return payloads
        return answer(Payloads(payloads=await codec.encode(payloads.payloads)))

    @app.post("/decode")
    async def decode(request: Request) -> Response:
        payloads = await payloads_of(request)
        if isinstance(payloads, Response):
            return payloads
        try:
            return answer(Payloads(payloads=await codec.decode(payloads.payloads)))
        except (CodecKeyError, ValueError):
            return JSONResponse({"error": "payload not decodable with the configured keys"}, status_code=400)

    @app.get("/login")
    async def login_form() -> HTMLResponse:
        return HTMLResponse(_LOGIN_FORM.format(note="Sign in to read decoded payloads in the Temporal UI."))

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body())[:4096].decode(errors="replace"))
        given = (form.get("token") or [""])[0]
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            return HTMLResponse(_LOGIN_FORM.format(note="Wrong token."), status_code=401)
        response = HTMLResponse(_LOGIN_FORM.format(note="Signed in: the Temporal UI now shows decoded payloads."))
        # Same site as the UI (localhost, any port), so SameSite=Strict still rides the UI's credentialed fetch.
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/", max_age=8 * 3600)
        return response

    @app.post("/logout")
    async def logout() -> Response:
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/")
        return response

    return app


def build_from_settings(settings: Settings) -> FastAPI:
    return create_codec_app(keyring=Keyring.from_settings(settings), token=codec_token(settings),
                            cors_origins=settings.codec_server_cors_origins)


def main() -> None:
    import uvicorn

    from runtime.logs import configure_logging

    parser = argparse.ArgumentParser(description="Serve the codec server for the Temporal UI and CLI")
    parser.parse_args()
    settings = Settings()
    configure_logging()
    uvicorn.run(build_from_settings(settings), host=settings.codec_server_host, port=settings.codec_server_port,
                log_config=None, access_log=False, timeout_keep_alive=5, limit_concurrency=100)


if __name__ == "__main__":
    main()


__all__ = ["COOKIE", "build_from_settings", "codec_token", "create_codec_app", "token_file"]
