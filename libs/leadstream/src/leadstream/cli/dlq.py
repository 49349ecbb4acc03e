"""``leadstream dlq list|show|redrive``: dead letters per stage."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from leadstream.ops import pending, redrive, summarize
from leadstream.runtime import deadletter as dl
from leadstream.settings import Settings
from leadstream.topics import DLQ_STAGES

dlq_app = typer.Typer(help="Inspect and redrive dead-letter topics.", no_args_is_help=True)
console = Console()
Stage = Annotated[str, typer.Argument(help=f"Stage: {', '.join(DLQ_STAGES)}")]


def _when(ms: str | int | None) -> str:
    if ms is None or not str(ms).isdigit():
        return "-"
    return dt.datetime.fromtimestamp(int(ms) / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@dlq_app.command("list")
def list_() -> None:
    """Pending dead letters per stage, by error class."""
    settings = Settings()
    table = Table("stage", "topic", "pending", "by error", "oldest (UTC)")
    for stage in DLQ_STAGES:
        s = summarize(settings, stage)
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(s.by_error.items())) or "-"
        table.add_row(stage, s.topic, str(s.pending), errors, _when(s.oldest_ms))
    console.print(table)


@dlq_app.command()
def show(
    stage: Stage,
    limit: Annotated[int, typer.Option(help="Show at most this many")] = 20,
) -> None:
    """Pending dead letters of a stage: where they came from and why they failed."""
    table = Table("partition@offset", "source", "error", "message", "redrives", "when (UTC)")
    for r in pending(Settings(), stage, limit):
        source = f"{r.header(dl.SOURCE_TOPIC)}[{r.header(dl.SOURCE_PARTITION)}]"
        source += f"@{r.header(dl.SOURCE_OFFSET)}"
        table.add_row(
            f"{r.partition}@{r.offset}",
            source,
            r.header(dl.ERROR_CLASS) or "-",
            (r.header(dl.ERROR_MESSAGE) or "")[:120],
            str(r.redrive_count),
            _when(r.header(dl.TIME)),
        )
    console.print(table)


@dlq_app.command("redrive")
def redrive_(
    stage: Stage,
    dry_run: Annotated[bool, typer.Option(help="Only count what would be redriven")] = False,
    limit: Annotated[int | None, typer.Option(help="Redrive at most this many")] = None,
) -> None:
    """Re-publish pending dead letters to their source topics (after a fix), exactly once."""
    moved = redrive(Settings(), stage, dry_run=dry_run, limit=limit)
    verb = "would redrive" if dry_run else "redrove"
    console.print(f"{stage}: {verb} {len(moved)} dead letter(s)")
