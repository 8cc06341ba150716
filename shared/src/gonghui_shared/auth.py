"""Bearer tokens and the principal they carry.

Access tokens are JWTs signed with Ed25519 (EdDSA). Services hold only the
public key and verify; the gateway (and, until it exists, the dev CLI
`gonghui-token`) holds the private key and issues. A principal has a role and
an org scope: the org's materialised path, covering its whole subtree.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from gonghui_shared.errors import Forbidden, OutOfScope, Unauthorized
from gonghui_shared.permissions import PERMISSIONS, Action, Role

ISSUER = "gonghui"
AUDIENCE = "gonghui"


class Principal(BaseModel):
    """Who is calling: subject, role, and the org subtree they act in."""

    subject: str
    role: Role
    org_id: str | None = None
    org_path: str | None = Field(None, description="'/a/b/' covers b and all below it")
    member_no: str | None = None

    def may(self, action: Action) -> bool:
        return action in PERMISSIONS[self.role]

    def covers(self, org_path: str) -> bool:
        if self.role is Role.platform_admin:
            return True
        return self.org_path is not None and org_path.startswith(self.org_path)

    def require(self, action: Action, org_path: str | None = None) -> None:
        """Raise Forbidden unless the role may act, OutOfScope unless the org is in scope."""
        if not self.may(action):
            raise Forbidden(
                f"Role {self.role.value} may not {action.value}",
                f"角色 {self.role.value} 无权执行 {action.value}",
            )
        if org_path is not None and not self.covers(org_path):
            raise OutOfScope()


class TokenVerifier:
    def __init__(self, public_key: Ed25519PublicKey) -> None:
        self._key = public_key

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token, self._key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
            )
            return Principal(
                subject=claims["sub"],
                role=Role(claims["role"]),
                org_id=claims.get("org_id"),
                org_path=claims.get("org_path"),
                member_no=claims.get("member_no"),
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The token has expired", "令牌已过期") from exc
        except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
            raise Unauthorized("The token is invalid", "令牌无效") from exc


class TokenIssuer:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    def issue(self, principal: Principal, ttl_seconds: int = 3600) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": principal.subject,
            "role": principal.role.value,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        for name in ("org_id", "org_path", "member_no"):
            if (value := getattr(principal, name)) is not None:
                claims[name] = value
        return jwt.encode(claims, self._key, algorithm="EdDSA")


_bearer = HTTPBearer(auto_error=False, description="JWT issued by the gateway")


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized()
    verifier: TokenVerifier = request.app.state.runtime.verifier
    return verifier.verify(credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(current_principal)]
