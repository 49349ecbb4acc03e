"""``leadstream schemas register|check``: the event schemas in the schema registry."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from leadstream.events import (
    EventError,
    EventSettings,
    check_schemas,
    register_schemas,
)

schemas_app = typer.Typer(help="Register and check the Avro event schemas.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _fail(exc: EventError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code=1)


@schemas_app.command()
def register() -> None:
    """Register every topic's value schema (subject <topic>-value), compatibility BACKWARD."""
    try:
        results = register_schemas(EventSettings())
    except EventError as exc:
        raise _fail(exc) from exc
    table = Table("subject", "schema", "id", "compatibility", "result")
    for r in results:
        outcome = "[green]ok[/]" if r.ok else f"[red]{r.error}[/]"
        table.add_row(r.subject, r.schema, str(r.schema_id or "-"), r.compatibility or "-", outcome)
    console.print(table)
    if not all(r.ok for r in results):
        raise typer.Exit(code=1)


@schemas_app.command()
def check() -> None:
    """Check each repo schema against the registry's latest version (compatibility endpoint).

    Exits 1 when the registry would refuse one.
    """
    try:
        checks = check_schemas(EventSettings())
    except EventError as exc:
        raise _fail(exc) from exc
    table = Table("subject", "schema", "latest", "status", "why")
    colour = {"incompatible": "red", "unregistered": "yellow"}
    for c in checks:
        status = f"[{colour.get(c.status.value, 'green')}]{c.status.value}[/]"
        table.add_row(
            c.subject, c.schema, str(c.latest_version or "-"), status, "; ".join(c.messages)
        )
    console.print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(code=1)
