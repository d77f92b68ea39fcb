"""Every test of gnnleaky.datasets runs with sockets blocked and stdin closed (autouse fixture
below). Loading paths that have no real data here (PubMed, OGB, and WebKB for the corruption
tests) are exercised on tiny fixtures (:mod:`tests.datasets.formats`) written at test time in
the exact on-disk formats PyG and ogb read. Tests that need a real dataset are marked ``data``
and skip, naming the files, when it is absent under ``$GNNLEAKY_DATA``.
"""

from __future__ import annotations

import builtins
import io
import socket
import sys

import pytest

# Isolation: no network, no stdin ############################################


def _blocked(*args, **kwargs):
    raise OSError("network access attempted in a gnnleaky dataset test")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Block every way out (sockets, DNS) and close stdin, so a prompt or download fails loudly."""
    monkeypatch.setattr(socket.socket, "connect", _blocked)
    monkeypatch.setattr(socket.socket, "connect_ex", _blocked)
    monkeypatch.setattr(socket, "create_connection", _blocked)
    monkeypatch.setattr(socket, "getaddrinfo", _blocked)
    stdin = io.StringIO()
    stdin.close()
    monkeypatch.setattr(sys, "stdin", stdin)

    def no_input(prompt=""):
        raise AssertionError(f"stdin prompt attempted: {prompt!r}")

    monkeypatch.setattr(builtins, "input", no_input)
