"""``leadstream infra up|down|status|reset``: the local stack of real servers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from leadstream.infra import InfraError, Stack

infra_app = typer.Typer(help="Start, stop and inspect the local stack.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

Names = Annotated[
    list[str] | None,
    typer.Argument(help="Servers to act on (default: all): postgres redis kafka ferretdb registry"),
]


def _fail(exc: InfraError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    if exc.log_tail:
        err.print("[dim]--- last lines of its log ---[/]")
        err.print(exc.log_tail, markup=False, highlight=False)
    return typer.Exit(code=1)


@infra_app.command()
def up(names: Names = None) -> None:
    """Start every server (idempotent) and wait until each is ready."""
    try:
        Stack().up(names, report=console.print)
    except InfraError as exc:
        raise _fail(exc) from exc


@infra_app.command()
def down(names: Names = None) -> None:
    """Stop every server; leaves no process behind."""
    try:
        stopped = Stack().down(names, report=console.print)
    except InfraError as exc:
        raise _fail(exc) from exc
    if not stopped:
        console.print("nothing was running")


@infra_app.command()
def status() -> None:
    """Show each server's pid, ports and readiness; exit 1 unless all are ready."""
    rows = Stack().status()
    table = Table("server", "pid", "ports", "ready", "log")
    for row in rows:
        table.add_row(
            row.name,
            str(row.pid or "-"),
            ",".join(map(str, row.ports)),
            "[green]yes[/]" if row.ready else "[red]no[/]",
            row.log_file,
        )
    console.print(table)
    if not all(row.ready for row in rows):
        raise typer.Exit(code=1)


@infra_app.command()
def reset(names: Annotated[list[str], typer.Argument(help="Servers whose data to delete")]) -> None:
    """Delete a stopped server's data (the fix for a corrupt data dir)."""
    try:
        Stack().reset(names, report=console.print)
    except InfraError as exc:
        raise _fail(exc) from exc
