"""The shared Email Bison rate: two bison-sync instances uploading at once stay under the
configured rate, as measured by the fake; and the measurement can tell — two instances
with buckets of their own go over it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from leadstream.bison import BisonClient, RedisTokenBucket
from leadstream.runtime import RuntimeConfig, StageRunner
from leadstream.settings import Settings
from tests.support.fake_bison.harness import batch_contact, batch_ready
from tests.support.fake_bison.sync_env import SyncEnv, sync_env

pytestmark = pytest.mark.integration
PER_MINUTE = 240.0  # 4 requests/s: a run of ~50 requests takes ~13 s
RATE = PER_MINUTE / 60


@pytest.fixture
def env(settings: Settings) -> Iterator[SyncEnv]:
    with sync_env(settings) as e:
        # The fake refuses only clearly more than the limit (its own 10 s window, 25% over),
        # so that what we measure is the clients' pacing, not the fake's 429s.
        e.fake.set_rate(PER_MINUTE * 1.25, window_s=10)
        yield e


def assert_under(env: SyncEnv, n_min: int) -> tuple[int, float]:
    n, span = env.fake.rate()
    print(f"the fake saw {n} requests in {span:.2f}s: {(n - 1) / span:.3f}/s (limit {RATE}/s)")
    assert n >= n_min
    # A bucket of burst 1 lets at most 1 + rate × t requests through in t seconds; one more
    # request of slack for the time between the bucket's decision and the fake's clock.
    assert n - 2 <= RATE * span, f"{n} requests in {span:.2f}s is over {RATE}/s"
    assert env.fake.max_in_window(10.0) <= 1 + RATE * 10 + 1
    assert [s for s in env.fake.requests() if s.status == 429] == []
    return n, span


def test_two_instances_stay_under_the_rate(env: SyncEnv) -> None:
    target = env.fake.add_campaign(env.workspace, "Target")
    settings = env.configured(
        bison_requests_per_minute=PER_MINUTE,
        bison_burst=1,
        bison_upsert_chunk=5,
        bison_attach_chunk=5,
    )
    run = uuid.uuid4().hex[:6]
    batches = [
        batch_ready(str(target), [batch_contact(f"r{b}x{i}.{run}@acme.example") for i in range(5)])
        for b in range(24)
    ]
    services = [env.service(settings), env.service(settings)]
    config = [
        RuntimeConfig(
            instance_id=f"rl-{i}", batch_size=5, poll_timeout_s=0.2, session_timeout_ms=6000
        )
        for i in range(2)
    ]
    runners = [
        StageRunner(s.stage, settings, env.serde, c) for s, c in zip(services, config, strict=True)
    ]
    threads = [threading.Thread(target=r.run, kwargs={"idle_timeout_s": 60}) for r in runners]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while not all(r.assigned for r in runners) or sum(len(r.assigned) for r in runners) < 6:
            assert time.monotonic() < deadline, "the two instances never shared the partitions"
            time.sleep(0.1)
        env.publish_ready(*batches)
        synced = env.synced(expect=24, timeout=120)
    finally:
        for r in runners:
            r.stop()
        for t in threads:
            t.join(60)
    assert len(synced) == 24
    assert {r["status"] for m in synced for r in m.value["results"]} == {"attached"}
    clients = [s.client for s in services]
    assert all(c is not None and c.requests_sent > 0 for c in clients)  # both did uploads
    assert_under(env, n_min=48)


def test_buckets_of_their_own_would_go_over_it(env: SyncEnv) -> None:
    def burst(keys: list[str]) -> None:
        redis = Redis.from_url(env.settings.redis_url)
        clients = [
            BisonClient(
                env.server.url,
                env.key,
                limiter=RedisTokenBucket(redis, key, rate_per_s=RATE, burst=1),
            )
            for key in keys
        ]
        threads = [
            threading.Thread(target=lambda c=c: [c.check() for _ in range(12)]) for c in clients
        ]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        finally:
            for c in clients:
                c.close()
            redis.delete(*keys)
            redis.close()

    tag = uuid.uuid4().hex
    burst([f"leadstream:test:{tag}:shared"] * 2)
    n, span = assert_under(env, n_min=24)
    env.fake.seen.clear()
    burst([f"leadstream:test:{tag}:a", f"leadstream:test:{tag}:b"])
    n, span = env.fake.rate()
    assert n == 24
    print(f"separate buckets: {n} requests in {span:.2f}s: {(n - 1) / span:.3f}/s")
    assert (n - 2) / span > RATE * 1.5  # about twice the rate: the measurement sees it
