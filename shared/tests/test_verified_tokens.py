"""The verifier remembers tokens it verified, until they expire, and no more of them than
it may keep."""

from __future__ import annotations

import time

import jwt
import pytest

from gonghui_shared import auth
from gonghui_shared.auth import Principal, TokenIssuer, TokenVerifier
from gonghui_shared.errors import Unauthorized
from gonghui_shared.keys import load_private_key, new_ed25519_pem
from gonghui_shared.permissions import Role

ADMIN = Principal(subject="a", role=Role.county_admin, org_path="/c/")


class CountingVerifier(TokenVerifier):
    """Counts the signature checks (the work the memory saves)."""

    checks = 0

    def _decode(self, token: str) -> auth.VerifiedToken:
        self.checks += 1
        return super()._decode(token)


def _pair() -> tuple[TokenIssuer, CountingVerifier]:
    key = load_private_key(new_ed25519_pem())
    return TokenIssuer(key), CountingVerifier(key.public_key())


def test_a_token_is_checked_once_then_remembered() -> None:
    issuer, verifier = _pair()
    token = issuer.issue(ADMIN)
    first = verifier.decode(token)
    assert verifier.decode(token) == first and verifier.verify(token) == ADMIN
    assert verifier.checks == 1


def test_a_remembered_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    issuer, verifier = _pair()
    token = issuer.issue(ADMIN, ttl_seconds=60)
    verifier.verify(token)
    later = time.time() + 61
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)
    assert verifier.checks == 1
    # Forgotten once refused: the next use is checked again (jwt reads the real clock).
    verifier.verify(token)
    assert verifier.checks == 2


def test_refused_tokens_are_not_remembered() -> None:
    issuer, verifier = _pair()
    other_issuer, _ = _pair()
    token = other_issuer.issue(ADMIN)
    for _ in range(2):
        with pytest.raises(Unauthorized, match="invalid"):
            verifier.verify(token)
    assert verifier.checks == 2
    tampered = issuer.issue(ADMIN)[:-4] + "AAAA"
    with pytest.raises(Unauthorized):
        verifier.verify(tampered)


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_TOKENS_KEPT", 3)
    issuer, verifier = _pair()
    tokens = [issuer.issue(ADMIN) for _ in range(4)]
    for token in tokens:
        verifier.verify(token)
    assert verifier.checks == 4
    verifier.verify(tokens[3])  # the newest are kept
    assert verifier.checks == 4
    verifier.verify(tokens[0])  # the oldest was let go: verified again
    assert verifier.checks == 5


def test_jwt_claims_are_still_checked_on_first_use() -> None:
    key = load_private_key(new_ed25519_pem())
    verifier = TokenVerifier(key.public_key())
    now = int(time.time())
    wrong_audience = jwt.encode(
        {"iss": "gonghui", "aud": "elsewhere", "sub": "a", "role": "county_admin", "exp": now + 60},
        key,
        algorithm="EdDSA",
    )
    with pytest.raises(Unauthorized, match="invalid"):
        verifier.verify(wrong_audience)
