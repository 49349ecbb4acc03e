"""``leadstream ui``: browse topics, consumer groups and Avro records in the browser."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from leadstream.errors import ConfigError
from leadstream.settings import Settings
from leadstream.ui import KASKADE, TEXTUAL_SERVE, plan_ui


def ui(
    port: Annotated[int, typer.Option(help="Port of the web page")] = 8086,
    host: Annotated[str, typer.Option(help="Address to bind (keep it local)")] = "127.0.0.1",
    topic: Annotated[
        str | None,
        typer.Option(help="Open this topic's records (logical name) instead of the topic list"),
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(help="Topic prefix (default: LEADSTREAM_TOPIC_PREFIX)")
    ] = None,
    refresh: Annotated[
        int, typer.Option(help="Seconds between topic-list refreshes (0: press Ctrl+R)", min=0)
    ] = 5,
    public_url: Annotated[
        str | None, typer.Option(help="URL a browser reaches this server at (behind a tunnel)")
    ] = None,
) -> None:
    """Serve a Kafka UI (kaskade, through textual-serve) at http://HOST:PORT/.

    Without --topic: topics, partitions, record counts and consumer groups with their lag.
    With --topic: that topic's records, values decoded with their Avro schemas from the
    registry. kaskade runs in its own environment (uv tool run); the first start downloads it.
    """
    overrides = {} if topic_prefix is None else {"topic_prefix": topic_prefix}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    try:
        plan = plan_ui(
            settings,
            host=host,
            port=port,
            topic=topic,
            public_url=public_url,
            refresh_s=refresh,
        )
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"Kafka UI ({KASKADE} via {TEXTUAL_SERVE}): {plan.url}", err=True)
    typer.echo(f"  broker {settings.kafka_bootstrap}, registry {settings.schema_registry_url}")
    sys.stdout.flush()
    sys.stderr.flush()
    # The server takes over this process: Ctrl+C and SIGTERM reach it directly.
    os.execv(plan.argv[0], plan.argv)  # noqa: S606 - our own argv, no shell
