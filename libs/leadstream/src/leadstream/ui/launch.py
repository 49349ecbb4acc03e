"""Start kaskade with its registry client's numeric settings as numbers. Run by ``serve.py``
(one per browser tab) with kaskade's own interpreter: ``python launch.py <kaskade args>``.

kaskade hands every ``--registry key=value`` to confluent-kafka's ``SchemaRegistryClient``
as a string, and the client takes ``timeout`` (and the retry settings) only as numbers, so
without this a registry request has no deadline at all. Apicurio Registry 3.3.3 leaves about
one in a hundred requests to a path it does not serve unanswered (measured: 4 of 400 with
curl); confluent-kafka 2.16's deserializer asks one such path first (``/associations/…``,
for the topic's subject), and a tab waited on it for good. With a deadline the request times
out and the client's own retry asks again on a new connection.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

NUMERIC = ("timeout", "max.retries", "retries.wait.ms", "retries.max.wait.ms")
"""confluent-kafka registry-client settings that must be numbers."""
SERVER_PID_ENV = "LEADSTREAM_UI_SERVER_PID"
"""Set by ``serve.py``: the server whose tab this process serves. When it is gone, so is this
process, even one stuck in a call (an app once outlived the server that way)."""
WATCH_EVERY_S = 1.0


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not).

    Like ``leadstream.infra.process.pid_alive``, which this file cannot import: it runs in
    kaskade's environment, where LeadStream is not installed."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: the signal test is all there is
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def watch_server(pid: int, on_gone: Callable[[], object], every_s: float = WATCH_EVERY_S) -> None:
    """Call ``on_gone`` from a daemon thread once process ``pid`` no longer runs."""

    def run() -> None:
        while alive(pid):
            time.sleep(every_s)
        on_gone()

    threading.Thread(target=run, name="ui-server-watch", daemon=True).start()


def numeric_conf(conf: Mapping[str, Any]) -> dict[str, Any]:
    """``conf`` with the :data:`NUMERIC` settings given as text turned into numbers."""
    out = dict(conf)
    for key in NUMERIC:
        value = out.get(key)
        if isinstance(value, str):
            number = float(value)
            out[key] = int(number) if key != "timeout" and number.is_integer() else number
    return out


def with_numeric_conf(client_class: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
    """A drop-in for ``client_class`` that converts its configuration first."""

    def make(conf: dict[str, Any]) -> Any:
        return client_class(numeric_conf(conf))

    return make


def main(argv: list[str]) -> None:
    # Python put this file's folder first on the path, and it holds LeadStream's
    # ``kaskade.py``, which would shadow the kaskade package.
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    from kaskade import deserializers  # type: ignore[import-not-found]
    from kaskade.main import cli  # type: ignore[import-not-found]

    deserializers.SchemaRegistryClient = with_numeric_conf(deserializers.SchemaRegistryClient)
    server = os.environ.get(SERVER_PID_ENV, "")
    if server.isdigit():
        watch_server(int(server), lambda: os._exit(0))
    sys.argv = ["kaskade", *argv]
    cli()


if __name__ == "__main__":
    main(sys.argv[1:])
