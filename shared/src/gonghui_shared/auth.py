"""Bearer tokens and the principal they carry.

Access tokens are JWTs signed with Ed25519 (EdDSA). Services hold only the
public key and verify; the gateway (and the dev CLI `gonghui-token`) holds
the private key and issues. A principal has a role and an org scope: the org's
materialised path, covering its whole subtree. A government system's API key
adds `scopes`: the actions its named scopes allow, a further limit on the role.

Every token carries a `jti` (so the gateway can revoke it) and a `kid` header
(the RFC 7638 thumbprint of the signing key, so verifiers can pick the key of a
JWKS while keys rotate).
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from gonghui_shared.audit.context import note_target_org
from gonghui_shared.errors import Forbidden, OutOfScope, Unauthorized
from gonghui_shared.ids import new_id
from gonghui_shared.keys import key_id
from gonghui_shared.permissions import PERMISSIONS, Action, Role

ISSUER = "gonghui"
# Org paths are /<id>/…/; this one matches none of them.
NO_ORG_SCOPE = "/-no-org-scope-/"
AUDIENCE = "gonghui"


class Principal(BaseModel):
    """Who is calling: subject, role, and the org subtree they act in."""

    subject: str
    role: Role
    org_id: str | None = None
    org_path: str | None = Field(None, description="'/a/b/' covers b and all below it")
    member_no: str | None = None
    scopes: list[Action] | None = Field(
        None,
        description="set for API keys: only these actions, and only those the role holds too",
    )

    def may(self, action: Action) -> bool:
        """The role holds the action and, when the principal is scoped, a scope allows it."""
        return action in PERMISSIONS[self.role] and (self.scopes is None or action in self.scopes)

    @property
    def subtree(self) -> str | None:
        """The org path whose subtree a list may show: None for all (platform admins only).

        Any other principal without an org scope sees nothing, never everything: it gets a
        path no org has.
        """
        if self.role is Role.platform_admin:
            return None
        return self.org_path or NO_ORG_SCOPE

    def covers(self, org_path: str) -> bool:
        if self.role is Role.platform_admin:
            return True
        return self.org_path is not None and org_path.startswith(self.org_path)

    def require(self, action: Action, org_path: str | None = None) -> None:
        """Raise Forbidden unless the role may act, OutOfScope unless the org is in scope."""
        note_target_org(org_path)  # the org this request acts on, for its audit row
        if not self.may(action):
            if action in PERMISSIONS[self.role]:
                raise Forbidden(
                    f"The credential's scopes do not include {action.value}",
                    f"凭证的授权范围不包括 {action.value}",
                )
            raise Forbidden(
                f"Role {self.role.value} may not {action.value}",
                f"角色 {self.role.value} 无权执行 {action.value}",
            )
        if org_path is not None and not self.covers(org_path):
            raise OutOfScope()


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature, issuer, audience and expiry were checked."""

    principal: Principal
    jti: str | None
    expires_at: int  # seconds since the epoch
    claims: dict[str, Any]


# Distinct tokens remembered as verified per verifier: a few thousand callers at once.
VERIFIED_TOKENS_KEPT = 4096


class UnknownSigningKey(Unauthorized):
    """A token naming a key (`kid`) the verifier does not hold, and no key it holds
    verified: to the caller an invalid token like any other; to a service verifying with
    the gateway's JWKS, the sign to fetch it again (the key may be new)."""

    message = "The token is invalid"
    message_zh = "令牌无效"


