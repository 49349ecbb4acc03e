"""MX look-ups against a DNS server on loopback, cached in process and in the real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from leadstream.devtools.dns_server import (
    EMPTY,
    NXDOMAIN,
    SERVFAIL,
    SILENT,
    AOnly,
    DnsServer,
    Flaky,
    Mx,
)
from leadstream.runtime import RetryLater
from leadstream.settings import Settings
from leadstream_verify.bridge import AsyncBridge
from leadstream_verify.cache import LocalCache, RedisCache
from leadstream_verify.lookup import CachedMailLookup
from leadstream_verify.mail import MailStatus
from leadstream_verify.resolver import DnsMailResolver
from tests.support.clock import Clock

pytestmark = pytest.mark.integration


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    zones = {
        "acme.example": Mx("mx1.acme.example", "mx2.acme.example", ttl=3600),
        "short.example": Mx("mx.short.example", ttl=5),
        "aonly.example": AOnly(),
        "gone.example": NXDOMAIN,
        "broken.example": SERVFAIL,
        "quiet.example": SILENT,
        "empty.example": EMPTY,
        "nullmx.example": Mx("."),
        "flaky.example": Flaky(SERVFAIL, 1, Mx("mx.flaky.example")),
    }
    with DnsServer(zones) as server:
        yield server


@pytest.fixture
def bridge() -> Iterator[AsyncBridge]:
    b = AsyncBridge()
    yield b
    b.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(settings.redis_url)
    yield c
    c.close()


@pytest.fixture
def namespace(client: redis.Redis) -> Iterator[str]:
    ns = f"test:{uuid.uuid4().hex[:8]}:mx:"
    yield ns
    keys = list(client.scan_iter(f"{ns}*"))
    if keys:
        client.delete(*keys)


def lookup(
    dns: DnsServer,
    bridge: AsyncBridge,
    shared: RedisCache | None,
    clock: Clock | None = None,
    timeout_s: float = 1.0,
    **kw: int,
) -> CachedMailLookup:
    resolver = DnsMailResolver([dns.address], timeout_s=timeout_s, attempts=3, backoff_s=0.05)
    local = LocalCache(1000, clock=clock) if clock else LocalCache(1000)
    return CachedMailLookup(resolver, bridge, local, shared, **kw)


def test_every_behaviour(dns: DnsServer, bridge: AsyncBridge) -> None:
    got = lookup(dns, bridge, None, outage_min=100).lookup_many([*dns.zones, "nope.example"])
    assert {d: m.status for d, m in got.items()} == {
        "acme.example": MailStatus.MX,
        "short.example": MailStatus.MX,
        "aonly.example": MailStatus.A,
        "gone.example": MailStatus.NXDOMAIN,
        "broken.example": MailStatus.SERVFAIL,
        "quiet.example": MailStatus.TIMEOUT,
        "empty.example": MailStatus.NO_MAIL,
        "nullmx.example": MailStatus.NULL_MX,
        "flaky.example": MailStatus.MX,
        "nope.example": MailStatus.NXDOMAIN,
    }
    assert got["acme.example"].mx_host == "mx1.acme.example"
    assert got["aonly.example"].mx_host == "aonly.example"
    assert dns.count("broken.example") == 3  # retried with backoff, then given up
    assert dns.count("quiet.example") == 3
    assert dns.count("flaky.example") == 2  # SERVFAIL once, then the answer
    assert dns.count("acme.example", "A") == 0  # no A look-up when MX exists
    assert dns.count("aonly.example", "A") == 1


def test_cached_in_process_and_in_redis(
    dns: DnsServer, bridge: AsyncBridge, client: redis.Redis, namespace: str
) -> None:
    domains = ["acme.example", "gone.example", "empty.example", "quiet.example"]
    first = lookup(dns, bridge, RedisCache(client, namespace), outage_min=100)
    first.lookup_many(domains)
    asked = sum(dns.queries.values())
    first.lookup_many(domains)
    assert sum(dns.queries.values()) == asked, "the in-process cache answers a second time"
    # another instance: empty local cache, same Redis
    second = lookup(dns, bridge, RedisCache(client, namespace), outage_min=100)
    got = second.lookup_many(domains)
    assert got["acme.example"].mx_host == "mx1.acme.example"
    assert got["gone.example"].status is MailStatus.NXDOMAIN  # negative answers are shared
    assert dns.count("acme.example") == 1
    assert dns.count("gone.example") == 1
    assert dns.count("empty.example", "MX") == 1
    assert dns.count("quiet.example") == 6, "a timeout is not shared (only cached locally)"
    assert client.get(f"{namespace}quiet.example") is None
    assert 3500 <= int(client.ttl(f"{namespace}acme.example")) <= 3600
    assert 800 <= int(client.ttl(f"{namespace}gone.example")) <= 900


def test_ttls(dns: DnsServer, bridge: AsyncBridge) -> None:
    clock = Clock()
    mx = lookup(dns, bridge, None, clock, min_ttl_s=60, max_ttl_s=600, unknown_ttl_s=10)
    assert mx.lookup_many(["short.example", "acme.example"])["short.example"].ttl_s == 60
    clock.now += 59
    mx.lookup_many(["short.example", "acme.example"])
    assert (dns.count("short.example"), dns.count("acme.example")) == (1, 1)
    clock.now += 2  # past the 60 s floor of short.example (DNS said 5 s)
    mx.lookup_many(["short.example", "acme.example"])
    assert (dns.count("short.example"), dns.count("acme.example")) == (2, 1)
    clock.now += 600  # past the 600 s cap of acme.example (DNS said 3600 s)
    mx.lookup_many(["acme.example"])
    assert dns.count("acme.example") == 2


def test_resolver_outage_retries_the_batch(dns: DnsServer, bridge: AsyncBridge) -> None:
    for i in range(6):
        dns.set(f"down{i}.example", SILENT)
    mx = lookup(dns, bridge, None, outage_min=5)
    started = time.monotonic()
    with pytest.raises(RetryLater):
        mx.lookup_many([f"down{i}.example" for i in range(6)])
    assert time.monotonic() - started < 8, "look-ups run concurrently (18 s one by one)"
    assert len(mx.local) == 0, "an outage is not cached"
    # fewer than outage_min failures are an answer (unknown), not an outage
    assert mx.lookup_many(["down0.example", "acme.example"])["down0.example"].status.transient


def test_redis_down_falls_back_to_dns(dns: DnsServer, bridge: AsyncBridge) -> None:
    dead = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    try:
        shared = RedisCache(dead, "x:")
        got = lookup(dns, bridge, shared).lookup_many(["acme.example"])
        assert got["acme.example"].status is MailStatus.MX
        assert not shared.available  # skipped for a while instead of timing out every batch
    finally:
        dead.close()


def test_one_query_per_distinct_domain_concurrently(dns: DnsServer, bridge: AsyncBridge) -> None:
    domains = [f"d{i}.example" for i in range(400)]
    for d in domains:
        dns.set(d, Mx(f"mx.{d}"))
    mx = lookup(dns, bridge, None, timeout_s=3.0, concurrency=100)  # no retries on a busy box
    started = time.monotonic()
    got = mx.lookup_many(domains * 3)  # repeats in a batch cost nothing
    elapsed = time.monotonic() - started
    assert all(got[d].mx_host == f"mx.{d}" for d in domains)
    assert sum(dns.count(d) for d in domains) == 400
    assert mx.resolved == 400
    assert elapsed < 10
