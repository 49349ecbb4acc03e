"""``leadstream keys create|list|revoke``: API keys of the ingest HTTP API.

Creating and revoking a key are recorded on ``audit.events`` (``apikey.created`` /
``apikey.revoked``, actor ``operator:<user>``) for the audit sink.
"""

from __future__ import annotations

import getpass
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from confluent_kafka import Producer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError, ProgrammingError

from leadstream.db import make_engine
from leadstream.db.api_keys import SCOPES, ApiKey, ApiKeyStore, UnknownScopeError
from leadstream.events import EventSettings, Serde
from leadstream.settings import Settings

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@contextmanager
def _store() -> Iterator[ApiKeyStore]:
    engine = make_engine(Settings(), pool_size=1)
    try:
        yield ApiKeyStore(engine)
    except OperationalError as exc:
        err.print(f"[red]error:[/] cannot reach the database: {exc.orig}", highlight=False)
        raise typer.Exit(code=1) from exc
    except ProgrammingError as exc:
        err.print("[red]error:[/] the api_keys table is missing; run `leadstream migrate`")
        raise typer.Exit(code=1) from exc
    finally:
        engine.dispose()


def _as_dict(key: ApiKey) -> dict[str, object]:
    return {
        "key_id": key.key_id,
        "name": key.name,
        "scopes": list(key.scopes),
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def _audit(action: str, key: ApiKey) -> None:
    """Record the change on ``audit.events`` (best effort: the key change already happened)."""
    settings = EventSettings()
    event_id = str(uuid.uuid4())
    record: dict[str, object] = {
        "event_id": event_id,
        "job_id": None,
        "source": "cli",
        "event_time": int(time.time() * 1000),
        "actor": f"operator:{getpass.getuser()}",
        "action": action,
        "target_type": "api_key",
        "target_id": key.key_id,
        "request_id": None,
        "outcome": "ok",
        "details": {"name": key.name, "scopes": ",".join(key.scopes)},
    }
    try:
        with Serde(settings) as serde:
            data = serde.serialize(record, "audit.events")
        producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "message.timeout.ms": 10_000,
            }
        )
        failed: list[object] = []
        producer.produce(
            settings.topic("audit.events"),
            data,
            event_id,
            on_delivery=lambda e, _m: failed.append(e) if e is not None else None,
        )
        if producer.flush(15) or failed:
            raise RuntimeError(f"not acknowledged: {failed[0] if failed else 'timeout'}")
    except Exception as exc:  # the key change stands; say the audit trail missed it
        err.print(f"[yellow]warning:[/] {action} not recorded on audit.events: {exc}")


def _emit(as_json: bool, data: object, human: Callable[[], None]) -> None:
    if as_json:
        typer.echo(json.dumps(data))
    else:
        human()


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scope: Annotated[
        list[str] | None, typer.Option(help=f"Scope, repeatable: {', '.join(SCOPES)}.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Create a key and print its token (shown once; only its hash is stored)."""
    with _store() as store:
        try:
            new = store.create(name, scope or ["ingest"])
        except UnknownScopeError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(code=2) from exc
    _audit("apikey.created", new.key)

    def human() -> None:
        console.print(f"created {new.key.key_id} ({', '.join(new.key.scopes)}) for {name!r}")
        console.print("token (shown once, store it now):", highlight=False)
        typer.echo(new.token)

    _emit(as_json, {**_as_dict(new.key), "token": new.token}, human)


@keys_app.command("list")
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List keys (ids, names, scopes, state; never tokens)."""
    with _store() as store:
        keys = store.list()

    def human() -> None:
        table = Table()
        table.add_column("key id", no_wrap=True)
        for header in ("name", "scopes", "created", "state"):
            table.add_column(header)
        for k in keys:
            state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
            table.add_row(k.key_id, k.name, ",".join(k.scopes), f"{k.created_at:%Y-%m-%d}", state)
        console.print(table)

    _emit(as_json, [_as_dict(k) for k in keys], human)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key id (key_…).")]) -> None:
    """Revoke a key: requests with its token are refused (401) from now on."""
    with _store() as store:
        key = store.revoke(key_id)
    if key is None:
        err.print(f"[red]error:[/] no key {key_id!r}", highlight=False)
        raise typer.Exit(code=1)
    _audit("apikey.revoked", key)
    console.print(f"revoked {key.key_id} ({key.name})", highlight=False)
