"""Registration load for the fault suite: a steady trickle while faults are injected, and a
burst. Client addresses are set with ``X-Forwarded-For`` (ingest trusts the loopback peer in
this world), so each client has its own rate limit."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

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


async def _burst(
    api: str, total: int, concurrency: int, abuser: str, abuse_every: int, duplicate_every: int
) -> Burst:
    out = Burst()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            ip = abuser if i % abuse_every == 0 else client_ip(i)
            number = i - 1 if i % duplicate_every == 1 and i > 1 else i  # some repeat a phone
            began = time.perf_counter()
            try:
                resp = await client.post(
                    "/v1/registrations",
                    json={"phone": phone("07400", number), "first_name": "Burst"},
                    headers={"X-Forwarded-For": ip},
                )
            except httpx.HTTPError as exc:
                out.answers.append(Answer(ip, -1, time.perf_counter() - began, repr(exc)))
                continue
            rid = resp.json().get("request_id") if resp.status_code == 202 else None
            out.answers.append(Answer(ip, resp.status_code, time.perf_counter() - began, rid))

    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=api, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
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
