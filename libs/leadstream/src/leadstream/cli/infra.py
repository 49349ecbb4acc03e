"""``leadstream infra …`` (the local stack of real servers) and ``leadstream services …`` (the
pipeline's own processes): the same up/down/status commands over two lists of processes."""

from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from leadstream.infra import InfraError, Stack
from leadstream.infra.apps import app_servers

console = Console()
err = Console(stderr=True)


def _fail(exc: InfraError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    if exc.log_tail:
        err.print("[dim]--- last lines of its log ---[/]")
        err.print(exc.log_tail, markup=False, highlight=False)
    return typer.Exit(code=1)


def stack_app(what: str, names_help: str, make_stack: Callable[[], Stack]) -> typer.Typer:
    """A typer group with up, down, status and reset over the stack ``make_stack`` builds."""
    group = typer.Typer(help=f"Start, stop and inspect {what}.", no_args_is_help=True)
    names_arg = Annotated[list[str] | None, typer.Argument(help=names_help)]

    @group.command()
    def up(names: names_arg = None) -> None:
        """Start (idempotent) and wait until each is ready; on failure stop what was started."""
        try:
            make_stack().up(names, report=console.print)
        except InfraError as exc:
            raise _fail(exc) from exc

    @group.command()
    def down(names: names_arg = None) -> None:
        """Stop, in reverse order; leaves no process behind."""
        try:
            stopped = make_stack().down(names, report=console.print)
        except InfraError as exc:
            raise _fail(exc) from exc
        if not stopped:
            console.print("nothing was running")

    @group.command()
    def status() -> None:
        """Show each pid, ports and readiness; exit 1 unless all are ready."""
        rows = make_stack().status()
        table = Table("name", "pid", "ports", "ready", "log")
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

    @group.command()
    def reset(names: Annotated[list[str], typer.Argument(help="Whose data to delete")]) -> None:
        """Delete a stopped server's data (the fix for a corrupt data dir)."""
        try:
            make_stack().reset(names, report=console.print)
        except InfraError as exc:
            raise _fail(exc) from exc

    return group


infra_app = stack_app(
    "the local stack",
    "Servers to act on (default: all): postgres redis kafka ferretdb registry",
    Stack,
)
services_app = stack_app(
    "the pipeline's services on this machine",
    "Services (default: all): dns ingest audit registration-writer jobs filter verify batch "
    "bison-sync",
    lambda: Stack(servers=app_servers),
)
