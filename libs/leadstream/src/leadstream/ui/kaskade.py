"""kaskade (a Kafka TUI) for our stack, served to the browser by textual-serve.

kaskade runs in an environment of its own, made and cached by ``uv tool run``, never in
LeadStream's: kaskade 5.1.0 resolves with our confluent-kafka (it needs >= 2.15), but through
``aws-msk-iam-sasl-signer-python`` it brings botocore, which pins ``python-dateutil < 3`` and
would move the product's locked 4.0 back (faust's croniter reads it), plus grpcio-tools and
protobuf for deserializers we do not use. Keeping it out also keeps it out of the service image.

Two views:

- *admin* (no topic): topics with partitions, record counts, consumer groups and their lag;
- *consumer* (a topic): the topic's records from the earliest offset, read ``read_committed``,
  keys as text and values decoded with the Avro schema named in each record (the Confluent
  wire format) from the registry's Confluent-compatible API, each registry request with a
  deadline (``launch.py``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from leadstream.errors import ConfigError
from leadstream.settings import Settings

KASKADE = "kaskade==5.1.0"
TEXTUAL_SERVE = "textual-serve==1.1.3"
SERVE_SCRIPT = Path(__file__).with_name("serve.py")
"""Runs inside kaskade's environment (it imports textual-serve, which ours does not have)."""
REGISTRY_TIMEOUT_S = 10.0
"""Deadline of each registry request a tab makes (``launch.py`` explains why one is needed)."""


def kaskade_args(settings: Settings, topic: str | None = None, *, refresh_s: int = 5) -> list[str]:
    """kaskade's command line: admin mode (its topic list refreshed every ``refresh_s``, 0 =
    only on demand), or consumer mode on ``topic`` (a physical name)."""
    bootstrap = ["-b", settings.kafka_bootstrap]
    if topic is None:
        return ["admin", *bootstrap, "--refresh-interval", str(refresh_s)]
    return [
        "consumer",
        *bootstrap,
        "-t",
        topic,
        "--earliest",
        "--kafka",
        "isolation.level=read_committed",
        "-k",
        "string",
        "-v",
        "registry",
        "--registry",
        f"url={settings.schema_registry_url}",
        "--registry",
        f"timeout={REGISTRY_TIMEOUT_S:g}",
        "--fallback",
        "encoding=escaped",
    ]


@dataclass(frozen=True)
class UiPlan:
    """What ``leadstream ui`` runs: the command line and the address it serves."""

    argv: list[str]
    host: str
    port: int
    public_url: str

    @property
    def url(self) -> str:
        return self.public_url + "/"


def plan_ui(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8086,
    topic: str | None = None,
    public_url: str | None = None,
    refresh_s: int = 5,
    uv: str | None = None,
) -> UiPlan:
    """The command that serves kaskade on ``host:port``; ``topic`` is a logical name.

    ``public_url`` is where a browser reaches the server (the page's websocket points there);
    it defaults to ``http://host:port``.
    """
    # ``uv run`` names itself in UV; otherwise look on the PATH.
    uv_path = uv or os.environ.get("UV") or shutil.which("uv")
    if uv_path is None:
        raise ConfigError("leadstream ui needs uv on the PATH (it runs kaskade with uv tool run)")
    physical = settings.topic(topic) if topic else None
    url = (public_url or f"http://{host}:{port}").rstrip("/")
    title = f"LeadStream · {physical}" if physical else "LeadStream · Kafka"
    argv = [
        uv_path,
        "tool",
        "run",
        "--from",
        KASKADE,
        "--with",
        TEXTUAL_SERVE,
        "python",
        str(SERVE_SCRIPT),
        "--host",
        host,
        "--port",
        str(port),
        "--public-url",
        url,
        "--title",
        title,
        "--",
        *kaskade_args(settings, physical, refresh_s=refresh_s),
    ]
    return UiPlan(argv=argv, host=host, port=port, public_url=url)
