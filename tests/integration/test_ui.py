"""``leadstream ui`` on the real stack: the page, the websocket, and kaskade's screens.

The test is the browser: it loads the page textual-serve serves, opens the websocket the page
names and speaks textual-serve's protocol (JSON ``["stdin", text]`` in; the app's terminal
output back as bytes), then reads the screen, escape sequences stripped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from leadstream.events import Serde, register_schemas
from leadstream.settings import Settings
from tests.support.kafka import create_topics, produce

pytestmark = pytest.mark.integration

LEADSTREAM = Path(sys.executable).parent / "leadstream"
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServedUi:
    """A running ``leadstream ui``: its port, and its output (kept in a file, never a pipe
    nobody reads: a full pipe would stall the server and its apps)."""

    def __init__(self, port: int, log: Path, proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.log = log
        self.proc = proc

    def output(self) -> str:
        state = "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"leadstream ui ({state}), last output:\n{text[-4000:]}"


@contextmanager
def served_ui(settings: Settings, log: Path, *args: str) -> Iterator[ServedUi]:
    """``leadstream ui`` in its own process group, on a free port, until the block ends."""
    port = _free_port()
    env = {
        **os.environ,
        "LEADSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LEADSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(LEADSTREAM), "ui", "--port", str(port), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield ServedUi(port, log, proc)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        # The server's app processes can outlive it (one stuck in a registry call did):
        # nothing of the group may stay behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def load_page(ui: ServedUi, timeout: float = 120.0) -> str:
    """The HTML page (the first start may download kaskade into uv's cache)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui.port}/", timeout=5) as resp:
                assert resp.status == 200
                return str(resp.read().decode())
        except OSError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"no page within {timeout} s\n{ui.output()}") from exc
            time.sleep(0.5)


class Screen:
    """What the app has drawn so far, as text."""

    def __init__(self, ws: ClientConnection, ui: ServedUi) -> None:
        self.ws = ws
        self.ui = ui
        self.text = ""

    def wait_for(self, done: Callable[[str], bool], timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while not done(self.text):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not on screen within {timeout} s; drawn so far (blank lines dropped):\n"
                    f"{self.drawn()}\n{self.ui.output()}"
                )
            try:
                message = self.ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            data = message if isinstance(message, bytes) else message.encode()
            self.text += _ESCAPES.sub("", data.decode("utf-8", "replace"))
        return self.text

    def drawn(self, limit: int = 6000) -> str:
        """What was drawn without the lines that hold only padding and borders (a screen is
        mostly those), its last ``limit`` characters."""
        lines = (line.rstrip() for line in self.text.splitlines())
        return "\n".join(line for line in lines if line.strip(" │─┌┐└┘"))[-limit:]

    def type(self, keys: str) -> None:
        for key in keys:  # one key per packet, as a browser sends them
            self.ws.send(json.dumps(["stdin", key]))


@contextmanager
def open_app(ui: ServedUi, html: str) -> Iterator[Screen]:
    urls = re.findall(r"ws://[^\"'\s]+", html)
    assert f"ws://127.0.0.1:{ui.port}/ws" in urls, f"the page names no websocket of ours: {urls}"
    with connect(f"ws://127.0.0.1:{ui.port}/ws?width=200&height=50", max_size=None) as ws:
        yield Screen(ws, ui)


def test_ui_lists_our_topics_and_filters_them(
    settings: Settings, prefix: str, tmp_path: Path
) -> None:
    topic = settings.topic("contacts.raw")
    create_topics(settings, [topic], partitions=2)
    # No periodic refresh: the screen changes only when we type, so an echo is ours.
    with served_ui(settings, tmp_path / "ui.log", "--refresh", "0") as ui:
        html = load_page(ui)
        assert "<html" in html.lower()
        with open_app(ui, html) as screen:
            screen.wait_for(lambda text: re.search(r"Topics \[[1-9]\d*\]", text) is not None)
            screen.type("/")
            screen.wait_for(lambda text: "Filter Topics" in text)
            screen.text = ""
            screen.type(prefix)
            # Enter is a priority binding: it would apply the filter before the Input took
            # the keys still queued for it. Wait for the echo first, as a person would.
            screen.wait_for(lambda text: prefix in text)
            screen.type("\r")
            shown = screen.wait_for(lambda text: f"[*{prefix}*][1]" in text and topic in text)
    row = next(line for line in shown.splitlines() if topic in line)
    assert row.split()[1:3] == [topic, "2"], row  # name, then partitions


