"""`free_port`: the harnesses start several servers on ports chosen before they bind them."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

import pytest

from gonghui_shared.testing import nats_server
from gonghui_shared.testing.nats_server import free_port


def test_a_port_the_kernel_offers_again_is_not_handed_out_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = free_port()
    offers = iter([first, first, first + 1])  # the kernel offers a given port again

    class Offering:
        def __enter__(self) -> Offering:
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

        def bind(self, address: tuple[str, int]) -> None:
            self.port = next(offers)

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(nats_server, "socket", SimpleNamespace(socket=Offering))
    assert free_port() == first + 1


def test_a_port_given_is_free() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))  # nothing had it
