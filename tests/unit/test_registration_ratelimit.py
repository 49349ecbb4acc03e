"""The rate-limit decision (GCRA) by tables, client buckets, and trusted proxies (CIDRs).

``SEQUENCES`` are also run against the Lua script in real Redis
(tests/integration/test_registrations.py), so Python and Lua must agree.
"""

from __future__ import annotations

import pytest

from leadstream.errors import ConfigError
from leadstream_ingest.client_ip import client_ip
from leadstream_ingest.ratelimit import (
    Decision,
    LocalBuckets,
    RatePolicy,
    TrustedProxies,
    client_bucket,
    gcra,
)

TEN_A_MINUTE_BURST_5 = RatePolicy(limit=10, period_s=60, burst=5)  # one per 6 s, 5 at once
ONE_A_SECOND = RatePolicy(limit=1, period_s=1, burst=1)
BURST_3_PER_10S = RatePolicy(limit=3, period_s=10, burst=3)

# (policy, [(at ms, allowed, remaining, retry after s)]) — one client, in time order
SEQUENCES: list[tuple[RatePolicy, list[tuple[float, bool, int, float]]]] = [
    (
        TEN_A_MINUTE_BURST_5,
        [
            (0, True, 4, 0),
            (0, True, 3, 0),
            (0, True, 2, 0),
            (0, True, 1, 0),
            (0, True, 0, 0),
            (0, False, 0, 6.0),  # the burst is spent: the next slot is one interval away
            (1000, False, 0, 5.0),
            (6000, True, 0, 0),  # one interval later, exactly one more
            (6000, False, 0, 6.0),
            (30_000, True, 3, 0),  # 24 s later: four slots back
            (30_000, True, 2, 0),
            (600_000, True, 4, 0),  # fully idle: the whole burst again
        ],
    ),
    (
        ONE_A_SECOND,
        [
            (0, True, 0, 0),
            (500, False, 0, 0.5),
            (999, False, 0, 0.001),
            (1000, True, 0, 0),
            (1500, False, 0, 0.5),
            (5000, True, 0, 0),
        ],
    ),
    (
        BURST_3_PER_10S,
        [
            (0, True, 2, 0),
            (100, True, 1, 0),
            (200, True, 0, 0),
            (300, False, 0, 3.033),  # slots every 3.333 s: the first frees at 3.333 s
            (3334, True, 0, 0),
            (3400, False, 0, 3.266),
        ],
    ),
]


@pytest.mark.parametrize(("policy", "steps"), SEQUENCES)
def test_gcra_sequences(policy: RatePolicy, steps: list[tuple[float, bool, int, float]]) -> None:
    tat: float | None = None
    for at, allowed, remaining, retry_after in steps:
        decision, new_tat = gcra(tat, at, policy)
        assert (decision.allowed, decision.remaining) == (allowed, remaining), at
        assert decision.retry_after_s == pytest.approx(retry_after, abs=0.001), at
        if allowed:
            assert new_tat is not None
            tat = new_tat
        else:
            assert new_tat is None  # a refused request costs nothing


def test_refused_requests_do_not_push_the_next_slot_back() -> None:
    tat: float | None = None
    for _ in range(5):
        _, tat = gcra(tat, 0, TEN_A_MINUTE_BURST_5)
    for at in range(0, 6000, 100):  # hammering while refused
        decision, _ = gcra(tat, at, TEN_A_MINUTE_BURST_5)
        assert not decision.allowed
    decision, _ = gcra(tat, 6000, TEN_A_MINUTE_BURST_5)
    assert decision.allowed


@pytest.mark.parametrize(
    ("retry_after_s", "header"), [(0.001, 1), (0.5, 1), (1.0, 1), (5.2, 6), (6.0, 6), (59.01, 60)]
)
def test_retry_after_header_rounds_up_to_whole_seconds(retry_after_s: float, header: int) -> None:
    assert Decision(False, retry_after_s).retry_after_header == header


