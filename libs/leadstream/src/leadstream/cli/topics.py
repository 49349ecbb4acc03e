"""``leadstream topics apply|list``: the topic catalog on the configured cluster."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from leadstream.topics import CATALOG, ApplyReport, TopicError, TopicSettings, apply

topics_app = typer.Typer(help="Create and inspect the Kafka topics.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _duration(ms: str | None) -> str:
    if ms is None:
        return "-"
    value = int(ms)
    if value < 0:
        return "forever"
    days, rest = divmod(value, 86_400_000)
    return f"{days}d" if not rest else f"{value / 3_600_000:g}h"


@topics_app.command("list")
def list_topics() -> None:
    """Show the catalog: every topic with its schema, key, partitions and retention."""
    settings = TopicSettings()
    table = Table("topic", "schema", "key", "partitions", "replicas", "cleanup", "retention")
    for spec in CATALOG:
        plan = spec.plan(settings)
        table.add_row(
            plan.name,
            spec.value_schema or "[dim]raw bytes[/]",
            spec.key,
            str(plan.partitions),
            str(plan.replication_factor),
            plan.config.get("cleanup.policy", "-"),
            _duration(plan.config.get("retention.ms")),
        )
    console.print(table)


@topics_app.command("apply")
def apply_topics(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would change.")
    ] = False,
) -> None:
    """Create missing topics, add partitions and reset drifted config (idempotent).

    Exits 1 when drift remains that apply cannot fix (fewer partitions, replication).
    """
    try:
        report = apply(TopicSettings(), dry_run=dry_run)
    except TopicError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    _print(report)
    if not report.ok:
        raise typer.Exit(code=1)


def _print(report: ApplyReport) -> None:
    verb = "would" if report.dry_run else "did"
    if report.changes:
        table = Table("topic", "action", "setting", "current", "wanted", title=f"changes ({verb})")
        for c in report.changes:
            table.add_row(c.topic, c.action.value, c.setting, c.current or "-", c.wanted)
        console.print(table)
    for title, drifts in (
        ("cannot fix", report.unfixable),
        ("not in the catalog", report.unmanaged),
    ):
        if drifts:
            table = Table("topic", "setting", "current", "wanted", "why", title=title)
            for d in drifts:
                table.add_row(d.topic, d.setting, d.current or "-", d.wanted or "-", d.reason)
            console.print(table)
    unchanged = len(report.topics) - len({c.topic for c in report.changes})
    console.print(
        f"{len(report.topics)} topics, {len(report.changes)} changes ({verb}), "
        f"{unchanged} unchanged, {len(report.unfixable)} unfixable"
    )