def _one_contact_on_the_topic(settings: Settings, job_id: str) -> dict[str, Any]:
    """A contact produced, Avro-framed with its registered schema, to a new ``contacts.raw``."""
    topic = settings.topic("contacts.raw")
    create_topics(settings, [topic], partitions=1)
    assert all(result.ok for result in register_schemas(settings))
    serde = Serde(settings)
    try:
        event_id = str(uuid.uuid4())
        contact: dict[str, Any] = {
            "event_id": event_id,
            "job_id": job_id,
            "source": "api",
            "event_time": int(time.time() * 1000),
            "email": f"ui-{event_id[:8]}@example.com",
        }
        produce(
            settings,
            topic,
            [(contact["email"].encode(), serde.serialize(contact, topic), None)],
        )
    finally:
        serde.close()
    return contact


def test_ui_decodes_avro_records_through_the_registry(
    settings: Settings, prefix: str, tmp_path: Path
) -> None:
    contact = _one_contact_on_the_topic(settings, "job-ui")
    event_id = contact["event_id"]
    # Avro binary holds no field names: seeing them proves the value was decoded with the
    # schema the registry returned for the record's schema id.
    decoded = f"'event_id': '{event_id}'"
    with served_ui(
        settings, tmp_path / "ui.log", "--topic", "contacts.raw", "--topic-prefix", prefix
    ) as ui:
        html = load_page(ui)
        with open_app(ui, html) as screen:
            shown = screen.wait_for(lambda text: decoded in text, timeout=60.0)
    assert contact["email"] in shown
    assert "'job_id': 'job-ui'" in shown


class SilentOnce:
    """An HTTP relay in front of the registry that never answers the first request whose path
    holds ``silent`` (it keeps the connection open, as the registry itself did now and then),
    and relays every other request."""

    def __init__(self, upstream: str, silent: str) -> None:
        assert upstream.startswith("http://"), upstream
        self.upstream = upstream.rstrip("/")
        self.silent = silent
        self.silenced: list[str] = []
        self.relayed: list[str] = []
        self._release = threading.Event()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if relay.silent in self.path and not relay.silenced:
                    relay.silenced.append(self.path)
                    relay._release.wait()
                    self.close_connection = True
                    return
                relay.relayed.append(self.path)
                request = urllib.request.Request(  # noqa: S310 - upstream is http://, checked
                    relay.upstream + self.path, headers={"Accept": self.headers["Accept"] or "*/*"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
                        status, body, kind = resp.status, resp.read(), resp.headers["Content-Type"]
                except urllib.error.HTTPError as exc:
                    status, body, kind = exc.code, exc.read(), exc.headers["Content-Type"]
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SilentOnce:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


def test_ui_outlasts_a_registry_request_that_is_never_answered(
    settings: Settings, prefix: str, tmp_path: Path
) -> None:
    """The registry once left the deserializer's first look-up unanswered and the tab waited
    for good; each request now has a deadline, after which the client asks again."""
    contact = _one_contact_on_the_topic(settings, "job-ui-2")
    event_id = contact["event_id"]
    registry = urllib.parse.urlsplit(settings.schema_registry_url)
    upstream = f"{registry.scheme}://{registry.netloc}"
    # The deserializer's first request for a record's subject (confluent-kafka 2.16).
    with SilentOnce(upstream, silent="/associations/") as relay:
        through_relay = settings.model_copy(
            update={"schema_registry_url": f"http://127.0.0.1:{relay.port}{registry.path}"}
        )
        with (
            served_ui(
                through_relay,
                tmp_path / "ui.log",
                "--topic",
                "contacts.raw",
                "--topic-prefix",
                prefix,
            ) as ui,
            open_app(ui, load_page(ui)) as screen,
        ):
            shown = screen.wait_for(lambda text: f"'event_id': '{event_id}'" in text, timeout=90.0)
    assert relay.silenced, f"the look-up to leave unanswered never came: {relay.relayed}"
    assert any("/associations/" in path for path in relay.relayed), relay.relayed
    assert contact["email"] in shown
    assert "'job_id': 'job-ui-2'" in shown


def _group_processes(pgid: int, script: str) -> list[int]:
    """The pids of process group ``pgid`` running ``script`` (``python <script> …``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ProcessLookupError):
            continue  # gone meanwhile
        if len(argv) > 1 and argv[1].endswith(script.encode()):
            found.append(int(entry.name))
    return found


def test_a_tabs_app_ends_when_the_server_is_gone(settings: Settings, tmp_path: Path) -> None:
    """The server killed outright (no chance to stop its apps): the tab's app ends by itself.
    An app once outlived its server, stuck in a call."""
    with (
        served_ui(settings, tmp_path / "ui.log", "--refresh", "0") as ui,
        open_app(ui, load_page(ui)) as screen,
    ):
        screen.wait_for(lambda text: re.search(r"Topics \[[1-9]\d*\]", text) is not None)
        apps = _group_processes(ui.proc.pid, "launch.py")
        servers = _group_processes(ui.proc.pid, "serve.py")
        assert len(apps) == 1, ui.output()
        assert len(servers) == 1, servers
        os.kill(servers[0], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while _group_processes(ui.proc.pid, "launch.py") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_processes(ui.proc.pid, "launch.py"), ui.output()
