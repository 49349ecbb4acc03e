"""Landing-page registrations on the real servers: 202 = on the topic, phone rules → 422,
the per-IP rate limit in real Redis (X-Forwarded-For only from trusted proxies), Redis down
(fail open / closed), broker down, CORS and security headers, and polling
pending → registered | duplicate through the registration writer.

Every request here goes through 127.0.0.1, a trusted proxy of the module's app, with its own
random client address in X-Forwarded-For, so tests do not spend each other's allowance.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import phonenumbers
import pytest
import redis
import sqlalchemy as sa
import uvicorn

from leadstream.db import make_engine, upgrade
from leadstream.events import Serde
from leadstream.infra import Stack
from leadstream.runtime import RunResult, RuntimeConfig, StageRunner
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.ratelimit import SCRIPT, RateLimited, RateLimiter, RatePolicy, gcra
from leadstream_ingest.registration_writer import build_stage
from tests.integration.test_ingest_fixtures import Server, ingest_world
from tests.support.kafka import read_all
from tests.unit.test_registration_ratelimit import SEQUENCES

pytestmark = pytest.mark.integration
LANDING = "https://landing.example"
BURST = 3


def mobile() -> tuple[str, str]:
    """A random valid GB mobile: (as typed nationally, E.164)."""
    while True:
        national = f"07{random.randint(400_000_000, 999_999_999)}"
        number = phonenumbers.parse(national, "GB")
        if phonenumbers.is_valid_number_for_region(number, "GB"):  # not JE, GG, IM (also +44)
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return f"{national[:5]} {national[5:]}", e164


def client_address() -> str:
    return f"198.51.{random.randint(0, 255)}.{random.randint(1, 254)}"


class DirectServer(Server):
    """The ingest app on uvicorn like the service runs it: with uvicorn's own proxy-header
    handling off (its default trusts X-Forwarded-For from 127.0.0.1), so only the app's
    trusted-proxy rules decide who the client is."""

    def __init__(self, settings: IngestSettings) -> None:
        super().__init__(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)


@contextlib.contextmanager
def registration_world(stack: Stack, **overrides: Any) -> Iterator[IngestSettings]:
    """The ingest world (prefix, topics, schemas, fresh database) migrated to 0005 too."""
    with ingest_world(stack, **overrides) as settings:
        upgrade(settings, "0005")
        yield settings


@dataclass
class Reg:
    settings: IngestSettings
    server: DirectServer
    client: httpx.Client
    serde: Serde
    engine: sa.Engine

    def post(
        self, body: dict[str, Any], *, ip: str | None = None, **headers: str
    ) -> httpx.Response:
        forwarded = {"X-Forwarded-For": ip or client_address()}
        return self.client.post("/v1/registrations", json=body, headers={**forwarded, **headers})

    def poll(self, request_id: str) -> httpx.Response:
        return self.client.get(f"/v1/registrations/{request_id}")

    def events(self, expect: int | None = None) -> list[tuple[bytes, dict[str, Any]]]:
        topic = self.settings.topic("registrations")
        return [
            (m.key(), self.serde.deserialize(m.value(), m.topic()))
            for m in read_all(
                self.settings, topic, expect=expect, timeout=30 if expect else 4, settle=1.0
            )
        ]

    def write(self) -> RunResult:
        """Run the registration writer until the topic is drained."""
        runner = StageRunner(
            build_stage(self.engine),
            self.settings,
            self.serde,
            RuntimeConfig(instance_id="reg-test", batch_size=100, poll_timeout_s=0.2),
        )
        return runner.run(idle_timeout_s=3)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), params)]


@pytest.fixture(scope="module")
def reg(stack: Stack) -> Iterator[Reg]:
    with (
        registration_world(
            stack,
            trusted_proxies=("127.0.0.0/8",),
            cors_origins=(LANDING,),
            registration_rate_limit=BURST,
            registration_rate_period_s=60.0,
            registration_rate_burst=BURST,
        ) as settings,
        DirectServer(settings) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
        Serde(settings) as serde,
    ):
        engine = make_engine(settings, pool_size=2)
        try:
            yield Reg(settings, server, client, serde, engine)
        finally:
            engine.dispose()


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code, body
    assert body["reason"]
    assert body["request_id"] == r.headers["x-request-id"]
    return body


# ------------------------------------------------------------------ 202 = on the topic


def test_accepted_registration_is_on_the_topic_then_pending_then_registered(reg: Reg) -> None:
    typed, e164 = mobile()
    ip = client_address()
    body = {
        "phone": typed,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "landing_page": "spring-offer",
        "consent": {"granted": True, "method": "checkbox", "text": "Call me"},
        "source_details": {"utm_source": "news"},
        "custom_fields": {"age": 42},
    }
    r = reg.post(body, ip=ip, **{"User-Agent": "pytest-browser"})
    assert r.status_code == 202, r.text
    answer = r.json()
    rid = answer["request_id"]
    assert answer == {"request_id": rid, "status": "accepted"}
    assert r.headers["x-request-id"] == rid
    assert r.headers["location"] == f"/v1/registrations/{rid}"
    assert r.headers["cache-control"] == "no-store"

    events = [(k, v) for k, v in reg.events() if v["request_id"] == rid]
    assert len(events) == 1
    key, event = events[0]
    assert key == e164.encode()
    assert (event["phone"], event["phone_e164"], event["region"]) == (typed, e164, "GB")
    assert event["source"] == "landing:spring-offer"
    assert event["custom_fields"] == {"age": "42"}
    assert event["consent"]["granted"] is True
    details = event["source_details"]
    assert (details["ip_address"], details["user_agent"]) == (ip, "pytest-browser")
    assert details["utm_source"] == "news"

    assert reg.poll(rid).json() == {"request_id": rid, "status": "pending"}
    reg.write()
    polled = reg.poll(rid)
    assert polled.status_code == 200
    assert polled.json() == {"request_id": rid, "status": "registered"}
    [row] = reg.rows(
        "SELECT phone_e164, request_id, first_name, email, consent->>'method' "
        "FROM registrations WHERE phone_e164 = :p",
        p=e164,
    )
    assert row == (e164, rid, "Ada", "ada@example.com", "checkbox")


def test_a_repeat_of_a_phone_is_a_duplicate_not_an_error(reg: Reg) -> None:
    typed, e164 = mobile()
    international = "+44 " + typed.replace(" ", "")[1:]  # same number, other form
    first = reg.post({"phone": typed})
    second = reg.post({"phone": international})
    third = reg.post({"phone": typed})
    assert [r.status_code for r in (first, second, third)] == [202, 202, 202]
    ids = [r.json()["request_id"] for r in (first, second, third)]
    reg.write()
    assert [reg.poll(i).json()["status"] for i in ids] == ["registered", "duplicate", "duplicate"]
    assert reg.rows("SELECT request_id FROM registrations WHERE phone_e164 = :p", p=e164) == [
        (ids[0],)
    ]
    statuses = reg.rows(
        "SELECT request_id, status FROM registration_requests WHERE phone_e164 = :p "
        "ORDER BY accepted_at, status DESC",
        p=e164,
    )
    assert sorted(statuses) == sorted(
        [(ids[0], "registered"), (ids[1], "duplicate"), (ids[2], "duplicate")]
    )


def test_a_client_request_id_never_becomes_a_registration_id(reg: Reg) -> None:
    typed, _ = mobile()
    r = reg.post({"phone": typed}, **{"X-Request-ID": "my-own-id"})
    assert r.status_code == 202, r.text
    assert r.headers["x-request-id"] == "my-own-id"  # echoed, as on every route
    rid = r.json()["request_id"]
    assert rid != "my-own-id"
    assert len(rid) == 32
    assert reg.poll(rid).json()["status"] in ("pending", "registered")
    assert reg.poll("my-own-id").status_code == 404


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("phone", "rule"),
    [
        ("not a phone", "parse"),
        ("07400 12345", "valid"),
        ("+1 202 555 0143", "region"),
        ("07400 123456 ext 9", "extension"),
    ],
)
def test_bad_phones_are_422_with_the_rule_and_nothing_is_produced(
    reg: Reg, phone: str, rule: str
) -> None:
    r = reg.post({"phone": phone, "first_name": "Bad"})
    body = assert_error(r, 422, "invalid_phone")
    assert body["reason"].startswith("phone: ")
    assert body["details"] == {"rule": rule}
    # the request was admitted (pending mark set) and refused: the mark is gone again
    assert reg.poll(body["request_id"]).status_code == 404
    assert not [v for _, v in reg.events() if v["request_id"] == body["request_id"]]


def test_the_national_pattern_is_a_configurable_rule(stack: Stack) -> None:
    landline = "020 7946 0958"
    with (
        registration_world(stack, registration_phone_pattern=r"^07\d{9}$") as settings,
        DirectServer(settings) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        refused = client.post("/v1/registrations", json={"phone": landline})
        assert assert_error(refused, 422, "invalid_phone")["details"] == {"rule": "pattern"}
        accepted = client.post("/v1/registrations", json={"phone": mobile()[0]})
        assert accepted.status_code == 202, accepted.text


@pytest.mark.parametrize(
    "body",
    [{}, {"phone": ""}, {"phone": "07400 123456", "unknown": 1}, {"phone": "x" * 65}, []],
)
def test_invalid_bodies_are_422(reg: Reg, body: Any) -> None:
    r = reg.client.post(
        "/v1/registrations", json=body, headers={"X-Forwarded-For": client_address()}
    )
    assert_error(r, 422, "invalid_request")
    assert reg.poll(r.json()["request_id"]).status_code == 404


@pytest.mark.parametrize(
    "request_id", ["0" * 32, uuid.uuid4().hex, "a" * 129, "semi;colon", "..", "%00"]
)
def test_unknown_ids_are_404_and_reveal_nothing(reg: Reg, request_id: str) -> None:
    r = reg.poll(request_id)
    assert r.status_code == 404
    assert set(r.json()) == {"error", "reason", "request_id"}
    assert r.json()["error"] == "not_found"


# ------------------------------------------------------------------ rate limit (real Redis)


def test_n_allowed_then_429_and_other_ips_unaffected(reg: Reg) -> None:
    ip = client_address()
    for _ in range(BURST):
        assert reg.post({"phone": mobile()[0]}, ip=ip).status_code == 202
    refused = reg.post({"phone": mobile()[0]}, ip=ip)
    assert_error(refused, 429, "rate_limited")
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60 // BURST  # one interval: 20 s
    assert refused.headers["cache-control"] == "no-store"
    # invalid attempts from the same address are refused before anything else
    assert reg.post({"phone": "nonsense"}, ip=ip).status_code == 429
    # another client, and a client of the same address family next door, are not affected
    assert reg.post({"phone": mobile()[0]}).status_code == 202
    neighbour = ip.rsplit(".", 1)[0] + "." + str(int(ip.rsplit(".", 1)[1]) % 254 + 1)
    assert reg.post({"phone": mobile()[0]}, ip=neighbour).status_code == 202


def test_a_concurrent_flood_from_one_address_admits_exactly_the_burst(reg: Reg) -> None:
    """300 requests at once (more than the Redis pool holds): the limiter neither lets the
    flood through (no fail-open on a busy pool) nor admits more than the burst."""
    ip = client_address()

    async def flood() -> list[int]:
        limits = httpx.Limits(max_connections=300)
        async with httpx.AsyncClient(base_url=reg.server.url, timeout=60, limits=limits) as c:
            answers = await asyncio.gather(
                *(
                    c.post(
                        "/v1/registrations",
                        json={"phone": mobile()[0]},
                        headers={"X-Forwarded-For": ip},
                    )
                    for _ in range(300)
                )
            )
        return [a.status_code for a in answers]

    statuses = asyncio.run(flood())
    assert statuses.count(202) == BURST
    assert statuses.count(429) == 300 - BURST
    assert reg.server.app.state.registrations.limiter.failures == 0


def test_ipv6_clients_share_their_64(reg: Reg) -> None:
    net = f"2001:db8:{random.randint(1, 0xFFFF):x}:{random.randint(1, 0xFFFF):x}"
    for i in range(BURST):
        assert reg.post({"phone": mobile()[0]}, ip=f"{net}::{i + 1}").status_code == 202
    assert reg.post({"phone": mobile()[0]}, ip=f"{net}:ffff::9").status_code == 429


def test_forwarded_for_is_honoured_only_from_trusted_proxies(stack: Stack) -> None:
    """127.0.0.1 is not a trusted proxy here: X-Forwarded-For is ignored, every request is
    127.0.0.1's, whatever address it claims."""
    with (
        registration_world(
            stack,
            trusted_proxies=("10.0.0.0/8",),
            registration_rate_limit=BURST,
            registration_rate_burst=BURST,
        ) as settings,
        DirectServer(settings) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        statuses = [
            client.post(
                "/v1/registrations",
                json={"phone": mobile()[0]},
                headers={"X-Forwarded-For": client_address()},
            ).status_code
            for _ in range(BURST + 2)
        ]
    assert statuses == [202] * BURST + [429, 429]


def test_the_lua_script_decides_like_the_python_tables(reg: Reg) -> None:
    r = redis.Redis.from_url(reg.settings.redis_url)
    try:
        script = r.register_script(SCRIPT)
        for n, (policy, steps) in enumerate(SEQUENCES):
            key = f"{reg.settings.topic_prefix}lua-table-{n}"
            base = 1_800_000_000_000.0  # an epoch-ms "now"
            for at, allowed, remaining, retry_after in steps:
                args = [repr(policy.interval_ms), repr(policy.tolerance_ms), repr(base + at), 0]
                got_allowed, got_retry, got_remaining = script(keys=[key, ""], args=args)
                assert (bool(got_allowed), int(got_remaining)) == (allowed, remaining), (n, at)
                assert float(got_retry) / 1000 == pytest.approx(retry_after, abs=0.001)
            assert r.pttl(key) > 0  # idle clients cost nothing for long
    finally:
        r.close()


def test_one_script_run_decides_a_batch_in_order(reg: Reg) -> None:
    """Requests that arrive together share one script run: each decided as if alone, in
    arrival order (the same client twice in a batch spends twice), pending marks only for
    the admitted ones."""
    policy = RatePolicy(limit=1, period_s=60, burst=2)
    p = reg.settings.topic_prefix
    a, b = f"{p}batch-a", f"{p}batch-b"
    marks = [f"{p}mark-{i}" for i in range(4)]
    r = redis.Redis.from_url(reg.settings.redis_url)
    try:
        args = [repr(policy.interval_ms), repr(policy.tolerance_ms), "", 60]
        flat = r.register_script(SCRIPT)(
            keys=[a, marks[0], b, marks[1], a, marks[2], a, marks[3]], args=args
        )
        decisions = [
            (int(flat[i]), float(flat[i + 1]) / 1000, int(flat[i + 2]))
            for i in range(0, len(flat), 3)
        ]
        assert [(ok, left) for ok, _, left in decisions] == [(1, 1), (1, 1), (1, 0), (0, 0)]
        assert decisions[3][1] == pytest.approx(60, abs=0.1)  # one interval
        assert [bool(r.exists(m)) for m in marks] == [True, True, True, False]
        assert 59 <= r.ttl(marks[0]) <= 60
    finally:
        r.close()


def test_the_script_is_atomic_under_concurrency(reg: Reg) -> None:
    """200 concurrent requests for one bucket admit exactly the burst."""
    policy = RatePolicy(limit=1, period_s=3600, burst=25)
    key = f"{reg.settings.topic_prefix}concurrent"

    async def main() -> int:
        client = redis.asyncio.Redis.from_url(reg.settings.redis_url, max_connections=250)
        try:
            script = client.register_script(SCRIPT)
            args = [repr(policy.interval_ms), repr(policy.tolerance_ms), "", 0]
            results = await asyncio.gather(*(script(keys=[key, ""], args=args) for _ in range(200)))
        finally:
            await client.aclose()
        return sum(int(allowed) for allowed, _, _ in results)

    assert asyncio.run(main()) == 25
    assert gcra(None, 0, policy)[0].remaining == 24


# ------------------------------------------------------------------ Redis / Kafka down


class _Proxy:
    """A TCP relay on loopback in front of Redis that can be cut: the limiter then meets a
    real connection failure (refused, reset), not a mocked one."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()


def test_the_memory_fallback_takes_over_where_redis_left_off(reg: Reg) -> None:
    """Redis goes away mid-flood (here: its connection is cut): a client that spent its
    allowance through Redis stays refused, one that spent part of it keeps the rest, and a
    new one gets its allowance, all from this process's memory, which followed Redis."""
    policy = RatePolicy(limit=1, period_s=3600, burst=3)
    prefix = f"{reg.settings.topic_prefix}follow-{uuid.uuid4().hex[:8]}:"
    url = httpx.URL(reg.settings.redis_url)

    async def admitted(limiter: RateLimiter, bucket: str, n: int) -> list[bool]:
        out = []
        for _ in range(n):
            try:
                await limiter.admit(bucket)
                out.append(True)
            except RateLimited:
                out.append(False)
        return out

    async def main() -> tuple[list[bool], ...]:
        proxy = _Proxy((url.host or "127.0.0.1", url.port or 6379))
        client = redis.asyncio.Redis(host="127.0.0.1", port=await proxy.start())
        limiter = RateLimiter(client, policy, key_prefix=prefix, timeout_s=2, fail_open=True)
        try:
            through_redis = await admitted(limiter, "spent", 4) + await admitted(
                limiter, "partly", 1
            )
            assert limiter.failures == 0
            await proxy.cut()
            from_memory = (
                await admitted(limiter, "spent", 2)
                + await admitted(limiter, "partly", 3)
                + await admitted(limiter, "new", 4)
            )
            assert limiter.failures == 9
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
        return through_redis, from_memory

    through_redis, from_memory = asyncio.run(main())
    assert through_redis == [True, True, True, False, True]
    # spent: refused; partly: its 2 left; new: its burst of 3
    assert from_memory == [False, False, True, True, False, True, True, True, False]


@pytest.mark.parametrize("fail_open", [True, False])
def test_redis_down_fails_open_or_closed_as_configured(stack: Stack, fail_open: bool) -> None:
    """Open (the default): registrations go on, limited per process in memory. Closed: 503."""
    with (
        registration_world(
            stack,
            redis_url="redis://127.0.0.1:1/0",
            registration_rate_fail_open=fail_open,
            registration_rate_limit=BURST,
            registration_rate_burst=BURST,
        ) as settings,
        DirectServer(settings) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
        Serde(settings) as serde,
    ):
        began = time.monotonic()
        r = client.post("/v1/registrations", json={"phone": mobile()[0]})
        assert time.monotonic() - began < 5
        if not fail_open:
            assert_error(r, 503, "rate_limiter_unavailable")
            assert r.headers["retry-after"]
            assert not read_all(settings, settings.topic("registrations"), timeout=2)
            return
        assert r.status_code == 202, r.text
        rid = r.json()["request_id"]
        # open is not unlimited: the same limit, kept in the process's memory
        more = [client.post("/v1/registrations", json={"phone": mobile()[0]}) for _ in range(BURST)]
        assert [m.status_code for m in more] == [202] * (BURST - 1) + [429]
        assert int(more[-1].headers["retry-after"]) >= 1
        # without Redis, "pending" cannot be told from "unknown": 503, not a false 404
        assert_error(client.get(f"/v1/registrations/{rid}"), 503, "unavailable")
        engine = make_engine(settings, pool_size=1)
        try:
            StageRunner(
                build_stage(engine),
                settings,
                serde,
                RuntimeConfig(instance_id="reg-open", poll_timeout_s=0.2),
            ).run(idle_timeout_s=3)
        finally:
            engine.dispose()
        assert client.get(f"/v1/registrations/{rid}").json()["status"] == "registered"


def test_broker_down_is_503_and_the_id_is_not_left_pending(stack: Stack) -> None:
    with (
        registration_world(stack) as good,
        DirectServer(
            good.model_copy(
                update={"kafka_bootstrap": "127.0.0.1:1", "producer_message_timeout_ms": 1500}
            )
        ) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        r = client.post("/v1/registrations", json={"phone": mobile()[0]})
        body = assert_error(r, 503, r.json().get("error", "?"))
        assert body["error"] in ("broker_timeout", "broker_unavailable")
        assert client.get(f"/v1/registrations/{body['request_id']}").status_code == 404


# ------------------------------------------------------------------ browsers


def test_cors_preflight_and_responses(reg: Reg) -> None:
    preflight = reg.client.options(
        "/v1/registrations",
        headers={
            "Origin": LANDING,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == LANDING
    refused = reg.client.options(
        "/v1/registrations",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers

    ok = reg.post({"phone": mobile()[0]}, Origin=LANDING)
    assert ok.status_code == 202
    assert ok.headers["access-control-allow-origin"] == LANDING
    assert "Location" in ok.headers["access-control-expose-headers"]
    other = reg.post({"phone": mobile()[0]}, Origin="https://evil.example")
    assert "access-control-allow-origin" not in other.headers
    # the API-key routes are not for browsers
    contacts = reg.client.post("/v1/contacts", json={}, headers={"Origin": LANDING})
    assert "access-control-allow-origin" not in contacts.headers


def test_security_headers_on_every_answer(reg: Reg) -> None:
    ip = client_address()
    answers = [
        reg.post({"phone": mobile()[0]}, ip=ip),  # 202
        reg.post({"phone": "nope"}, ip=ip),  # 422
        reg.poll("unknown"),  # 404
        reg.client.get("/healthz"),
    ]
    answers += [reg.post({"phone": mobile()[0]}, ip=ip) for _ in range(BURST)]  # …429
    assert {a.status_code for a in answers} == {200, 202, 404, 422, 429}
    for a in answers:
        assert a.headers["x-content-type-options"] == "nosniff"
        assert a.headers["x-frame-options"] == "DENY"
        assert a.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in a.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in a.headers["content-security-policy"]
        assert "strict-transport-security" not in a.headers  # plain http on loopback
    https = reg.client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert https.headers["strict-transport-security"].startswith("max-age=")
