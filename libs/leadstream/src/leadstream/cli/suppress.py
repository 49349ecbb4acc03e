"""``leadstream suppress add|remove|list|import``: the suppression list, by hand.

The running filter picks changes up within its refresh interval
(``LEADSTREAM_SUPPRESSION_REFRESH_S``, a few seconds), without a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from leadstream.db.contacts import DatabaseUnavailableError
from leadstream.db.engine import make_engine
from leadstream.db.suppressions import (
    InvalidSuppressionError,
    Kind,
    Suppression,
    SuppressionStore,
    parse_value,
    read_file,
)
from leadstream.settings import Settings

suppress_app = typer.Typer(
    help="Emails and domains the pipeline must never send to.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")


@contextmanager
def _store() -> Iterator[SuppressionStore]:
    engine = make_engine(Settings(), pool_size=1)
    try:
        yield SuppressionStore(engine)
    except DatabaseUnavailableError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    finally:
        engine.dispose()


def _parsed(values: list[str], parse: Callable[[str], T]) -> list[T]:
    try:
        return [parse(v) for v in values]
    except InvalidSuppressionError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from exc


@suppress_app.command("add")
def add(
    values: Annotated[list[str], typer.Argument(help="Emails, domains or @domains.")],
    reason: Annotated[str | None, typer.Option(help="Why (kept with the entry).")] = None,
    source: Annotated[str, typer.Option(help="Who adds it.")] = "operator",
) -> None:
    """Suppress emails and domains (``x.com`` or ``@x.com`` is a whole domain)."""
    entries = [Suppression(k, v, reason, source) for k, v in _parsed(values, parse_value)]
    with _store() as store:
        changed = store.add(entries)
    console.print(f"added {changed} (of {len(entries)} given; the rest were already suppressed)")


@suppress_app.command("remove")
def remove(
    values: Annotated[list[str], typer.Argument(help="Emails, domains or @domains.")],
) -> None:
    """Lift suppressions."""
    parsed = _parsed(values, parse_value)
    removed = 0
    with _store() as store:
        for kind in ("email", "domain"):
            picked = [v for k, v in parsed if k == kind]
            if picked:
                removed += store.remove(kind, picked)
    console.print(f"removed {removed} (of {len(parsed)} given)")


@suppress_app.command("list")
def list_entries(
    kind: Annotated[str | None, typer.Option(help="email or domain")] = None,
    include_removed: Annotated[bool, typer.Option("--all", help="Show removed ones too.")] = False,
) -> None:
    """Show the suppression list."""
    if kind not in (None, "email", "domain"):
        err.print("[bold red]error:[/] --kind is email or domain")
        raise typer.Exit(code=2)
    wanted: Kind | None = "email" if kind == "email" else "domain" if kind == "domain" else None
    with _store() as store:
        entries = store.entries(wanted, include_removed=include_removed)
    table = Table("kind", "value", "reason", "source", "added", "removed")
    for e in entries:
        table.add_row(
            e.kind,
            e.value,
            e.reason or "",
            e.source,
            f"{e.created_at:%Y-%m-%d %H:%M}",
            f"{e.removed_at:%Y-%m-%d %H:%M}" if e.removed_at else "",
        )
    console.print(table)
    console.print(f"{len(entries)} entries")


@suppress_app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="CSV (value[,reason]) or one value per line.")],
    reason: Annotated[str | None, typer.Option(help="Reason for rows without one.")] = None,
    source: Annotated[str, typer.Option(help="Who adds them.")] = "import",
) -> None:
    """Suppress every email/domain in a file, in one transaction."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot read {path}: {exc}", highlight=False)
        raise typer.Exit(code=2) from exc
    try:
        entries = read_file(text, reason=reason, source=source)
    except InvalidSuppressionError as exc:
        err.print(f"[bold red]error:[/] {path}: {exc}", highlight=False)
        raise typer.Exit(code=2) from exc
    with _store() as store:
        changed = store.add(entries)
    console.print(f"imported {len(entries)} entries from {path} ({changed} new or re-activated)")
