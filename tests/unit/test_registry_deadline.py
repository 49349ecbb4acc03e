"""A registry that takes a request and never answers must not stop a service for good."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from leadstream.events import Serde
from leadstream.events.errors import RegistryUnavailableError
from leadstream.settings import Settings


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """A loopback server that accepts connections, reads the requests and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)  # kept open, never written to

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/apis/ccompat/v7"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_a_registry_that_never_answers_is_reported_unavailable(silent_registry: str) -> None:
    settings = Settings(schema_registry_url=silent_registry, schema_registry_timeout_s=0.2)
    began = time.monotonic()
    with Serde(settings) as serde, pytest.raises(RegistryUnavailableError, match="timed out"):
        serde.codec("contacts.raw").prepare()
    # Four attempts of 0.2 s and the client's backoff between them (at most 1 + 2 + 4 s).
    assert time.monotonic() - began < 30
