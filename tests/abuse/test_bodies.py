"""Oversized and slow request bodies: a 1 GiB declared or streamed body is refused with 413
after at most the route's limit was read (the server's memory stays flat), and a body
trickled in (slowloris) is cut off with 408 by the body read timeout."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.abuse.conftest import READ_TIMEOUT_S
from tests.integration.test_ingest_fixtures import WEBHOOK_SECRET, World, read_to_end

pytestmark = pytest.mark.integration
GiB = 1024**3
CHUNK = b"x" * (256 * 1024)


def rss_bytes() -> int:
    """Resident memory of this process, which serves the app (uvicorn in a thread)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def head(path: str, token: str, extra: str, content_type: str = "application/json") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: ingest\r\nContent-Type: {content_type}\r\n"
        f"Authorization: Bearer {token}\r\nUser-Agent: abuse-suite\r\n{extra}\r\n"
    ).encode()


def read_response(sock: socket.socket, timeout: float = 30.0) -> bytes:
    """Everything the server sends until it closes the connection (or the timeout)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def push_until_answered(sock: socket.socket, chunks: Iterator[bytes], cap: int) -> int:
    """Send body chunks until the server answers (or closes), at most ``cap`` bytes; the
    number of body bytes the server was sent."""
    sent = 0
    sock.setblocking(False)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                readable, writable, _ = select.select([sock], [sock], [], 10)
                if readable:
                    return sent  # the answer (or the close) came
                if not writable:
                    raise AssertionError("the server neither reads nor answers")
                try:
                    n = sock.send(view)
                except (BrokenPipeError, ConnectionResetError):
                    return sent
                sent += n
                view = view[n:]
            if sent >= cap:
                return sent
        return sent
    finally:
        sock.setblocking(True)


def status_and_body(response: bytes) -> tuple[int, dict[str, object]]:
    head_, _, body = response.partition(b"\r\n\r\n")
    status = int(head_.split(b" ", 2)[1])
    return status, json.loads(body)


def endless(first: bytes = b"") -> Iterator[bytes]:
    yield first
    while True:
        yield CHUNK


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/v1/contacts", "application/json"), ("/v1/uploads", "text/csv")],
)
def test_a_declared_1gib_body_is_413_before_it_is_read(
    world: World, path: str, content_type: str
) -> None:
    # Uploads may be 1 GiB: one byte more is refused.
    size = GiB + 1 if path == "/v1/uploads" else GiB
    with socket.create_connection(("127.0.0.1", world.server.port), timeout=10) as sock:
        sock.sendall(head(path, world.keys.ingest, f"Content-Length: {size}\r\n", content_type))
        sent = push_until_answered(sock, endless(), cap=64 * 1024 * 1024)
        response = read_response(sock)
    status, body = status_and_body(response)
    assert status == 413, response[:300]
    assert body["error"] == "body_too_large"
    assert f"({size} bytes)" in str(body["reason"])
    # Answered without waiting for the body: far less than the declared size went out
    # (the kernel's socket buffers take some before the answer is seen).
    assert sent < 64 * 1024 * 1024, sent


@pytest.mark.parametrize(
    "path", ["/v1/contacts", f"/v1/webhooks/bison/{WEBHOOK_SECRET}", "/v1/registrations"]
)
def test_an_endless_chunked_body_is_cut_off_at_the_limit_with_flat_memory(
    world: World, path: str
) -> None:
    expected_limit = (
        world.settings.webhook_max_body_bytes
        if path.startswith("/v1/webhooks/")
        else world.settings.max_body_bytes
    )
    base = rss_bytes()
    with socket.create_connection(("127.0.0.1", world.server.port), timeout=10) as sock:
        sock.sendall(head(path, world.keys.ingest, "Transfer-Encoding: chunked\r\n"))

        def chunked() -> Iterator[bytes]:
            yield b'3\r\n{"a\r\n'
            while True:
                yield b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"

        sent = push_until_answered(sock, chunked(), cap=GiB)
        response = read_response(sock)
    growth = rss_bytes() - base
    status, body = status_and_body(response)
    assert status == 413, response[:300]
    assert body["error"] == "body_too_large"
    assert f"exceeds {expected_limit} bytes" in str(body["reason"])
    assert sent < 64 * 1024 * 1024, sent  # stopped near the limit, not at 1 GiB
    print(f"\n{path[:20]}: {sent / 1e6:.1f} MB sent before the 413, RSS +{growth / 1e6:.1f} MB")
    assert growth < 50 * 1024 * 1024, f"RSS grew {growth / 1e6:.0f} MB"


def test_a_trickled_body_is_cut_off_by_the_read_timeout(world: World) -> None:
    """Slowloris: a few bytes now and then keep each read inside the timeout, but the
    average rate after the grace period is far under the minimum: 408, connection closed."""
    with socket.create_connection(("127.0.0.1", world.server.port), timeout=10) as sock:
        extra = "Content-Length: 1000\r\nX-Request-ID: slow-1\r\n"
        sock.sendall(head("/v1/contacts", world.keys.ingest, extra))
        sent = 0
        answered = False
        deadline = time.monotonic() + 10 * READ_TIMEOUT_S  # the test's own guard
        while time.monotonic() < deadline and sent < 1000:
            readable, _, _ = select.select([sock], [], [], READ_TIMEOUT_S / 4)
            if readable:
                answered = True
                break
            try:
                sock.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                answered = True
                break
            sent += 1
        assert answered, "the server kept waiting for a trickled body"
        response = read_response(sock)
    status, body = status_and_body(response)
    assert status == 408, response[:300]
    assert body["error"] == "body_timeout"
    assert body["request_id"] == "slow-1"
    assert b"connection: close" in response.lower()
    assert sent < 1000


def test_an_upload_that_stops_is_cut_off_and_its_job_failed(world: World) -> None:
    with socket.create_connection(("127.0.0.1", world.server.port), timeout=10) as sock:
        extra = "Content-Length: 100000\r\nX-Request-ID: stalled-upload\r\n"
        sock.sendall(
            head("/v1/uploads", world.keys.ingest, extra, "text/csv")
            + b"email,first_name\r\nstalled@example.com,Ann\r\n"
        )
        response = read_response(sock, timeout=10 * READ_TIMEOUT_S)
    status, body = status_and_body(response)
    assert status == 408, response[:300]
    assert body["error"] == "body_timeout"
    logs = [
        world.serde.deserialize(m.value(), m.topic())
        for m in read_to_end(world.settings, "audit.requests")
    ]
    (log,) = [r for r in logs if r["request_id"] == "stalled-upload"]
    assert log["job_id"], log
    job = world.client.get(f"/v1/jobs/{log['job_id']}", headers=world.keys.auth(world.keys.ingest))
    assert job.json()["status"] == "failed", job.text


def test_slow_bodies_are_logged_with_their_error(world: World) -> None:
    logs = [
        world.serde.deserialize(m.value(), m.topic())
        for m in read_to_end(world.settings, "audit.requests")
    ]
    slow = [r for r in logs if r["request_id"] == "slow-1"]
    assert [(r["status"], r["error"]) for r in slow] == [(408, "body_timeout")]
