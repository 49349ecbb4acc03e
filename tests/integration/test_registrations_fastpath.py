"""The registrations fast path (``leadstream_ingest.fast_registrations``) against the FastAPI
route it stands in front of: the same requests, sent to two servers of one world — the app
as it runs (fast path on) and the same app with ``registration_fast_path=False`` — give the
same statuses, bodies, headers (names, values and order), ``Registration`` events, request
logs and metrics; and the fast path is the one that served them.

Server-made ids (request ids, event ids) and times differ by nature and are replaced by
placeholders before comparing; everything else must be equal.
"""

from __future__ import annotations

import random
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from leadstream.events import Serde
from leadstream.infra import Stack
from leadstream_ingest.config import IngestSettings
from tests.integration.test_registrations import (
    LANDING,
    DirectServer,
    client_address,
    mobile,
    registration_world,
)
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration
BURST = 3
JSON = "application/json"
_HEX32 = re.compile(r"\b[0-9a-f]{32}\b")


@dataclass
class Pair:
    settings: IngestSettings
    fast: DirectServer
    slow: DirectServer
    fast_client: httpx.Client
    slow_client: httpx.Client
    serde: Serde


@pytest.fixture(scope="module")
def pair(stack: Stack) -> Iterator[Pair]:
    with (
        registration_world(
            stack,
            trusted_proxies=("127.0.0.0/8",),
            cors_origins=(LANDING,),
            registration_rate_limit=BURST,
            registration_rate_period_s=60.0,
            registration_rate_burst=BURST,
        ) as settings,
        DirectServer(settings) as fast,
        DirectServer(settings.model_copy(update={"registration_fast_path": False})) as slow,
        httpx.Client(base_url=fast.url, timeout=30) as fast_client,
        httpx.Client(base_url=slow.url, timeout=30) as slow_client,
        Serde(settings) as serde,
    ):
        assert fast.app.fast_path is not None
        assert slow.app.fast_path is None
        yield Pair(settings, fast, slow, fast_client, slow_client, serde)


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: Any
    request_id: str  # the X-Request-ID answered
    registration_id: str | None


def answer_of(r: httpx.Response) -> Answer:
    body: Any = r.json() if r.headers.get("content-type") == JSON else r.text
    rid = body.get("request_id") if isinstance(body, dict) and r.status_code == 202 else None
    headers = [(k.decode().lower(), v.decode()) for k, v in r.headers.raw if k.lower() != b"date"]
    return Answer(r.status_code, headers, body, r.headers["x-request-id"], rid)