@pytest.mark.parametrize(("limit", "period", "burst"), [(0, 60, 1), (1, 0, 1), (1, 60, 0)])
def test_nonsense_policies_are_refused(limit: int, period: float, burst: int) -> None:
    with pytest.raises(ConfigError):
        RatePolicy(limit, period, burst)


@pytest.mark.parametrize(
    ("ip", "prefix", "bucket"),
    [
        ("203.0.113.7", 64, "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", 64, "2001:db8:1:2::/64"),  # same /64: same allowance
        ("2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"),
        ("2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6/128"),
        ("::ffff:203.0.113.7", 64, "203.0.113.7"),  # IPv4-mapped is the IPv4 client
        (None, 64, "unknown"),
        ("", 64, "unknown"),
        ("not-an-ip", 64, "raw:not-an-ip"),
    ],
)
def test_client_buckets(ip: str | None, prefix: int, bucket: str) -> None:
    assert client_bucket(ip, prefix) == bucket


PROXIES = TrustedProxies(["10.0.0.0/8", "192.0.2.1", "fd00::/8"])


@pytest.mark.parametrize(
    ("address", "trusted"),
    [
        ("10.1.2.3", True),
        ("10.255.255.255", True),
        ("11.0.0.1", False),
        ("192.0.2.1", True),
        ("192.0.2.2", False),
        ("::ffff:10.0.0.1", True),
        ("fd12::1", True),
        ("2001:db8::1", False),
        ("garbage", False),
        ("", False),
    ],
)
def test_trusted_proxies_are_networks(address: str, trusted: bool) -> None:
    assert (address in PROXIES) is trusted


def test_trusted_proxies_refuse_bad_entries() -> None:
    with pytest.raises(ConfigError, match="trusted_proxies"):
        TrustedProxies(["10.0.0.0/8", "proxy.example"])


def test_no_trusted_proxies_trusts_nobody() -> None:
    assert "127.0.0.1" not in TrustedProxies([])


def _scope(peer: str, xff: str | None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", xff.encode())] if xff is not None else []
    return {"type": "http", "client": (peer, 50000), "headers": headers}


@pytest.mark.parametrize(
    ("peer", "xff", "client"),
    [
        ("10.0.0.5", "198.51.100.9", "198.51.100.9"),  # from a trusted proxy (by CIDR)
        ("10.0.0.5", "6.6.6.6, 198.51.100.9", "198.51.100.9"),  # left part forgeable
        ("10.0.0.5", "198.51.100.9, 10.9.9.9", "198.51.100.9"),  # proxy chain skipped
        ("10.0.0.5", None, "10.0.0.5"),
        ("203.0.113.50", "198.51.100.9", "203.0.113.50"),  # untrusted peer: XFF ignored
        ("192.0.2.2", "198.51.100.9", "192.0.2.2"),
    ],
)
def test_client_ip_honours_xff_only_from_trusted_proxies(
    peer: str, xff: str | None, client: str
) -> None:
    assert client_ip(_scope(peer, xff), PROXIES) == client


@pytest.mark.parametrize(("policy", "steps"), SEQUENCES)
def test_the_in_memory_fallback_follows_the_same_tables(
    policy: RatePolicy, steps: list[tuple[float, bool, int, float]]
) -> None:
    local = LocalBuckets(policy)
    for at, allowed, remaining, retry_after in steps:
        decision = local.decide("203.0.113.7", at)
        assert (decision.allowed, decision.remaining) == (allowed, remaining), at
        assert decision.retry_after_s == pytest.approx(retry_after, abs=0.001)
        assert decision.degraded
    assert local.decide("203.0.113.8", 0).allowed  # other clients have their own


def test_the_in_memory_fallback_is_bounded() -> None:
    local = LocalBuckets(ONE_A_SECOND, max_entries=3)
    for i in range(3):
        local.decide(f"c{i}", 0)
    assert len(local) == 3
    local.decide("c3", 5000)  # the others are idle by then: forgotten
    assert len(local) == 1
    for i in range(4, 7):
        local.decide(f"c{i}", 5000)  # none idle: everyone is forgotten, never all blocked
    assert len(local) <= 3
    assert local.decide("c9", 5000).allowed
