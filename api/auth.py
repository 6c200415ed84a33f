"""Who is calling and what they may do: API keys or JWT bearer tokens, scopes, rate limits.

Deny by default: every route depends on :func:`require_scope`, except the health
probes and the OpenAPI document. Routes take the caller like this::

    @router.get("/v1/overview")
    async def overview(caller: Annotated[Caller, Depends(require_scope("view"))]) -> ...

or with the aliases below (``ViewCaller``, ``AdminCaller``, ...).

Credentials, in order of precedence:
- ``X-API-Key: <key>``;
- ``Authorization: Bearer <key>`` (a key starts with ``ioc_``), or ``Authorization:
  Bearer <JWT>`` when ``IOC_API__JWT_KEY`` is set (claims ``sub``, ``exp`` and
  ``scope``, space-separated, or ``scopes``, a list);
- ``?api_key=<key>`` only on the routes marked :func:`takes_query_key` (the live
  WebSocket and Server-Sent Events feeds), because browsers cannot set headers on those.

Failed authentications (a credential presented and refused) are limited per client
address and per presented key prefix; once either has used its allowance, requests are
answered 429 before any credential is checked, so keys cannot be guessed at speed.

Scopes: ``view`` (operators read), ``publish:<domain>`` (integrators publish that
domain's events), ``replay`` (engineers), ``admin`` (everything).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal, TypeVar

import jwt
from fastapi import Depends, WebSocketException
from fastapi.openapi.models import APIKey, APIKeyIn, HTTPBearer
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

from api.keys import KEY_PREFIX, KeyStore
from api.problems import Problem
from api.ratelimit import RateLimiter
from ioc.settings import Settings

__all__ = [
    "AdminCaller",
    "AnyCaller",
    "Authenticator",
    "Caller",
    "PublishCaller",
    "ReplayCaller",
    "ViewCaller",
    "require_scope",
    "takes_query_key",
]

#: Close code for a refused WebSocket (RFC 6455 "policy violation").
WS_POLICY_VIOLATION = 1008
#: Close code for a WebSocket refused by the rate limit ("try again later").
WS_TRY_AGAIN_LATER = 1013


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller: a key's name or a token's subject, and its scopes."""

    name: str
    scopes: frozenset[str]
    via: Literal["key", "jwt"] = "key"
    #: CloudEvent source patterns the caller may publish; empty: any.
    sources: tuple[str, ...] = ()

    def can(self, scope: str) -> bool:
        """True when the caller holds ``scope``; ``admin`` holds every scope,
        ``publish`` (no domain) is held by any ``publish:<domain>``, and ``*`` by anyone
        authenticated."""
        if "admin" in self.scopes or scope in self.scopes or scope == "*":
            return True
        if scope == "publish":
            return any(s.startswith("publish:") for s in self.scopes)
        return False

    def may_publish_source(self, source: str) -> bool:
        """Whether events of this CloudEvent ``source`` may be published by the caller."""
        return not self.sources or any(fnmatchcase(source, p) for p in self.sources)


class _ApiKeyHeader(SecurityBase):
    """``X-API-Key`` (documented in OpenAPI as the ``ApiKey`` scheme)."""

    def __init__(self) -> None:
        self.model = APIKey(
            **{"in": APIKeyIn.header},
            name="X-API-Key",
            description="An API key (`ioc keys create`).",
        )
        self.scheme_name = "ApiKey"

    async def __call__(self, conn: HTTPConnection) -> str | None:
        return conn.headers.get("x-api-key") or None


class _Bearer(SecurityBase):
    """``Authorization: Bearer`` (documented in OpenAPI as the ``Bearer`` scheme)."""

    def __init__(self) -> None:
        self.model = HTTPBearer(
            bearerFormat="API key or JWT",
            description="An API key, or a JWT when the API is configured with a secret.",
        )
        self.scheme_name = "Bearer"

    async def __call__(self, conn: HTTPConnection) -> str | None:
        value = conn.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


api_key_header = _ApiKeyHeader()
bearer = _Bearer()


#: Characters of a presented key that name its prefix for the failure limit: ``ioc_`` and
#: eight of the random part (48 bits), so guesses at one known prefix are limited while
#: random guesses spread over prefixes and meet the per-address limit.
KEY_PREFIX_CHARS = len(KEY_PREFIX) + 8


