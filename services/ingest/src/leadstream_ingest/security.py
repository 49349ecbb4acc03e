"""Browser-facing protections, as ASGI middleware.

- :class:`SecurityHeadersMiddleware` (every response): ``X-Content-Type-Options: nosniff``,
  ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``, a strict
  ``Content-Security-Policy`` (``default-src 'none'; frame-ancestors 'none'`` …: an API
  response is data, never a page that may run or embed anything) except on the Swagger UI
  page, and ``Strict-Transport-Security`` when the request came over HTTPS (directly, or per
  ``X-Forwarded-Proto`` from a trusted proxy). A header the app set itself is left alone.
- :class:`RegistrationCorsMiddleware`: CORS for the public registration routes only (the
  API-key routes are for servers, not browsers), allowing exactly the configured origins.
  Preflights are answered by Starlette's ``CORSMiddleware`` (400 for an origin, method or
  header not allowed); a response to an origin not on the list carries no CORS header, so
  the browser withholds it from the page. No credentials (cookies) are ever allowed.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadstream.errors import ConfigError
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.ratelimit import TrustedProxies

REGISTRATIONS_PATH = "/v1/registrations"
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox"
_COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, settings: IngestSettings) -> None:
        self.app = app
        self.proxies = TrustedProxies(settings.trusted_proxies)
        age = settings.security_hsts_max_age_s
        self.hsts = f"max-age={age}; includeSubDomains".encode() if age > 0 else None
        self.api_headers = (*_COMMON, (b"content-security-policy", API_CSP.encode()))

    def is_https(self, scope: Scope) -> bool:
        if scope.get("scheme") == "https":
            return True
        client = scope.get("client")
        if client is None or client[0] not in self.proxies:
            return False
        proto = _header(scope, b"x-forwarded-proto") or b""
        return proto.split(b",")[0].strip().lower() == b"https"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_COMMON if scope["path"] in DOCS_PATHS else self.api_headers)
        if self.hsts is not None and self.is_https(scope):
            extra.append((b"strict-transport-security", self.hsts))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(k).lower() for k, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RegistrationCorsMiddleware:
    def __init__(self, app: ASGIApp, *, settings: IngestSettings) -> None:
        origins = [o.strip().rstrip("/") for o in settings.cors_origins if o.strip()]
        for origin in origins:
            if origin == "*" or "://" not in origin:
                raise ConfigError(
                    f"cors_origins: {origin!r} is not an origin (scheme://host[:port]); "
                    "wildcards are not allowed"
                )
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "Location"],
            allow_credentials=False,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == REGISTRATIONS_PATH or path.startswith(REGISTRATIONS_PATH + "/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
