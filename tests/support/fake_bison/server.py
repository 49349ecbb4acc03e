"""Serve the fake on a loopback port, in a thread of the test process."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn

from tests.support.fake_bison.app import create_app
from tests.support.fake_bison.fake import FakeBison


class FakeBisonServer:
    """``with FakeBisonServer(fake) as server: server.url`` (``http://127.0.0.1:<port>``)."""

    def __init__(self, fake: FakeBison, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = fake
        config = uvicorn.Config(
            create_app(fake),
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            ws="none",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-bison", daemon=True)
        self.url = ""

    def start(self) -> FakeBisonServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Email Bison did not start")
            time.sleep(0.01)
        sock = self._server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def __enter__(self) -> FakeBisonServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
