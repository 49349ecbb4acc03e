"""``leadstream migrate``: bring the database schema to the latest revision."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError

from leadstream.db import current_revisions, head_revisions, upgrade
from leadstream.settings import Settings

console = Console()


def migrate(
    revision: Annotated[str, typer.Option(help="Target revision")] = "heads",
    check: Annotated[bool, typer.Option(help="Only report; exit 1 if not at head")] = False,
) -> None:
    """Apply database migrations (idempotent; run once before the services start)."""
    settings = Settings()
    try:
        if check:
            current, heads = current_revisions(settings), head_revisions()
            console.print(f"database at {_fmt(current)}, code at {_fmt(heads)}")
            if current != heads:
                raise typer.Exit(code=1)
            return
        upgrade(settings, revision)
        console.print(f"database migrated to {_fmt(current_revisions(settings))}")
    except OperationalError as exc:
        console.print(f"[red]error:[/] cannot reach the database: {exc.orig}", highlight=False)
        raise typer.Exit(code=1) from exc


def _fmt(revisions: frozenset[str]) -> str:
    return ", ".join(sorted(revisions)) or "empty"
