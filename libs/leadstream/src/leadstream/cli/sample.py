"""``leadstream sample run|generate|dns``: the whole pipeline on a generated contact list."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from leadstream.demo import run as sample_run
from leadstream.demo.sample import dns_zone, write_sample
from leadstream.devtools.dns_server import DnsServer
from leadstream.infra import InfraError, InfraSettings

sample_app = typer.Typer(help="Run the pipeline on a generated sample list.", no_args_is_help=True)
console = Console()


@sample_app.command()
def generate(
    path: Annotated[Path, typer.Argument(help="CSV file to write")],
    rows: Annotated[int, typer.Option(help="Data rows")] = 10_000,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same file)")] = None,
) -> None:
    """Write a sample contact list with duplicates, bad rows, role and disposable addresses."""
    stats = write_sample(path, rows, seed)
    console.print(f"wrote {stats.rows:,} rows to {path}: {dict(stats.kinds)}")


@sample_app.command()
def dns(port: Annotated[int, typer.Option(help="UDP and TCP port on 127.0.0.1")] = 5353) -> None:
    """Answer DNS for the sample's domains on loopback (public DNS is out of reach here)."""
    server = DnsServer(dns_zone()).start(port)
    console.print(f"sample DNS on {server.address} for {len(server.zones)} domains")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@sample_app.command("run")
def run_(
    rows: Annotated[int, typer.Option(help="Rows in the generated list")] = 10_000,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds")] = 900,
) -> None:
    """Prepare, start every service, upload the sample list and follow its job to the end."""
    cfg = InfraSettings().resolved()
    settings = sample_run.local_settings(cfg)
    api = f"http://{cfg.host}:8000"
    try:
        token = sample_run.prepare(settings, console.print)
        sample_run.start_services(console.print)
    except InfraError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        if exc.log_tail:
            console.print(exc.log_tail, markup=False, highlight=False)
        raise typer.Exit(code=1) from exc
    path = cfg.state_dir / "sample" / "contacts.csv"
    stats = write_sample(path, rows)
    console.print(f"sample list: {stats.rows:,} rows ({path})")
    started = time.monotonic()
    accepted = sample_run.upload(api, token, path)
    console.print(
        f"upload: job {accepted['job_id']}, {accepted['rows_accepted']:,} rows accepted, "
        f"{accepted['rows_rejected']:,} refused at ingest"
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("pipeline", total=accepted["rows_accepted"], info="")

        def show(state: dict[str, Any]) -> None:
            done = _done(state)
            rate = state.get("rate_per_s") or 0
            bar.update(task, completed=done, info=f"{state.get('status')} · {rate:,.0f}/s")

        final = sample_run.follow(api, token, accepted["job_id"], show, timeout)
    console.print(summary(accepted, final, time.monotonic() - started))
    key_file = path.parent / "api-key.txt"
    key_file.write_text(token + "\n")
    console.print(
        f"\nAPI docs        {api}/docs\n"
        f"Status page     {api}/ui (API key: {key_file})\n"
        f"Job             {api}/v1/jobs/{accepted['job_id']}\n"
        f"Kafka UI        leadstream ui → http://{cfg.host}:8086/\n"
        f"In the terminal leadstream status --watch\n"
        f"Services        leadstream services status   ·   stop all: make stop",
        highlight=False,
    )


def _done(state: dict[str, Any]) -> int:
    counts = state.get("counts") or {}
    return (
        int(counts.get("contacts.rejected", 0))
        + int(counts.get("contacts.verified", 0))
        + int(sum(v for k, v in counts.items() if k in ("dlq.filter", "dlq.verify")))
    )


def summary(accepted: dict[str, Any], state: dict[str, Any], elapsed: float) -> Table:
    table = Table("", "count", title=f"Job {state.get('status')} in {elapsed:,.1f} s")
    table.add_row("rows in the file", f"{accepted['rows_total']:,}")
    table.add_row("refused at ingest (row errors)", f"{accepted['rows_rejected']:,}")
    table.add_row("accepted", f"{accepted['rows_accepted']:,}")
    for reason, n in sorted((state.get("rejected_by_reason") or {}).items()):
        table.add_row(f"  rejected: {reason}", f"{n:,}")
    for verdict, n in sorted((state.get("verdicts") or {}).items()):
        table.add_row(f"  verified: {verdict}", f"{n:,}")
    table.add_row("batched", f"{state.get('batched', 0):,}")
    table.add_row("synced to Email Bison (dry run)", f"{state.get('synced', 0):,}")
    return table
