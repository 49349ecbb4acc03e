"""Registration load for the fault suite: a steady trickle while faults are injected, and a
burst. Client addresses are set with ``X-Forwarded-For`` (ingest trusts the loopback peer in
this world), so each client has its own rate limit."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx


def phone(prefix: str, n: int) -> str:
    """A valid GB mobile number: ``07400`` + six digits, etc."""
    return f"{prefix}{n % 1_000_000:06d}"


def client_ip(n: int) -> str:
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@dataclass
class Answer:
    ip: str
    status: int
    latency_s: float
    request_id: str | None


class Trickle:
    """Posts registrations at ``per_s`` from a thread, each from a new client address, until
    stopped; keeps the request id of every 202 and counts every other answer."""

    def __init__(self, api: str, per_s: float, prefix: str = "07500", first_ip: int = 1 << 20):
        self.api, self.per_s, self.prefix, self.first_ip = api, per_s, prefix, first_ip
        self.accepted: list[str] = []
        self.other: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trickle", daemon=True)

    def start(self) -> Trickle:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)
        assert not self._thread.is_alive(), "the registration trickle did not stop"

    def _run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.api, timeout=90) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    resp = client.post(
                        "/v1/registrations",
                        json={"phone": phone(self.prefix, n), "first_name": "Trickle"},
                        headers={"X-Forwarded-For": client_ip(self.first_ip + n)},
                    )
                except httpx.HTTPError as exc:
                    self.other[type(exc).__name__] += 1
                else:
                    if resp.status_code == 202:
                        self.accepted.append(resp.json()["request_id"])
                    else:
                        self.other[str(resp.status_code)] += 1
                n += 1
                self._stop.wait(max(0.0, 1 / self.per_s - (time.monotonic() - began)))


@dataclass
class Burst:
    answers: list[Answer] = field(default_factory=list)
    elapsed_s: float = 0.0


class _Connection:
    """One keep-alive HTTP/1.1 connection speaking just what the burst needs: a POST with a
    JSON body, a response with a ``Content-Length``. httpx costs the client ~0.5 ms of CPU per
    request, which on a 2-core machine shared with the server made the client the burst's
    bottleneck; this costs a small fraction of that."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode(
                "latin-1"
            )
            + body
        )
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            data = await self.reader.readexactly(int(fields.get("content-length", "0")))
        except BaseException:
            self.close()
            raise
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _burst(
    api: str, total: int, concurrency: int, abuser: str, abuse_every: int, duplicate_every: int
) -> Burst:
    out = Burst()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    url = urlsplit(api)
    host, port = url.hostname or "127.0.0.1", url.port or 80

    async def worker() -> None:
        conn = _Connection(host, port)
        try:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                ip = abuser if i % abuse_every == 0 else client_ip(i)
                number = i - 1 if i % duplicate_every == 1 and i > 1 else i  # some repeat a phone
                body = json.dumps({"phone": phone("07400", number), "first_name": "Burst"})
                began = time.perf_counter()
                try:
                    async with asyncio.timeout(60):
                        status, data = await conn.post(
                            "/v1/registrations", body.encode(), {"X-Forwarded-For": ip}
                        )
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                    out.answers.append(Answer(ip, -1, time.perf_counter() - began, repr(exc)))
                    continue
                rid = json.loads(data).get("request_id") if status == 202 else None
                out.answers.append(Answer(ip, status, time.perf_counter() - began, rid))
        finally:
            conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    out.elapsed_s = time.perf_counter() - began
    return out


def burst(
    api: str,
    total: int,
    concurrency: int,
    abuser: str = "203.0.113.9",
    abuse_every: int = 25,
    duplicate_every: int = 40,
) -> Burst:
    """``total`` registrations as fast as ``concurrency`` connections go; every
    ``abuse_every``-th from one address (the abuser), the others each from its own."""
    return asyncio.run(_burst(api, total, concurrency, abuser, abuse_every, duplicate_every))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
