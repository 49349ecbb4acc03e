"""``/healthz`` and ``/metrics`` for a stage process, on a small background HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

HealthProbe = Callable[[], tuple[bool, dict[str, object]]]


class HealthServer:
    """Serves ``/healthz`` (200 when the probe says healthy, else 503) and ``/metrics``."""

    def __init__(self, probe: HealthProbe, host: str = "127.0.0.1", port: int = 0) -> None:
        self.probe = probe
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                elif self.path in ("/healthz", "/readyz"):
                    ok, details = outer.probe()
                    body = json.dumps({"status": "ok" if ok else "unhealthy", **details})
                    self._send(200 if ok else 503, body.encode(), "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def loop_probe(last_loop: Callable[[], float], stale_after_s: float = 60.0) -> HealthProbe:
    """Healthy while the stage loop has turned within ``stale_after_s`` seconds."""

    def probe() -> tuple[bool, dict[str, object]]:
        age = time.monotonic() - last_loop()
        return age < stale_after_s, {"loop_age_s": round(age, 3)}

    return probe