class Authenticator:
    """Turns presented credentials into a :class:`Caller`, and applies the rate limits."""

    def __init__(self, settings: Settings, *, keys: KeyStore | None = None) -> None:
        self.api = settings.api
        self.keys = keys or KeyStore(settings)
        self.limiter = RateLimiter(rate_per_s=self.api.rate_per_s, burst=self.api.rate_burst)
        self.failures = RateLimiter(
            rate_per_s=self.api.auth_failure_per_s, burst=self.api.auth_failure_burst
        )

    def identify(self, credential: str, *, client: str) -> Caller:
        """The caller a credential belongs to; raise a 401 problem when it is not valid,
        or a 429 problem when ``client`` (an address) or the credential's key prefix has
        failed too often (then the credential is not checked at all)."""
        is_key = credential.startswith(KEY_PREFIX) or self.api.jwt_key is None
        # A JWT's first characters are its header, the same for every token: only the
        # address counts for tokens.
        buckets = [f"addr:{client}"]
        if is_key:
            buckets.append(f"prefix:{credential[:KEY_PREFIX_CHARS]}")
        wait = max(self.failures.wait(b) for b in buckets)
        if wait > 0:
            raise _too_many(
                "too-many-failed-authentications",
                "Too many failed authentications",
                "too many refused credentials from this client or for this key prefix",
                wait_s=wait,
            )
        try:
            if is_key:
                holder = self.keys.holder(credential)
                if holder is None:
                    raise _unauthenticated("invalid-credentials", "the API key is not valid")
                return Caller(holder.name, holder.scopes, sources=holder.sources)
            return self._from_jwt(credential)
        except Problem:
            for bucket in buckets:
                self.failures.take(bucket)
            raise

    def _from_jwt(self, token: str) -> Caller:
        assert self.api.jwt_key is not None
        try:
            claims = jwt.decode(
                token,
                self.api.jwt_key.get_secret_value(),
                algorithms=[self.api.jwt_algorithm],
                audience=self.api.jwt_audience,
                issuer=self.api.jwt_issuer,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise _unauthenticated(
                "invalid-credentials", f"the token is not valid: {exc}"
            ) from None
        raw = claims.get("scopes", claims.get("scope", ""))
        scopes = raw.split() if isinstance(raw, str) else raw
        if not isinstance(scopes, list):
            raise _unauthenticated("invalid-credentials", "the token's scope claim is malformed")
        return Caller(str(claims["sub"]), frozenset(str(s) for s in scopes), via="jwt")

    def admit(self, caller: Caller) -> None:
        """Spend one request of the caller's rate; raise a 429 problem when none is left."""
        wait = self.limiter.take(f"{caller.via}:{caller.name}")
        if wait > 0:
            raise _too_many(
                "rate-limited",
                "Too many requests",
                f"{caller.name!r} is over its rate of {self.api.rate_per_s:g} requests/s "
                f"(bursts of {self.api.rate_burst})",
                wait_s=wait,
            )


def _too_many(slug: str, title: str, detail: str, *, wait_s: float) -> Problem:
    """A 429 problem saying, in its detail and ``Retry-After``, when to try again."""
    retry = max(1, math.ceil(wait_s))
    return Problem(
        429, slug, title, f"{detail}; retry in {retry} s", headers={"Retry-After": str(retry)}
    )


def _unauthenticated(slug: str, detail: str) -> Problem:
    return Problem(
        401,
        slug,
        "Unauthenticated",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="ioc", ApiKey header="X-API-Key"'},
    )


_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


def takes_query_key(endpoint: _Endpoint) -> _Endpoint:
    """Mark a route whose clients are browsers' WebSocket or EventSource, which cannot set
    headers: it also takes the key as ``?api_key=``. No other route does."""
    endpoint.takes_query_key = True  # type: ignore[attr-defined]
    return endpoint


def _query_key(conn: HTTPConnection) -> str | None:
    """``?api_key=`` on a route marked :func:`takes_query_key`."""
    if getattr(conn.scope.get("endpoint"), "takes_query_key", False):
        return conn.query_params.get("api_key") or None
    return None


def client_address(conn: HTTPConnection) -> str:
    """The client's address (uvicorn takes it from X-Forwarded-For only when the peer is
    one of ``IOC_API__TRUSTED_PROXIES``)."""
    return conn.client.host if conn.client is not None else "unknown"


def authorize(
    conn: HTTPConnection, scope: str, header_key: str | None, bearer_token: str | None
) -> Caller:
    """The caller of ``conn`` if it holds ``scope``; else raise the problem that says why."""
    auth: Authenticator = conn.app.state.auth
    credential = header_key or bearer_token or _query_key(conn)
    if credential is None:
        raise _unauthenticated(
            "unauthenticated", "send an API key in X-API-Key or Authorization: Bearer"
        )
    caller = auth.identify(credential, client=client_address(conn))
    auth.admit(caller)
    if not caller.can(scope):
        needed = "publish:<domain>" if scope == "publish" else scope
        raise Problem(403, "forbidden", "Forbidden", f"{caller.name!r} lacks the {needed!r} scope")
    return caller


def websocket_refusal(problem: Problem) -> WebSocketException:
    """What a WebSocket route raises instead of a refusal of access: the handshake
    completes and the connection is closed at once (``api.problems`` does it, so that
    browsers, which see nothing of a refused handshake, get the code and reason), with
    1013 ("try again later") for 429 and 503, 1008 ("policy violation") for the rest."""
    code = WS_TRY_AGAIN_LATER if problem.status in (429, 503) else WS_POLICY_VIOLATION
    return WebSocketException(code=code, reason=f"{problem.slug}: {problem.detail}")


def require_scope(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency that admits callers holding ``scope`` and returns who they are.

    Works on HTTP routes (problem+json 401/403/429) and WebSocket routes (closed with
    1008, or 1013 when rate-limited, before the handshake completes).
    """

    async def dependency(
        conn: HTTPConnection,
        header_key: Annotated[str | None, Depends(api_key_header)],
        bearer_token: Annotated[str | None, Depends(bearer)],
    ) -> Caller:
        try:
            return authorize(conn, scope, header_key, bearer_token)
        except Problem as problem:
            if conn.scope["type"] != "websocket":
                raise
            raise websocket_refusal(problem) from None

    dependency.__name__ = f"require_scope_{scope.replace(':', '_')}"
    return dependency


ViewCaller = Annotated[Caller, Depends(require_scope("view"))]
PublishCaller = Annotated[Caller, Depends(require_scope("publish"))]
ReplayCaller = Annotated[Caller, Depends(require_scope("replay"))]
AdminCaller = Annotated[Caller, Depends(require_scope("admin"))]
#: Any valid key or token, whatever its scopes (the published contract, for instance).
AnyCaller = Annotated[Caller, Depends(require_scope("*"))]
