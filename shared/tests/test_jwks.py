"""Services verify with the gateway's JWKS, fetched at start-up with a bounded retry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from gonghui_shared.auth import Principal, TokenIssuer
from gonghui_shared.errors import Unauthorized
from gonghui_shared.keys import key_id, load_private_key, new_ed25519_pem, public_jwk
from gonghui_shared.permissions import Role
from gonghui_shared.runtime import JwksUnavailable, build_verifier
from gonghui_shared.settings import ServiceSettings

KEY = load_private_key(new_ed25519_pem())


class JwksServer:
    """A real HTTP server publishing KEY's JWKS after `failures` answers of 503."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if server.requests <= server.failures:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps({"keys": [public_jwk(KEY.public_key())]}).encode()
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
