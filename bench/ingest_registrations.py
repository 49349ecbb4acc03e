"""``POST /v1/registrations`` under wrk, against a minimal ASGI endpoint that only produces to
Kafka, in the same run, on loopback.

    uv run python -m bench.ingest_registrations [--duration 20] [--rounds 2] [--rate 2000]

Needs ``wrk`` (``apt-get install -y wrk``; the script installs it when missing and it runs
as root) and the local stack (Kafka, registry, Redis). Two servers, each one uvicorn process
(one worker, uvloop + httptools), are started on free loopback ports:

- **baseline**: a bare ASGI callable: read the body, produce it (raw bytes) with the same
  ingest producer (idempotent, ``acks=all``, ``linger.ms`` 5, lz4), wait for the broker's ack,
  answer 202 with a small JSON body. No FastAPI, no validation, no Redis, no request log.
- **registrations**: the real ingest app (``create_app``) as it runs: the registrations fast
  path (``fast_registrations.py``: request id and request log, body limit, validation, phone
  rules, the Redis rate-limit script, Avro, broker ack, CORS and security headers, without
  FastAPI's routing and middleware stack).
- **fastapi** (``--compare-fastapi``): the same app with ``LEADSTREAM_REGISTRATION_FAST_PATH=
  false``: the route through FastAPI and its middleware (request-context/log, body limit,
  CORS, security headers), as before the fast path.

In both apps the rate limit is configured **high** (10⁹ per second, burst 10⁹) so
that it is evaluated on every request but never refuses one: wrk sends everything from
127.0.0.1, one client.

Each request carries a distinct valid GB mobile (a wrk Lua counter), so events spread over
the partitions as real traffic does. Two measurements per server and round: throughput
(wrk, 64 connections, as fast as it goes) and latency at a paced rate (wrk's Lua ``delay()``
per connection, tuned to ``--rate``; wrk is closed-loop, so this is the latency of a paced
client, not wrk2's coordinated-omission-corrected figure; the achieved rate is reported).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import append_results, bench_settings, delete_topics
from leadstream.events import Serde, register_schemas
from leadstream.topics import CATALOG, TopicSettings, apply

ROOT = Path(__file__).resolve().parents[1]
BASELINE_TOPIC = "bench.baseline"
CONNECTIONS = 64
PACED_CONNECTIONS = 16
HIGH = "1000000000"

WRK_SCRIPT = """
local n = 0
local headers = {["Content-Type"] = "application/json"}
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
request = function()
  n = n + 1
  local body = '{"phone":"0740' .. string.format("%07d", n % 10000000) ..
               '","first_name":"Ada","landing_page":"bench"}'
  return wrk.format("POST", "/v1/registrations", headers, body)
end
if pause > 0 then
  delay = function() return pause end
end
"""


# ---------------------------------------------------------------- servers (child processes)


def _baseline_app() -> Any:
    """The bare ASGI endpoint (built in the server process)."""
    from leadstream_ingest.config import IngestSettings
    from leadstream_ingest.producer import Acks, EventProducer

    settings = IngestSettings()
    serde = Serde(settings)
    producer = EventProducer(settings, serde)
    counter = itertools.count()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await asyncio.to_thread(producer.close)
                    serde.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        acks = Acks(asyncio.get_running_loop())
        producer.produce(BASELINE_TOPIC, body, str(next(counter)), None, acks, deadline_s=0)
        await acks.wait(producer.ack_timeout_s)
        answer = json.dumps({"request_id": uuid.uuid4().hex, "status": "accepted"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 202,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    return app


def _registrations_app() -> Any:
    from leadstream_ingest.app import create_app
    from leadstream_ingest.config import IngestSettings

    return create_app(IngestSettings())


def serve(kind: str, port: int) -> None:
    import uvicorn

    app = _baseline_app() if kind == "baseline" else _registrations_app()  # fastapi: env
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        lifespan="on",
    )


# ---------------------------------------------------------------- the run


@dataclass
class WrkResult:
    requests_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    requests: int = 0
    server_cpu_us: float = 0.0  # CPU time of the server process per request (all threads)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, seconds: int, connections: int, script: Path, delay_ms: float = 0) -> WrkResult:
    env = {**os.environ, "BENCH_DELAY_MS": f"{delay_ms:.3f}"}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        rate,
        p50,
        p99,
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(int(g) for g in errors.groups()) if errors else 0,
        count,
    )


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(server: Server, seconds: int, script: Path) -> WrkResult:
    """A peak run, with the server's CPU per request (robust to other load on the box)."""
    before = cpu_s(server.proc.pid)
    result = wrk(server.url, seconds, CONNECTIONS, script)
    result.server_cpu_us = (cpu_s(server.proc.pid) - before) / max(result.requests, 1) * 1e6
    return result


