"""Security headers and the registrations' CORS allowlist, on a bare app (no servers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from leadstream.errors import ConfigError
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.security import RegistrationCorsMiddleware, SecurityHeadersMiddleware

LANDING = "https://landing.example"


async def _json(_request: Request) -> Response:
    return JSONResponse({"ok": True}, status_code=202)


async def _docs(_request: Request) -> Response:
    return HTMLResponse("<html>swagger</html>")


async def _framed(_request: Request) -> Response:
    return JSONResponse({}, headers={"X-Frame-Options": "SAMEORIGIN"})


def _app(**overrides: object) -> Starlette:
    values: dict[str, object] = {
        "cors_origins": (LANDING, "http://localhost:3000/"),
        "trusted_proxies": ("10.0.0.0/8",),
        **overrides,
    }
    settings = IngestSettings(**values)  # type: ignore[arg-type]
    app = Starlette(
        routes=[
            Route("/v1/registrations", _json, methods=["POST"]),
            Route("/v1/registrations/{rid}", _json, methods=["GET"]),
            Route("/v1/contacts", _json, methods=["POST"]),
            Route("/docs", _docs),
            Route("/framed", _framed),
        ]
    )
    app.add_middleware(RegistrationCorsMiddleware, settings=settings)
    app.add_middleware(SecurityHeadersMiddleware, settings=settings)
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(_app()) as c:
        yield c


def test_api_responses_carry_the_strict_headers(client: TestClient) -> None:
    r = client.post("/v1/contacts")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "strict-transport-security" not in r.headers  # plain http


def test_the_docs_page_is_not_given_the_api_csp(client: TestClient) -> None:
    r = client.get("/docs")
    assert "content-security-policy" not in r.headers  # Swagger UI runs scripts
    assert r.headers["x-frame-options"] == "DENY"


def test_a_header_the_app_set_is_kept(client: TestClient) -> None:
    r = client.get("/framed")
    assert r.headers.get_list("x-frame-options") == ["SAMEORIGIN"]


def test_hsts_over_https() -> None:
    with TestClient(_app(), base_url="https://api.example") as c:
        assert c.post("/v1/contacts").headers["strict-transport-security"] == (
            "max-age=31536000; includeSubDomains"
        )


@pytest.mark.parametrize(
    ("peer", "proto", "hsts"),
    [
        ("10.0.0.5", "https", True),  # TLS ended at a trusted proxy
        ("10.0.0.5", "http", False),
        ("203.0.113.9", "https", False),  # anyone can send X-Forwarded-Proto
    ],
)
def test_hsts_behind_a_proxy(peer: str, proto: str, hsts: bool) -> None:
    with TestClient(_app(), client=(peer, 40000)) as c:
        r = c.post("/v1/contacts", headers={"X-Forwarded-Proto": proto})
    assert ("strict-transport-security" in r.headers) is hsts


def test_hsts_can_be_turned_off() -> None:
    with TestClient(_app(security_hsts_max_age_s=0), base_url="https://api.example") as c:
        assert "strict-transport-security" not in c.post("/v1/contacts").headers


def test_preflight_from_an_allowed_origin(client: TestClient) -> None:
    r = client.options(
        "/v1/registrations",
        headers={
            "Origin": LANDING,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == LANDING
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"  # preflights get them too


@pytest.mark.parametrize(
    ("origin", "method"),
    [
        ("https://evil.example", "POST"),
        (LANDING, "DELETE"),
        ("https://landing.example.evil", "POST"),
    ],
)
def test_preflight_refused(client: TestClient, origin: str, method: str) -> None:
    r = client.options(
        "/v1/registrations",
        headers={"Origin": origin, "Access-Control-Request-Method": method},
    )
    assert r.status_code == 400  # the browser will not send the request
    if origin != LANDING:
        assert "access-control-allow-origin" not in r.headers


def test_simple_request_from_an_allowed_origin(client: TestClient) -> None:
    r = client.post("/v1/registrations", headers={"Origin": "http://localhost:3000"})
    assert r.status_code == 202
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "Retry-After" in r.headers["access-control-expose-headers"]


def test_simple_request_from_another_origin_gets_no_cors_header(client: TestClient) -> None:
    r = client.post("/v1/registrations", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_the_poll_route_is_covered_too(client: TestClient) -> None:
    r = client.get("/v1/registrations/abc", headers={"Origin": LANDING})
    assert r.headers["access-control-allow-origin"] == LANDING


def test_api_key_routes_get_no_cors(client: TestClient) -> None:
    r = client.post("/v1/contacts", headers={"Origin": LANDING})
    assert "access-control-allow-origin" not in r.headers
    preflight = client.options(
        "/v1/contacts", headers={"Origin": LANDING, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize("origin", ["*", "landing.example"])
def test_wildcards_and_non_origins_are_refused(origin: str) -> None:
    with pytest.raises(ConfigError, match="cors_origins"), TestClient(_app(cors_origins=(origin,))):
        pass  # the middleware stack is built on startup
