"""Who is calling the approvals API: bearer JWTs verified against the configured key, mapped to an approver.

HS256 with a shared secret (``APPROVALS_JWT_SECRET``), or RS256 with a PEM public key
(``APPROVALS_JWT_PUBLIC_KEY_FILE``) or a JWKS file (``APPROVALS_JWKS_FILE``, the key chosen by the token's
``kid``). Tokens must carry ``sub``, ``exp``, the configured ``iss`` and ``aud``. Nothing is fetched at run
time: a JWKS is read from a file the deployment keeps current.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import jwt

from settings import Settings


class TokenInvalid(Exception):
    """The token is missing, malformed, forged, expired or not for us (answered 401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: the token's subject (an approver's ID when they are one)."""

    subject: str
    name: str = ""


class TokenVerifier:
    """Verifies bearer tokens with one algorithm and its key(s)."""

    def __init__(self, *, algorithm: str, issuer: str, audience: str, secret: str | None = None,
                 public_key: str | None = None, jwks: dict[str, Any] | None = None) -> None:
        if algorithm not in ("HS256", "RS256"):
            raise ValueError(f"approvals JWT algorithm must be HS256 or RS256, not {algorithm!r}")
        if algorithm == "HS256" and not secret:
            raise ValueError("HS256 needs APPROVALS_JWT_SECRET")
        if algorithm == "RS256" and not (public_key or jwks):
            raise ValueError("RS256 needs APPROVALS_JWT_PUBLIC_KEY_FILE or APPROVALS_JWKS_FILE")
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self._secret = secret
        self._public_key = public_key
        self._jwks = jwt.PyJWKSet.from_dict(jwks) if jwks else None

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        public_key = (settings.approvals_jwt_public_key_file.read_text()
                      if settings.approvals_jwt_public_key_file else None)
        jwks = json.loads(settings.approvals_jwks_file.read_text()) if settings.approvals_jwks_file else None
        return cls(algorithm=settings.approvals_jwt_algorithm, issuer=settings.approvals_jwt_issuer,
                   audience=settings.approvals_jwt_audience, secret=settings.approvals_jwt_secret,
                   public_key=public_key, jwks=jwks)

    def _key(self, token: str) -> Any:
        if self.algorithm == "HS256":
            return self._secret
        if self._jwks is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            for key in self._jwks.keys:
                if key.key_id == kid:
                    return key.key
            raise TokenInvalid(f"no key {kid!r} in the JWKS")
        return self._public_key

    def verify(self, token: str | None) -> Identity:
        """The caller, or :class:`TokenInvalid` with the reason."""
        if not token:
            raise TokenInvalid("a bearer token is required")
        try:
            claims = jwt.decode(token, self._key(token), algorithms=[self.algorithm], audience=self.audience,
                                issuer=self.issuer, options={"require": ["sub", "exp", "iss", "aud"]}, leeway=30)
        except jwt.ExpiredSignatureError as exc:
            raise TokenInvalid("the token has expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenInvalid("the token's signature is not valid") from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"the token is not valid: {exc}") from exc
        subject = str(claims.get("sub") or "")
        if not subject:
            raise TokenInvalid("the token names no subject")
        return Identity(subject=subject, name=str(claims.get("name") or ""))


def mint_token(settings: Settings, subject: str, *, ttl_seconds: int = 3600, name: str = "",
               now: float | None = None) -> str:
    """An HS256 token signed with the configured secret: the local identity provider of the sandbox, the demo
    and the tests. A deployment with a real identity provider sets RS256 and has no secret to mint with."""
    if settings.approvals_jwt_algorithm != "HS256" or not settings.approvals_jwt_secret:
        raise ValueError("tokens can only be minted locally with an HS256 secret; ask your identity provider")
    issued = int(now if now is not None else time.time())
    claims = {"sub": subject, "iss": settings.approvals_jwt_issuer, "aud": settings.approvals_jwt_audience,
              "iat": issued, "exp": issued + ttl_seconds, **({"name": name} if name else {})}
    return jwt.encode(claims, settings.approvals_jwt_secret, algorithm="HS256")