class Server:
    def __init__(self, kind: str, env: dict[str, str]) -> None:
        self.kind = kind
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.ingest_registrations", "--serve", kind, str(self.port)],
            cwd=ROOT,
            env=env,
        )
        self.url = f"http://127.0.0.1:{self.port}/v1/registrations"
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.post(self.url, json={"phone": "07400 000001"}, timeout=10)
                if r.status_code == 202:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not start")
            time.sleep(0.2)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def paced(server: Server, script: Path, rate: float, seconds: int) -> WrkResult:
    """wrk at about ``rate`` requests/s: per-connection delay tuned from a short probe."""
    delay = PACED_CONNECTIONS * 1000 / rate
    for _ in range(3):
        probe = wrk(server.url, 4, PACED_CONNECTIONS, script, delay)
        if abs(probe.requests_s - rate) / rate < 0.03:
            break
        if probe.requests_s <= 0:
            break  # the box is swamped: measure with the delay we have
        cycle = PACED_CONNECTIONS * 1000 / probe.requests_s  # delay + service time
        delay = max(0.0, delay + PACED_CONNECTIONS * 1000 / rate - cycle)
    return wrk(server.url, seconds, PACED_CONNECTIONS, script, delay)


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        sys.exit("wrk is missing: apt-get install -y wrk")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=2000.0, help="paced rate for latency")
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument(
        "--compare-fastapi",
        action="store_true",
        help="also measure the app with LEADSTREAM_REGISTRATION_FAST_PATH=false (the route "
        "through FastAPI and its middleware), in the same run",
    )
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    ensure_wrk()
    settings = bench_settings()
    assert apply(TopicSettings.of(settings)).ok
    assert all(r.ok for r in register_schemas(settings))
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for f in admin.create_topics([NewTopic(settings.topic(BASELINE_TOPIC), 6, 1)]).values():
        f.result(timeout=30)
    env = {
        **os.environ,
        "LEADSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LEADSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LEADSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "LEADSTREAM_LOG_LEVEL": "WARNING",
        "LEADSTREAM_REGISTRATION_RATE_LIMIT": HIGH,
        "LEADSTREAM_REGISTRATION_RATE_PERIOD_S": "1",
        "LEADSTREAM_REGISTRATION_RATE_BURST": HIGH,
        "LEADSTREAM_REGISTRATION_PENDING_TTL_S": "600",
    }
    kinds = ("baseline", "registrations", *(("fastapi",) if args.compare_fastapi else ()))
    results: dict[str, list[tuple[WrkResult, WrkResult]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT)
        try:
            for _ in range(args.rounds):
                for kind in kinds:
                    server = Server(
                        kind,
                        {**env, "LEADSTREAM_REGISTRATION_FAST_PATH": "false"}
                        if kind == "fastapi"
                        else env,
                    )
                    try:
                        wrk(server.url, 3, CONNECTIONS, script)  # warm-up
                        peak = measured(server, args.duration, script)
                        at_rate = paced(server, script, args.rate, args.duration)
                    finally:
                        server.close()
                    results[kind].append((peak, at_rate))
                    print(kind, peak, at_rate, flush=True)
        finally:
            names = [s.name for s in CATALOG] + [BASELINE_TOPIC]
            delete_topics(admin, [settings.topic(t) for t in names])
    body = report(results, args)
    print(body)
    if not args.no_append:
        append_results("Ingest registrations endpoint (wrk)", body)


def report(results: dict[str, list[tuple[WrkResult, WrkResult]]], args: Any) -> str:
    def med(kind: str, pick: Any) -> float:
        return statistics.median(pick(r) for r in results[kind])

    lines = [
        f"`POST /v1/registrations` (real app) vs a bare ASGI endpoint that only produces the "
        f"request body to Kafka and waits for the ack; one uvicorn worker each, wrk 1 thread, "
        f"all on loopback with Kafka, the registry and Redis on the same 2 cores. Rate limit "
        f"configured high (10⁹/s, burst 10⁹): evaluated on every request, never refusing. "
        f"{args.rounds} rounds of {args.duration} s (median). Command: "
        f"`uv run python -m bench.ingest_registrations --duration {args.duration} "
        f"--rounds {args.rounds} --rate {args.rate:g}`.",
        "",
        f"| server | peak req/s (c={CONNECTIONS}) | rounds | p99 at peak | server CPU per "
        f"request | paced req/s (c={PACED_CONNECTIONS}) | p50 / p99 paced | non-2xx, socket "
        f"errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in results:
        runs = results[kind]
        lines.append(
            f"| {kind} | {med(kind, lambda r: r[0].requests_s):,.0f} | "
            f"{', '.join(f'{r[0].requests_s:,.0f}' for r in runs)} | "
            f"{med(kind, lambda r: r[0].p99_ms):.1f} ms | "
            f"{med(kind, lambda r: r[0].server_cpu_us):,.0f} µs | "
            f"{med(kind, lambda r: r[1].requests_s):,.0f} | "
            f"{med(kind, lambda r: r[1].p50_ms):.1f} / {med(kind, lambda r: r[1].p99_ms):.1f} ms | "
            f"{sum(r[0].non_2xx + r[1].non_2xx for r in runs)}, "
            f"{sum(r[0].errors + r[1].errors for r in runs)} |"
        )
    peak_app = med("registrations", lambda r: r[0].requests_s)
    peak_base = med("baseline", lambda r: r[0].requests_s)
    p99 = med("registrations", lambda r: r[1].p99_ms)
    rate = med("registrations", lambda r: r[1].requests_s)
    load = os.getloadavg()[0]
    lines += [
        "",
        f"Machine load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores.",
        "",
        f"- registrations / baseline = **{peak_app / peak_base:.2f}×** (target ≥ 0.7×)",
        f"- registrations peak = **{peak_app:,.0f} req/s** (target ≥ 5,000)",
        f"- registrations p99 at {rate:,.0f} req/s = **{p99:.1f} ms** (target ≤ 25 ms at 2,000)",
    ]
    if "fastapi" in results:
        slow = med("fastapi", lambda r: r[0].requests_s)
        slow_cpu = med("fastapi", lambda r: r[0].server_cpu_us)
        cpu = med("registrations", lambda r: r[0].server_cpu_us)
        lines.append(
            f"- the same app through FastAPI (`fastapi` row, fast path off): {slow:,.0f} req/s, "
            f"{slow_cpu:,.0f} µs per request; the fast path serves {peak_app / slow:.1f}× the "
            f"requests at {slow_cpu / cpu:.1f}× less CPU each"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