def normalized(answer: Answer) -> tuple[int, list[tuple[str, str]], Any]:
    """The answer with the server-made ids replaced by placeholders."""
    ids = {answer.request_id: "<request-id>"}
    if answer.registration_id:
        ids[answer.registration_id] = "<registration-id>"

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for real, placeholder in ids.items():
                value = value.replace(real, placeholder)
            return _HEX32.sub("<hex>", value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    headers = [(k, clean(v)) for k, v in answer.headers]
    return answer.status, headers, clean(answer.body)


def both(
    pair: Pair,
    content: bytes | None = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    ip: str | None = None,
) -> tuple[Answer, Answer]:
    """The same request to both servers, each from its own client address (unless given)."""
    answers = []
    for client in (pair.fast_client, pair.slow_client):
        sent = {"X-Forwarded-For": ip or client_address(), **(headers or {})}
        if "X-Request-ID" in sent:  # each its own, so that each log is found by its id
            sent["X-Request-ID"] += "-fast" if client is pair.fast_client else "-slow"
        r = client.request(method, "/v1/registrations", content=content, headers=sent)
        answers.append(answer_of(r))
    return answers[0], answers[1]


def body(**fields: Any) -> bytes:
    import json

    return json.dumps(fields).encode()


def metrics_of(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
        and (
            s.name.startswith(("leadstream_http_requests_total", "leadstream_ingest_registrations"))
            or s.name == "leadstream_http_request_seconds_count"
        )
    }


# (name, body, headers): answered by the fast path itself
SERVED: list[tuple[str, bytes, dict[str, str]]] = [
    ("minimal", body(phone=mobile()[0]), {"Content-Type": JSON}),
    (
        "every field, browser headers, allowed origin",
        body(
            phone=mobile()[0],
            first_name="  Ada ",
            last_name="Lovelace",
            email="ada@example.com",
            landing_page="spring-offer",
            consent={"granted": True, "method": "checkbox", "text": "Call me"},
            source_details={"utm_source": "news", "form_id": "f1"},
            custom_fields={"age": 42, "vip": True, "note": "é ü 漢字"},
        ),
        {
            "Content-Type": JSON,
            "User-Agent": "pytest-browser/1.0",
            "Referer": "https://landing.example/spring",
            "Origin": LANDING,
        },
    ),
    ("another origin", body(phone=mobile()[0]), {"Content-Type": JSON, "Origin": "https://x.io"}),
    ("charset", body(phone=mobile()[0]), {"Content-Type": "application/json; charset=utf-8"}),
    ("client request id", body(phone=mobile()[0]), {"Content-Type": JSON, "X-Request-ID": "abc-1"}),
    ("insane request id", body(phone=mobile()[0]), {"Content-Type": JSON, "X-Request-ID": "a b"}),
    (
        "https via proxy",
        body(phone=mobile()[0]),
        {"Content-Type": JSON, "X-Forwarded-Proto": "https"},
    ),
    ("bad phone: parse", body(phone="not a phone"), {"Content-Type": JSON}),
    ("bad phone: valid", body(phone="07400 12345"), {"Content-Type": JSON}),
    ("bad phone: region", body(phone="+1 202 555 0143"), {"Content-Type": JSON}),
    ("bad phone: extension", body(phone="07400 123456 ext 9"), {"Content-Type": JSON}),
    ("bad phone: blank", body(phone="   "), {"Content-Type": JSON}),
    ("empty object", b"{}", {"Content-Type": JSON}),
    ("empty phone", body(phone=""), {"Content-Type": JSON}),
    ("unknown field", body(phone="07400 123456", unknown=1), {"Content-Type": JSON}),
    ("long phone", body(phone="x" * 65), {"Content-Type": JSON}),
    ("bad email and consent", body(phone="07400 123456", email="nope", consent=[1]), {}),
    ("NUL", b'{"phone": "\\u0000"}', {"Content-Type": JSON}),
    ("lone surrogate", b'{"phone": "07400 123456", "first_name": "\\ud800"}', {}),
    (
        "custom fields too many",
        body(phone="07400 123456", custom_fields={str(i): "v" for i in range(51)}),
        {},
    ),
]
# Handed to the full stack untouched (and still answered the same).
HANDED_OVER: list[tuple[str, bytes, dict[str, str]]] = [
    ("malformed JSON", b'{"phone": ', {"Content-Type": JSON}),
    ("not an object", b"[]", {"Content-Type": JSON}),
    ("null", b"null", {"Content-Type": JSON}),
    ("empty body", b"", {"Content-Type": JSON}),
    ("text/plain", body(phone="07400 123456"), {"Content-Type": "text/plain"}),
    ("vendor json", body(phone=mobile()[0]), {"Content-Type": "application/vnd.api+json"}),
    ("not UTF-8", b'{"phone": "\xff"}', {"Content-Type": JSON}),
]
for _cases in (SERVED, HANDED_OVER):  # a JSON body needs its content type unless it says
    for _name, _content, _headers in _cases:
        _headers.setdefault("Content-Type", JSON)


def test_the_same_requests_get_the_same_answers_events_logs_and_metrics(pair: Pair) -> None:
    fast_path = pair.fast.app.fast_path
    assert fast_path is not None
    served, handed = fast_path.served, fast_path.handed_over
    metrics_before = (metrics_of(pair.fast_client), metrics_of(pair.slow_client))
    pairs: list[tuple[str, Answer, Answer]] = []
    for name, content, headers in SERVED + HANDED_OVER:
        fast, slow = both(pair, content, headers=headers)
        assert normalized(fast) == normalized(slow), name
        pairs.append((name, fast, slow))
    assert fast_path.served - served == len(SERVED)
    assert fast_path.handed_over - handed == len(HANDED_OVER)
    assert {p[1].status for p in pairs} >= {202, 400, 422}

    # The registration events of the accepted ones, field by field.
    accepted = [(n, f, s) for n, f, s in pairs if f.status == 202]
    topic = pair.settings.topic("registrations")
    events = {
        e["request_id"]: e
        for e in (
            pair.serde.deserialize(m.value(), m.topic())
            for m in read_all(pair.settings, topic, expect=2 * len(accepted), timeout=30)
        )
    }
    volatile = ("event_id", "request_id", "event_time", "phone", "phone_e164")
    for name, fast, slow in accepted:
        a, b = dict(events[fast.registration_id]), dict(events[slow.registration_id])
        a_details, b_details = a.pop("source_details"), b.pop("source_details")
        assert {k: v for k, v in a.items() if k not in volatile} == {
            k: v for k, v in b.items() if k not in volatile
        }, name
        assert a_details.pop("ip_address") != b_details.pop("ip_address")  # their own clients
        assert a_details == b_details, name

    # One request log each, equal but for ids, time, latency and the client address.
    logs_topic = pair.settings.topic("audit.requests")
    expected = 2 * len(pairs)
    logs: dict[str, dict[str, Any]] = {}
    for m in read_all(pair.settings, logs_topic, expect=expected, timeout=30):
        record = pair.serde.deserialize(m.value(), m.topic())
        logs[record["request_id"]] = record
    volatile = ("event_id", "request_id", "event_time", "latency_ms", "ip_address")
    for name, fast, slow in pairs:
        a, b = logs[fast.request_id], logs[slow.request_id]
        assert {k: v for k, v in a.items() if k not in volatile} == {
            k: v for k, v in b.items() if k not in volatile
        }, name
        assert (a["event_id"] == a["request_id"]) == (b["event_id"] == b["request_id"]), name

    # The same series moved by the same amounts.
    metrics_after = (metrics_of(pair.fast_client), metrics_of(pair.slow_client))
    deltas = [
        {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
        for before, after in zip(metrics_before, metrics_after, strict=True)
    ]
    deltas = [{k: v for k, v in d.items() if ("route", "/metrics") not in k[1]} for d in deltas]
    assert deltas[0] == deltas[1]
    assert deltas[0][
        (
            "leadstream_http_requests_total",
            frozenset({("route", "/v1/registrations"), ("method", "POST"), ("status", "202")}),
        )
    ] == len(accepted)


def test_rate_limited_answers_agree(pair: Pair) -> None:
    ip_fast, ip_slow = client_address(), client_address()
    answers = []
    for client, ip in ((pair.fast_client, ip_fast), (pair.slow_client, ip_slow)):
        for _ in range(BURST):
            client.post(
                "/v1/registrations", json={"phone": mobile()[0]}, headers={"X-Forwarded-For": ip}
            )
        refused = client.post(
            "/v1/registrations",
            content=body(phone="nonsense"),  # refused before it is validated
            headers={"X-Forwarded-For": ip, "Content-Type": JSON, "Origin": LANDING},
        )
        answers.append(answer_of(refused))
    fast, slow = answers
    assert fast.status == 429
    assert normalized(fast) == normalized(slow)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": LANDING, "Access-Control-Request-Method": "POST"},
        {
            "Origin": LANDING,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-request-id",
        },
        {"Origin": LANDING, "Access-Control-Request-Method": "DELETE"},
        {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        {
            "Origin": LANDING,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
        {"Origin": LANDING},  # not a preflight: 405 from FastAPI, on both
    ],
)
def test_preflights_agree(pair: Pair, headers: dict[str, str]) -> None:
    fast_path = pair.fast.app.fast_path
    assert fast_path is not None
    served = fast_path.served
    fast, slow = both(pair, method="OPTIONS", headers=headers)
    assert normalized(fast) == normalized(slow)
    preflight = "Access-Control-Request-Method" in headers
    assert fast_path.served - served == (1 if preflight else 0)


def test_other_methods_and_chunked_bodies_go_the_long_way_and_agree(pair: Pair) -> None:
    fast_path = pair.fast.app.fast_path
    assert fast_path is not None
    handed = fast_path.handed_over
    fast, slow = both(pair, method="GET")
    assert fast.status == 405
    assert normalized(fast) == normalized(slow)

    def chunks() -> Iterator[bytes]:
        yield b'{"phone": "'
        yield mobile()[0].encode() + b'"}'

    answers = []
    for client in (pair.fast_client, pair.slow_client):
        r = client.post(
            "/v1/registrations",
            content=chunks(),
            headers={"Content-Type": JSON, "X-Forwarded-For": client_address()},
        )
        answers.append(answer_of(r))
    assert answers[0].status == 202
    assert normalized(answers[0]) == normalized(answers[1])
    assert fast_path.handed_over - handed == 2


def raw_request(
    port: int, head: bytes, body: bytes = b""
) -> tuple[int, list[tuple[str, str]], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + int(
            re.search(rb"content-length: (\d+)", data.lower()).group(1)  # type: ignore[union-attr]
            if re.search(rb"content-length: (\d+)", data.lower())
            else 0
        ):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head_, _, payload = data.partition(b"\r\n\r\n")
    lines = head_.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [
        (k.lower(), v.strip())
        for k, _, v in (line.partition(":") for line in lines[1:])
        if k.lower() != "date"
    ]
    return status, headers, payload


def test_a_declared_body_over_the_limit_is_refused_the_same(pair: Pair) -> None:
    size = pair.settings.max_body_bytes + 1
    answers = []
    for server in (pair.fast, pair.slow):
        rid = f"big-{random.randint(10**8, 10**9 - 1)}"
        head = (
            f"POST /v1/registrations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\nX-Request-ID: {rid}\r\n\r\n"
        ).encode()
        answers.append(raw_request(server.port, head))
    (fs, fh, fb), (ss, sh, sb) = answers
    assert fs == ss == 413
    strip = (
        [(k, v) for k, v in fh if k != "x-request-id"],
        [(k, v) for k, v in sh if k != "x-request-id"],
    )
    assert strip[0] == strip[1]
    assert re.sub(rb"big-\d+", b"", fb) == re.sub(rb"big-\d+", b"", sb)


def test_duplicate_headers_are_read_as_the_stack_reads_them(pair: Pair) -> None:
    """First X-Request-ID for the route, last for the request context; first Origin."""
    answers = []
    for server in (pair.fast, pair.slow):
        content = body(phone=mobile()[0])
        head = (
            "POST /v1/registrations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(content)}\r\nX-Forwarded-For: {client_address()}\r\n"
            "X-Request-ID: first-id\r\nX-Request-ID: last-id\r\n"
            f"Origin: {LANDING}\r\nOrigin: https://evil.example\r\n"
            "User-Agent: ua-1\r\nUser-Agent: ua-2\r\n\r\n"
        ).encode()
        status, headers, payload = raw_request(server.port, head, content)
        assert status == 202, payload
        answers.append((headers, payload))
    (fh, fb), (sh, sb) = answers
    assert dict(fh)["x-request-id"] == "last-id"
    assert _HEX32.sub("<hex>", fb.decode()) == _HEX32.sub("<hex>", sb.decode())
    clean = [[(k, _HEX32.sub("<hex>", v)) for k, v in h] for h in (fh, sh)]
    assert clean[0] == clean[1]


def test_broker_down_answers_agree(stack: Stack) -> None:
    with registration_world(stack) as good:
        down = good.model_copy(
            update={"kafka_bootstrap": "127.0.0.1:1", "producer_message_timeout_ms": 1500}
        )
        answers = []
        for fast in (True, False):
            settings = down.model_copy(update={"registration_fast_path": fast})
            with (
                DirectServer(settings) as server,
                httpx.Client(base_url=server.url, timeout=30) as client,
            ):
                r = client.post("/v1/registrations", json={"phone": mobile()[0]})
                answers.append(answer_of(r))
                assert client.get(f"/v1/registrations/{r.json()['request_id']}").status_code == 404
    fast, slow = answers
    assert fast.status == 503
    assert normalized(fast) == normalized(slow)
