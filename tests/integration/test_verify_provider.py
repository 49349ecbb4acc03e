"""The Reacher-compatible verifier client against a small fake Reacher server on loopback:
the request it sends, answer mapping, its rate limit, the circuit breaker and the budget."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from leadstream_verify.bridge import AsyncBridge
from leadstream_verify.reacher import ReacherVerifier
from leadstream_verify.resilience import CircuitBreaker, TokenBucket
from leadstream_verify.verdict import Verdict


class FakeReacher:
    """``POST /v1/check_email``: answers by the local part (safe, invalid, risky, unknown, slow,
    error); ``fail`` makes every call a 503."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, dict[str, Any], dict[str, str]]] = []
        self.fail = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((time.monotonic(), body, dict(self.headers)))
                local = str(body.get("to_email", "")).partition("@")[0]
                if outer.fail or local == "error" or self.path != "/v1/check_email":
                    return self._send(503, {"error": "unavailable"})
                if local == "slow":
                    time.sleep(1.0)
                reachable = local if local in ("safe", "invalid", "risky") else "unknown"
                self._send(
                    200,
                    {
                        "input": body["to_email"],
                        "is_reachable": reachable,
                        "misc": {"is_disposable": False, "is_role_account": False, "is_b2c": True},
                        "mx": {"accepts_mail": True, "records": ["mx.example.com."]},
                        "smtp": {
                            "can_connect_smtp": True,
                            "has_full_inbox": False,
                            "is_catch_all": reachable == "risky",
                            "is_deliverable": reachable == "safe",
                            "is_disabled": False,
                        },
                        "syntax": {"is_valid_syntax": True, "domain": "x", "username": local},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeReacher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def reacher() -> Iterator[FakeReacher]:
    with FakeReacher() as server:
        yield server


@pytest.fixture
def bridge() -> Iterator[AsyncBridge]:
    b = AsyncBridge()
    yield b
    b.close()


def client(reacher: FakeReacher, bridge: AsyncBridge, **kw: Any) -> ReacherVerifier:
    kw.setdefault("rate", TokenBucket(1000, burst=1000))
    return ReacherVerifier(
        reacher.url, bridge, api_key="k-123", auth_header="x-reacher-secret", timeout_s=5, **kw
    )


def test_answers_and_request(reacher: FakeReacher, bridge: AsyncBridge) -> None:
    verifier = client(reacher, bridge)
    try:
        got = verifier.verify_many(
            ["safe@a.example", "invalid@a.example", "risky@a.example", "other@a.example"]
        )
        assert {e: (o.verdict, o.reasons) for e, o in got.items()} == {
            "safe@a.example": (Verdict.DELIVERABLE, ("mailbox_exists",)),
            "invalid@a.example": (Verdict.UNDELIVERABLE, ("mailbox_not_found",)),
            "risky@a.example": (Verdict.RISKY, ("catch_all",)),
            "other@a.example": (None, ("provider_unknown",)),
        }
        _, body, headers = reacher.requests[0]
        assert set(body) == {"to_email"}
        assert headers["x-reacher-secret"] == "k-123"
        # conclusive answers are cached: a retried batch does not pay again
        verifier.verify_many(["safe@a.example", "other@a.example"])
        assert len(reacher.requests) == 5
    finally:
        verifier.close()


def test_rate_limit(reacher: FakeReacher, bridge: AsyncBridge) -> None:
    verifier = client(reacher, bridge, rate=TokenBucket(10, burst=1), concurrency=8)
    try:
        started = time.monotonic()
        verifier.verify_many([f"safe{i}@a.example" for i in range(11)])
        elapsed = time.monotonic() - started
    finally:
        verifier.close()
    assert elapsed >= 0.9  # 10 waits of 100 ms after the first token
    times = sorted(t for t, _, _ in reacher.requests)
    assert times[-1] - times[0] >= 0.9


def test_breaker_stops_calling_a_failing_provider(
    reacher: FakeReacher, bridge: AsyncBridge
) -> None:
    reacher.fail = True
    breaker = CircuitBreaker(failures=3, reset_s=0.5)
    verifier = client(reacher, bridge, breaker=breaker, concurrency=1)
    try:
        got = verifier.verify_many([f"safe{i}@a.example" for i in range(10)])
        assert len(reacher.requests) == 3
        reasons = [o.reasons for o in got.values()]
        assert reasons.count(("provider_error",)) == 3
        assert reasons.count(("provider_unavailable",)) == 7
        assert all(o.verdict is None for o in got.values())
        reacher.fail = False
        time.sleep(0.6)  # half open: one trial goes out, succeeds, closes the breaker
        again = verifier.verify_many(["safe@a.example", "invalid@a.example"])
        assert [o.verdict for o in again.values()] == [Verdict.DELIVERABLE, Verdict.UNDELIVERABLE]
    finally:
        verifier.close()


def test_budget_and_unreachable(reacher: FakeReacher, bridge: AsyncBridge) -> None:
    verifier = client(reacher, bridge, batch_budget_s=0.5, concurrency=1)
    try:
        got = verifier.verify_many(["slow@a.example", "safe@a.example"])
        assert got["safe@a.example"].reasons == ("provider_skipped",)
        assert got["slow@a.example"].reasons == ("provider_skipped",)
    finally:
        verifier.close()
    dead = ReacherVerifier("http://127.0.0.1:1", bridge, timeout_s=1)
    try:
        assert dead.verify_many(["safe@a.example"])["safe@a.example"].reasons == ("provider_error",)
    finally:
        dead.close()
