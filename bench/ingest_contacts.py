"""``POST /v1/contacts`` under wrk — one contact per request and batches of 100 — against the
same bare ASGI endpoint as the registrations benchmark, in the same run, on loopback.

    uv run python -m bench.ingest_contacts [--duration 15] [--rounds 1] [--batch 100]

Needs ``wrk`` and the local stack (Kafka, registry, PostgreSQL for the API key, Redis). The
real ingest app (``create_app``: request context and log, body limit, security headers, API-key
look-up, pydantic validation, Avro, one event per contact, broker ack for every event before
the 202) runs in one uvicorn process; the key is created for the run and revoked after it.

- **baseline**: the bare endpoint of ``bench.ingest_registrations`` (read the body, produce it
  as one raw record, wait for the ack, 202). For the batch run it still produces *one* record
  per request, so "contacts/s" of the batch row is the real app's alone; the request rates
  are what compare.
- **contacts ×1** and **contacts ×N**: every request carries distinct addresses (a wrk Lua
  counter), so nothing is de-duplicated away before Kafka.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import append_results, bench_settings, delete_topics
from bench.ingest_registrations import (
    BASELINE_TOPIC,
    CONNECTIONS,
    ROOT,
    WrkResult,
    _free_port,
    cpu_s,
    ensure_wrk,
    wrk,
)
from leadstream.db import make_engine
from leadstream.db.api_keys import ApiKeyStore
from leadstream.db.migrate import upgrade
from leadstream.events import register_schemas
from leadstream.topics import CATALOG, TopicSettings, apply

WRK_SCRIPT = """
local n = 0
local batch = tonumber(os.getenv("BENCH_BATCH") or "1")
local headers = {["Content-Type"] = "application/json",
                 ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")}
request = function()
  local parts = {}
  for i = 1, batch do
    n = n + 1
    parts[i] = '{"email":"person' .. n .. '@company' .. (n % 997) ..
               '.example","first_name":"Ada","last_name":"Lovelace","company":"Analytical",' ..
               '"phone":"+44 7911 ' .. string.format("%06d", n % 1000000) .. '","tags":["bench"]}'
  end
  local body = parts[1]
  if batch > 1 then body = '{"contacts":[' .. table.concat(parts, ",") .. ']}' end
  return wrk.format("POST", os.getenv("BENCH_PATH"), headers, body)
end
"""


class Server:
    """One uvicorn process serving ``kind`` (baseline or app) on a free port."""

    def __init__(self, kind: str, env: dict[str, str], token: str) -> None:
        self.port = _free_port()
        serve = "baseline" if kind == "baseline" else "registrations"  # the real app
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.ingest_registrations", "--serve", serve, str(self.port)],
            cwd=ROOT,
            env=env,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.path = "/v1/registrations" if kind == "baseline" else "/v1/contacts"
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.post(
                    self.base + self.path,
                    json={"email": "warm@up.example", "phone": "07400 000001"},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )
                if r.status_code == 202:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not start")
            time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run(server: Server, script: Path, seconds: int, batch: int, token: str) -> WrkResult:
    os.environ.update(BENCH_BATCH=str(batch), BENCH_TOKEN=token, BENCH_PATH=server.path)
    wrk(server.base + server.path, 3, CONNECTIONS, script)  # warm-up
    before = cpu_s(server.proc.pid)
    result = wrk(server.base + server.path, seconds, CONNECTIONS, script)
    result.server_cpu_us = (cpu_s(server.proc.pid) - before) / max(result.requests, 1) * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100, help="contacts per batch request")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    ensure_wrk()
    settings = bench_settings()
    upgrade(settings)
    assert apply(TopicSettings.of(settings)).ok
    assert all(r.ok for r in register_schemas(settings))
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for f in admin.create_topics([NewTopic(settings.topic(BASELINE_TOPIC), 6, 1)]).values():
        f.result(timeout=30)
    engine = make_engine(settings, pool_size=1)
    keys = ApiKeyStore(engine)
    key = keys.create("bench", ["ingest"])
    env = {
        **os.environ,
        "LEADSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LEADSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LEADSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "LEADSTREAM_LOG_LEVEL": "WARNING",
    }
    rows: dict[str, list[WrkResult]] = {"baseline": [], "contacts ×1": [], "contacts ×N": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "contacts.lua"
            script.write_text(WRK_SCRIPT)
            for _ in range(args.rounds):
                for name, kind, batch in (
                    ("baseline", "baseline", 1),
                    ("contacts ×1", "app", 1),
                    ("contacts ×N", "app", args.batch),
                ):
                    server = Server(kind, env, key.token)
                    try:
                        result = run(server, script, args.duration, batch, key.token)
                    finally:
                        server.close()
                    rows[name].append(result)
                    print(name, result, flush=True)
    finally:
        keys.revoke(key.key.key_id)
        engine.dispose()
        names = [s.name for s in CATALOG] + [BASELINE_TOPIC]
        delete_topics(admin, [settings.topic(t) for t in names])
    body = report(rows, args)
    print(body)
    if not args.no_append:
        append_results("Ingest contacts endpoint (wrk)", body)


def report(rows: dict[str, list[WrkResult]], args: Any) -> str:
    def med(name: str, pick: Any) -> float:
        return statistics.median(pick(r) for r in rows[name])

    per_request = {"baseline": 1, "contacts ×1": 1, "contacts ×N": args.batch}
    lines = [
        f"`POST /v1/contacts` (real app: API key, validation, one Avro event per contact, the "
        f"broker's ack for each before the 202) vs the bare produce-and-ack ASGI endpoint; one "
        f"uvicorn worker each, wrk 1 thread, {CONNECTIONS} connections, everything on the same "
        f"2 cores. {args.rounds} round(s) of {args.duration} s (median). Command: "
        f"`uv run python -m bench.ingest_contacts --duration {args.duration} "
        f"--rounds {args.rounds} --batch {args.batch}`.",
        "",
        "| server | contacts per request | req/s | contacts/s | p50 / p99 | server CPU per "
        "request | non-2xx, socket errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        rps = med(name, lambda r: r.requests_s)
        lines.append(
            f"| {name} | {per_request[name]} | {rps:,.0f} | {rps * per_request[name]:,.0f} | "
            f"{med(name, lambda r: r.p50_ms):.1f} / {med(name, lambda r: r.p99_ms):.1f} ms | "
            f"{med(name, lambda r: r.server_cpu_us):,.0f} µs | "
            f"{sum(r.non_2xx for r in runs)}, {sum(r.errors for r in runs)} |"
        )
    base = med("baseline", lambda r: r.requests_s)
    one = med("contacts ×1", lambda r: r.requests_s)
    many = med("contacts ×N", lambda r: r.requests_s) * args.batch
    lines += [
        "",
        f"Machine load average (1 min) at the end: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores.",
        "",
        f"- contacts ×1 / baseline = **{one / base:.2f}×** requests/s",
        f"- batches of {args.batch}: **{many:,.0f} contacts/s** through the API",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
