"""The emulator's OAuth 2.0 machine-to-machine flow (client credentials with a JWT assertion), written apart from
the connector's so that one cannot hide the other's mistake.

As NetSuite documents it ("OAuth 2.0 Client Credentials Flow": "POST Request to the Token Endpoint and the Access
Token Response" and "The Request Token Structure", docs.oracle.com/en/cloud/saas/netsuite/ns-online-help,
sections 162755359851 and 162790605110): ``POST /services/rest/auth/oauth2/v1/token`` with the form fields
``grant_type=client_credentials``, ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``
and ``client_assertion``, a JWT whose header names ``typ`` JWT, ``alg`` (PS256/384/512; RS256 accepted too) and
``kid`` = the certificate ID of the M2M mapping, and whose claims are ``iss`` = the integration's client ID,
``scope`` (a list or comma-separated text of restlets, rest_webservices, suite_analytics), ``aud`` = the token
endpoint's URL, ``iat`` and ``exp`` (less than an hour after ``iat``). The answer is ``{"access_token",
"expires_in": "3600", "token_type": "bearer"}``; refusals are OAuth's ``{"error"}`` body (with an
``error_description`` naming the failed check, for developers): ``invalid_request`` (400), ``invalid_client``
(401: unknown certificate, wrong signature or client ID), ``invalid_grant`` (400: audience, times) and
``invalid_scope`` (400).

The certificate trusted by default is the public half of the settings' key pair under its certificate ID;
``POST /_sandbox/oauth2/certificates`` maps another (the M2M setup's upload) and answers its new ID,
``DELETE /_sandbox/oauth2/certificates/{id}`` revokes one, ``POST /_sandbox/oauth2/tokens/expire`` ends every
access token issued so far (clients must run the grant again).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("PS256", "PS384", "PS512", "RS256")
SCOPES = frozenset({"restlets", "rest_webservices", "suite_analytics"})
TOKEN_SECONDS = 3600  # "The access token is valid for 60 minutes."
MAX_ASSERTION_SECONDS = 3600
CLOCK_SKEW = 300  # an iat this far ahead of our clock is still taken


class GrantRefused(Exception):
    """Why the token endpoint refuses a grant: OAuth's error value, the HTTP status, the check that failed."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def response(self) -> JSONResponse:
        return JSONResponse(status_code=self.status,
                            content={"error": self.error, "error_description": self.description})


@dataclass
class Certificate:
    """One M2M mapping: the integration's client ID and the public key of the uploaded certificate."""

    client_id: str
    public_key: rsa.RSAPublicKey