class TokenVerifier:
    """Verifies tokens with one public key, or with each key of a JWKS (picked by `kid`)."""

    def __init__(self, public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey]) -> None:
        keys = [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)
        if not keys:
            raise ValueError("a verifier needs at least one public key")
        self._keys = {key_id(key): key for key in keys}
        # Token -> what it verified to. A caller sends the same token with every request
        # until it expires, and an Ed25519 verification costs more than the rest of a
        # small request's authentication: each token is verified once, then remembered
        # until its `exp` (checked on every use), in a bounded least-recently-used map.
        self._verified: OrderedDict[str, VerifiedToken] = OrderedDict()

    @property
    def public_keys(self) -> list[Ed25519PublicKey]:
        return list(self._keys.values())

    def replace_keys(self, public_keys: Sequence[Ed25519PublicKey]) -> tuple[set[str], set[str]]:
        """Verify with these keys from now on; the ids of the keys added and withdrawn. A
        token already verified with a withdrawn key is forgotten, so it is refused at once."""
        if not public_keys:
            raise ValueError("a verifier needs at least one public key")
        keys = {key_id(key): key for key in public_keys}
        added, withdrawn = keys.keys() - self._keys.keys(), self._keys.keys() - keys.keys()
        self._keys = keys
        if withdrawn:
            self._verified.clear()
        return set(added), set(withdrawn)

    def verify(self, token: str) -> Principal:
        return self.decode(token).principal

    def decode(self, token: str) -> VerifiedToken:
        """Check the token and return its principal, `jti` and expiry; Unauthorized if bad."""
        verified = self._verified.get(token)
        if verified is not None:
            if verified.expires_at > time.time():
                # KeyError: a caller in another thread let it go meanwhile; no matter.
                with contextlib.suppress(KeyError):
                    self._verified.move_to_end(token)
                return verified
            self._verified.pop(token, None)
            raise Unauthorized("The token has expired", "令牌已过期")
        verified = self._decode(token)
        self._verified[token] = verified
        while len(self._verified) > VERIFIED_TOKENS_KEPT:
            with contextlib.suppress(KeyError):
                self._verified.popitem(last=False)
        return verified

    def _decode(self, token: str) -> VerifiedToken:
        invalid = Unauthorized("The token is invalid", "令牌无效")
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise invalid from exc
        # A known kid names its key; otherwise (no kid, or a key we were not told the id of)
        # every key is tried: a signature still has to verify.
        keys = [self._keys[kid]] if kid in self._keys else list(self._keys.values())
        for key in keys:
            try:
                claims = jwt.decode(
                    token, key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
                )
                return VerifiedToken(
                    principal=_principal(claims),
                    jti=claims.get("jti"),
                    expires_at=int(claims["exp"]),
                    claims=claims,
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError as exc:  # raised only once the signature verified
                raise Unauthorized("The token has expired", "令牌已过期") from exc
            except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as exc:
                raise invalid from exc
        if isinstance(kid, str) and kid not in self._keys:
            raise UnknownSigningKey()
        raise invalid


def _principal(claims: dict[str, Any]) -> Principal:
    scopes = claims.get("scopes")
    if scopes is not None and not isinstance(scopes, list):
        raise ValueError("scopes must be a list")
    return Principal(
        subject=claims["sub"],
        role=Role(claims["role"]),
        org_id=claims.get("org_id"),
        org_path=claims.get("org_path"),
        member_no=claims.get("member_no"),
        # An action this service does not know grants nothing here: drop it, keep the limit.
        scopes=None if scopes is None else [Action(a) for a in scopes if a in _ACTION_NAMES],
    )


_ACTION_NAMES = frozenset(a.value for a in Action)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: int  # seconds since the epoch


class TokenIssuer:
    """Signs access tokens; `kid` is the thumbprint of the key's public half."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.kid = key_id(private_key.public_key())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def issue(self, principal: Principal, ttl_seconds: int = 3600) -> str:
        return self.issue_token(principal, ttl_seconds).token

    def issue_token(
        self,
        principal: Principal,
        ttl_seconds: int = 3600,
        *,
        claims: Mapping[str, Any] | None = None,
    ) -> IssuedToken:
        """A signed token for the principal; `claims` adds extra (non-registered) claims."""
        now = int(time.time())
        jti = new_id()
        body: dict[str, Any] = {
            **(claims or {}),
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": principal.subject,
            "role": principal.role.value,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": jti,
        }
        for name in ("org_id", "org_path", "member_no"):
            if (value := getattr(principal, name)) is not None:
                body[name] = value
        if principal.scopes is not None:
            body["scopes"] = sorted(a.value for a in principal.scopes)
        token = jwt.encode(body, self._key, algorithm="EdDSA", headers={"kid": self.kid})
        return IssuedToken(token=token, jti=jti, expires_at=body["exp"])


def bearer_token(request: HTTPConnection) -> str | None:
    """The token of the `Authorization: Bearer …` header, read as `HTTPBearer` with
    `auto_error=False` reads it (the first such header, the scheme in any case; None when
    there is none or it names another scheme), without the pydantic model it builds: a
    twentieth of a cached dashboard answer's CPU time."""
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if token and scheme.lower() == "bearer" else None
    return None


class BearerPrincipal(HTTPBearer):
    """The caller, from the bearer token the gateway issued: the security scheme (OpenAPI
    documents it as HTTP bearer, as `HTTPBearer` itself) and the token's check in one
    dependency. As two, a scheme and a function verifying its credentials, every
    authenticated request paid for a second round of FastAPI's dependency solving."""

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        token = bearer_token(request)
        if token is None:
            raise Unauthorized()
        runtime = request.app.state.runtime
        verifier: TokenVerifier = runtime.verifier
        try:
            principal = verifier.verify(token)
        except UnknownSigningKey:
            # Perhaps the gateway signs with a new key since: fetch its JWKS and try again.
            if runtime.jwks is None or not await runtime.jwks.fetch_for_unknown_key():
                raise
            principal = verifier.verify(token)
        request.state.principal = principal  # who the audit row names
        return principal


current_principal = BearerPrincipal(
    auto_error=False, scheme_name="HTTPBearer", description="JWT issued by the gateway"
)


PrincipalDep = Annotated[Principal, Depends(current_principal)]
