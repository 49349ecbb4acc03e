"""``leadstream status [--watch]``: the pipeline at a glance, from Kafka."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from leadstream.ops.status import PipelineStatus, StatusReader, with_rates
from leadstream.settings import Settings

console = Console()


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


def render(status: PipelineStatus) -> Group:
    stages = Table(
        "stage",
        "group state",
        "instances",
        "lag",
        "lag by partition",
        "in",
        "dead letters",
        title="Stages",
    )
    for st in status.stages:
        by_part = " ".join(f"{p.partition}:{p.lag}" for p in st.partitions if p.lag) or "-"
        stages.add_row(
            st.stage,
            st.state,
            str(st.members),
            f"{st.lag:,}",
            by_part[:60],
            _rate(st.rate_in),
            f"{st.dead_letters:,}",
        )
    topics = Table("topic", "records", "appended", title="Topics")
    for t in status.topics:
        topics.add_row(t.topic, f"{t.end_total:,}", _rate(t.rate))
    return Group(stages, topics)


def status(
    watch: Annotated[bool, typer.Option(help="Refresh until interrupted")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between snapshots")] = 2.0,
) -> None:
    """Per stage: consumer group state, instances, lag per partition, rate, dead letters."""
    reader = StatusReader(Settings())
    before = reader.snapshot()
    time.sleep(interval)
    current = with_rates(before, reader.snapshot())
    if not watch:
        console.print(render(current))
        return
    with Live(render(current), console=console, refresh_per_second=2) as live:
        try:
            while True:
                time.sleep(interval)
                current = with_rates(current, reader.snapshot())
                live.update(render(current))
        except KeyboardInterrupt:
            pass