class CertificateUpload(BaseModel):
    """``POST /_sandbox/oauth2/certificates``: the public key (PEM key or X.509 certificate) mapped to a client."""

    public_key_pem: str
    client_id: str | None = None


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from a PEM public key, X.509 certificate or private key (its public half)."""
    data = pem.encode()
    key: Any
    if b"CERTIFICATE" in data:
        key = x509.load_pem_x509_certificate(data).public_key()
    elif b"PRIVATE KEY" in data:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the certificate's key must be RSA")
    return key


def scope_values(scope: Any) -> set[str]:
    """The scope claim as a set: a list, or text separated by commas (spaces tolerated)."""
    if isinstance(scope, str):
        return {s.strip() for s in scope.replace(" ", ",").split(",") if s.strip()}
    if isinstance(scope, list) and all(isinstance(s, str) for s in scope):
        return {s.strip() for s in scope}
    return set()


class ClientCredentials:
    """The token endpoint, the certificates it trusts, and the bearer tokens it issued."""

    def __init__(self, config: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self.certificates = {str(config.certificate_id): Certificate(
            client_id=str(config.client_id), public_key=load_public_key(config.private_key_pem()))}
        self.tokens: dict[str, float] = {}  # access token -> expiry (epoch seconds; 0 once expired by hand)

    def register(self, app: FastAPI) -> None:
        """Add the token endpoint and the ``/_sandbox/oauth2`` controls to ``app``."""
        app.post(TOKEN_PATH)(self.token)
        app.post("/_sandbox/oauth2/certificates", status_code=201)(self.add_certificate)
        app.delete("/_sandbox/oauth2/certificates/{certificate_id}")(self.revoke_certificate)
        app.post("/_sandbox/oauth2/tokens/expire")(self.expire_tokens)

    async def token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return GrantRefused("invalid_request", "grant_type must be client_credentials").response()
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return GrantRefused("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}").response()
        assertion = form.get("client_assertion")
        if not isinstance(assertion, str) or not assertion:
            return GrantRefused("invalid_request", "client_assertion is missing").response()
        audiences = {f"{request.url.scheme}://{request.url.netloc}{TOKEN_PATH}",
                     f"{str(self.config.base_url).rstrip('/')}{TOKEN_PATH}"}
        try:
            self.check_assertion(assertion, audiences)
        except GrantRefused as refused:
            return refused.response()
        return JSONResponse(self.issue())

    def check_assertion(self, assertion: str, audiences: set[str]) -> None:
        """Return when ``assertion`` is a valid client assertion, else raise :class:`GrantRefused`."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise GrantRefused("invalid_request", "client_assertion is not a JWT") from exc
        if str(header.get("typ", "")).upper() != "JWT" or header.get("alg") not in ALGORITHMS:
            raise GrantRefused("invalid_request", f"the JWT header needs typ JWT and alg one of {ALGORITHMS}")
        certificate = self.certificates.get(str(header.get("kid") or ""))
        if certificate is None:
            raise GrantRefused("invalid_client", "no certificate is mapped under this kid", 401)
        try:
            claims = jwt.decode(assertion, certificate.public_key, algorithms=list(ALGORITHMS),
                                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                         "verify_aud": False, "require": ["iss", "aud", "iat", "exp", "scope"]})
        except jwt.InvalidSignatureError as exc:
            raise GrantRefused("invalid_client", "the signature does not match the certificate", 401) from exc
        except jwt.PyJWTError as exc:
            raise GrantRefused("invalid_request", f"invalid assertion: {exc}") from exc
        if claims["iss"] != certificate.client_id:
            raise GrantRefused("invalid_client", "iss is not the client ID the certificate is mapped to", 401)
        if claims["aud"] not in audiences and not (isinstance(claims["aud"], list)
                                                   and audiences.intersection(claims["aud"])):
            raise GrantRefused("invalid_grant", "the audience is not this token endpoint")
        self._check_times(claims)
        scopes = scope_values(claims["scope"])
        if scopes - SCOPES:
            raise GrantRefused("invalid_scope", f"unknown scope: {sorted(scopes - SCOPES)}")
        if "rest_webservices" not in scopes:
            raise GrantRefused("invalid_scope", "the REST web services need the scope rest_webservices")

    def _check_times(self, claims: dict[str, Any]) -> None:
        try:
            issued, expires = int(claims["iat"]), int(claims["exp"])
        except (TypeError, ValueError) as exc:
            raise GrantRefused("invalid_grant", "iat and exp must be numbers") from exc
        now = self._clock()
        if expires <= now:
            raise GrantRefused("invalid_grant", "the assertion has expired")
        if issued > now + CLOCK_SKEW:
            raise GrantRefused("invalid_grant", "the assertion is issued in the future")
        if expires - issued > MAX_ASSERTION_SECONDS:
            raise GrantRefused("invalid_grant", "the assertion lives longer than an hour (exp - iat > 3600)")

    def issue(self) -> dict[str, str]:
        """A new access token: NetSuite's answer shape (``expires_in`` is text)."""
        now = self._clock()
        for held, expiry in list(self.tokens.items()):
            if expiry < now - TOKEN_SECONDS:
                del self.tokens[held]
        token = secrets.token_urlsafe(48)
        self.tokens[token] = now + TOKEN_SECONDS
        return {"access_token": token, "expires_in": str(TOKEN_SECONDS), "token_type": "bearer"}

    def bearer_refusal(self, token: str) -> str | None:
        """Why a bearer token is refused (the 401's detail), or ``None`` when it is live."""
        expiry = self.tokens.get(token.strip())
        if expiry is None:
            return "unknown access token"
        if expiry <= self._clock():
            return "the access token has expired"
        return None

    async def add_certificate(self, upload: CertificateUpload) -> Response:
        """Map a certificate to a client (NetSuite's M2M setup): its new certificate ID is the ``kid`` to use."""
        try:
            key = load_public_key(upload.public_key_pem)
        except ValueError as exc:
            return GrantRefused("invalid_request", f"not a usable RSA public key: {exc}").response()
        certificate_id = secrets.token_urlsafe(32)
        client_id = upload.client_id or str(self.config.client_id)
        self.certificates[certificate_id] = Certificate(client_id=client_id, public_key=key)
        return JSONResponse(status_code=201, content={"certificate_id": certificate_id, "client_id": client_id})

    async def revoke_certificate(self, certificate_id: str) -> dict[str, bool]:
        """Revoke a mapping: assertions under its ID are refused from now on."""
        return {"revoked": self.certificates.pop(certificate_id, None) is not None}

    async def expire_tokens(self) -> dict[str, int]:
        """Every access token issued so far expires now."""
        live = [t for t, expiry in self.tokens.items() if expiry > self._clock()]
        for token in live:
            self.tokens[token] = 0.0
        return {"expired": len(live)}


__all__ = ["ASSERTION_TYPE", "TOKEN_PATH", "ClientCredentials", "GrantRefused", "load_public_key", "scope_values"]
