"""Services verify with the gateway's JWKS, fetched at start-up with a bounded retry, and
again while they run: on schedule, and at once for a token of a key not yet known."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from gonghui_shared.auth import Principal, PrincipalDep, TokenIssuer, TokenVerifier
from gonghui_shared.errors import Unauthorized, install_error_handlers
from gonghui_shared.keys import (
    key_id,
    load_private_key,
    load_public_keys,
    new_ed25519_pem,
    public_jwk,
    public_pem,
)
from gonghui_shared.permissions import Role
from gonghui_shared.runtime import JwksRefresher, JwksUnavailable, build_verifier
from gonghui_shared.settings import ServiceSettings

KEY = load_private_key(new_ed25519_pem())


class JwksServer:
    """A real HTTP server publishing the JWKS of `keys` (KEY's by default) after `failures`
    answers of 503, and while `down` is false."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests = 0
        self.keys = [KEY]
        self.down = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if server.requests <= server.failures or server.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                jwks = {"keys": [public_jwk(key.public_key()) for key in server.keys]}
                body = json.dumps(jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"

    def __enter__(self) -> JwksServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def no_dev_key(tmp_path: Path) -> Iterator[Path]:
    """A data dir whose dev key is never created: the JWKS must be the only source."""
    yield tmp_path
    assert not (tmp_path / "dev-keys").exists()


async def test_a_service_fetches_the_jwks_retrying_until_the_gateway_answers(
    no_dev_key: Path,
) -> None:
    with JwksServer(failures=2) as server:
        settings = ServiceSettings(data_dir=no_dev_key, jwks_url=server.url, jwks_wait_seconds=10)
        verifier = await build_verifier(settings)
        assert server.requests == 3
    chair = Principal(subject="u", role=Role.org_chair, org_path="/c/")
    assert verifier.verify(TokenIssuer(KEY).issue(chair)) == chair
    other = load_private_key(new_ed25519_pem())
    with pytest.raises(Unauthorized):
        verifier.verify(TokenIssuer(other).issue(chair))
    jwk = public_jwk(KEY.public_key())
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["kid"]) == (
        "OKP",
        "Ed25519",
        "EdDSA",
        key_id(KEY.public_key()),
    )


async def test_start_up_gives_up_after_the_wait_with_the_last_problem(no_dev_key: Path) -> None:
    with JwksServer(failures=10**6) as server:
        settings = ServiceSettings(data_dir=no_dev_key, jwks_url=server.url, jwks_wait_seconds=0.5)
        started = time.monotonic()
        with pytest.raises(JwksUnavailable, match="503"):
            await build_verifier(settings)
        assert time.monotonic() - started < 2.0
        assert 2 <= server.requests <= 6


async def test_the_issuer_ignores_the_jwks_and_uses_its_own_key(tmp_path: Path) -> None:
    class IssuerSettings(ServiceSettings):
        issues_tokens: ClassVar[bool] = True

    # Nothing listens on port 9: a fetch would fail; the issuer must not try.
    settings = IssuerSettings(data_dir=tmp_path, jwks_url="http://127.0.0.1:9/jwks.json")
    verifier = await build_verifier(settings)
    issuer_key = (tmp_path / "dev-keys" / "jwt_ed25519.pem").read_bytes()
    principal = Principal(subject="a", role=Role.platform_admin)
    assert verifier.verify(TokenIssuer(load_private_key(issuer_key)).issue(principal)) == principal


CHAIR = Principal(subject="u", role=Role.org_chair, org_path="/c/")


def service_app(verifier: TokenVerifier, jwks: JwksRefresher | None) -> FastAPI:
    """An app verifying its callers as every service does (`PrincipalDep`), with the runtime
    parts that takes: the verifier and its JWKS refresher."""
    app = FastAPI()
    install_error_handlers(app)
    app.state.runtime = SimpleNamespace(verifier=verifier, jwks=jwks)

    @app.get("/me")
    async def me(principal: PrincipalDep) -> Principal:
        return principal

    return app


async def call(app: FastAPI, key_or_token: Ed25519PrivateKey | str) -> httpx.Response:
    """`GET /me` with the token given, or with a new one signed by the key given."""
    token = key_or_token
    if isinstance(token, Ed25519PrivateKey):
        token = TokenIssuer(token).issue(CHAIR)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.get("/me", headers={"Authorization": f"Bearer {token}"})


async def test_a_token_of_a_new_signing_key_fetches_the_jwks_again(no_dev_key: Path) -> None:
    new_key = load_private_key(new_ed25519_pem())
    with JwksServer() as server:
        settings = ServiceSettings(data_dir=no_dev_key, jwks_url=server.url)
        verifier = await build_verifier(settings)
        refresher = JwksRefresher.for_settings(settings, verifier)
        assert refresher is not None
        refresher.MIN_INTERVAL_SECONDS = 0.0  # the start-up fetch was a moment ago
        app = service_app(verifier, refresher)
        assert (await call(app, KEY)).status_code == 200
        assert server.requests == 1

        # The gateway now signs with the new key and still accepts the old one.
        server.keys = [new_key, KEY]
        answers = await asyncio.gather(*(call(app, new_key) for _ in range(5)))
        assert [a.status_code for a in answers] == [200] * 5, answers[0].text
        assert answers[0].json()["subject"] == "u"
        assert server.requests == 2  # five callers at once, one fetch
        assert (await call(app, KEY)).status_code == 200  # the old key's tokens still verify


async def test_unknown_keys_fetch_the_jwks_at_most_every_ten_seconds(no_dev_key: Path) -> None:
    with JwksServer() as server:
        settings = ServiceSettings(data_dir=no_dev_key, jwks_url=server.url)
        verifier = await build_verifier(settings)
        refresher = JwksRefresher.for_settings(settings, verifier)
        app = service_app(verifier, refresher)
        assert JwksRefresher.MIN_INTERVAL_SECONDS == 10.0
        strangers = [load_private_key(new_ed25519_pem()) for _ in range(3)]
        for stranger in strangers:
            answer = await call(app, stranger)
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.json()["error"]["message"] == "The token is invalid"
        assert server.requests == 1  # start-up's alone: made-up keys cost no fetches

        # Past the interval a stranger's key is looked for once; it is still refused.
        assert refresher is not None
        refresher.MIN_INTERVAL_SECONDS = 0.0
        assert (await call(app, strangers[0])).status_code == 401
        assert server.requests == 2


async def test_the_scheduled_fetch_withdraws_a_key_and_a_failed_one_keeps_the_keys(
    no_dev_key: Path,
) -> None:
    old_key = load_private_key(new_ed25519_pem())
    with JwksServer() as server:
        server.keys = [KEY, old_key]
        settings = ServiceSettings(
            data_dir=no_dev_key, jwks_url=server.url, jwks_refresh_seconds=0.05
        )
        verifier = await build_verifier(settings)
        refresher = JwksRefresher.for_settings(settings, verifier)
        assert refresher is not None
        app = service_app(verifier, None)  # only the schedule fetches here
        old_token = TokenIssuer(old_key).issue(CHAIR)
        assert (await call(app, old_token)).status_code == 200  # verified, and remembered
        refresher.start()
        try:
            server.down = True
            fetched = server.requests
            await until(lambda: server.requests >= fetched + 2)
            assert (await call(app, old_token)).status_code == 200  # held through the failures

            server.down = False
            server.keys = [KEY]  # the rotation is over: the old key is withdrawn
            await until(lambda: len(verifier.public_keys) == 1)
            assert (await call(app, old_token)).status_code == 401  # remembered no longer
            assert (await call(app, old_key)).status_code == 401
            assert (await call(app, KEY)).status_code == 200
        finally:
            await refresher.stop()
        stopped = server.requests
        await asyncio.sleep(0.2)
        assert server.requests == stopped


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


def test_a_setting_may_hold_several_public_keys() -> None:
    other = load_private_key(new_ed25519_pem())
    pems = "\n".join(public_pem(k) for k in (KEY, other))
    found = load_public_keys(pems)
    assert [key_id(k) for k in found] == [key_id(KEY.public_key()), key_id(other.public_key())]
    verifier = TokenVerifier(found)
    assert verifier.verify(TokenIssuer(other).issue(CHAIR)) == CHAIR
    with pytest.raises(ValueError, match="PEM"):
        load_public_keys("not a key")
