"""``leadstream replay STAGE``: run a stage again over a time range, an offset range or a job."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from leadstream.ops.replay import (
    STAGE_INPUTS,
    MethodChoice,
    ReplayError,
    ReplayPlan,
    Selection,
    execute_audited,
    parse_when,
    plan,
)
from leadstream.settings import Settings

console = Console()
err = Console(stderr=True)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def show_plan(p: ReplayPlan, out: Console = console) -> None:
    """The plan as an operator reads it: what, how, why, and how many per partition."""
    s = p.selection
    what = []
    if s.since_ms is not None or s.until_ms is not None:
        what.append(f"time {_when(s.since_ms)} → {_when(s.until_ms)}")
    if s.from_offset is not None or s.to_offset is not None:
        what.append(f"offsets {s.from_offset or 0}..{'' if s.to_offset is None else s.to_offset}")
    if s.job_id:
        what.append(f"job {s.job_id}")
    out.print(f"[bold]replay {p.replay_id}[/] of stage [bold]{p.stage}[/] ({p.group})")
    out.print(f"selection: {', '.join(what) or 'everything retained'}")
    out.print(f"method: [bold]{p.method}[/] — {p.reason}")
    table = Table("topic", "partition", "from", "to (excl.)", "records", "with job id")
    for r in p.partitions:
        table.add_row(
            r.topic, str(r.partition), str(r.start), str(r.end), str(r.records), str(r.with_job)
        )
    out.print(table)
    out.print(f"total: [bold]{p.total}[/] record(s) in {len(p.partitions)} partition(s)")
    for w in p.warnings:
        out.print(f"[yellow]note:[/] {w}")


def replay(
    stage: Annotated[str, typer.Argument(help=f"Stage: {', '.join(STAGE_INPUTS)}")],
    since: Annotated[
        str | None, typer.Option(help="From this time: ISO 8601 or an age (2h, 30m, 1d)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to this time (excluded); default now")
    ] = None,
    partition: Annotated[int | None, typer.Option(help="Only this partition")] = None,
    from_offset: Annotated[int | None, typer.Option(help="First offset (with --partition)")] = None,
    to_offset: Annotated[
        int | None, typer.Option(help="Last offset, included (with --partition)")
    ] = None,
    job: Annotated[str | None, typer.Option(help="Only the records of this job id")] = None,
    topic: Annotated[
        str | None, typer.Option(help="Only this input topic (stages with several inputs)")
    ] = None,
    method: Annotated[
        str, typer.Option(help="auto (default), reset (rewind the group) or republish")
    ] = "auto",
    replay_id: Annotated[
        str | None, typer.Option(help="Resume or re-run this replay (default: a new id)")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only show the plan and the counts")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before acting")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan/result as JSON")] = False,
) -> None:
    """Replay a stage: re-run it over records of its input topics it has already handled.

    Rewinds the stage's consumer group when the stage is stopped (records re-read in place), or
    re-publishes the selected records, marked with replay.id/replay.of, when it runs or a job
    is selected. Shows the plan and counts first; see docs/operations.md ("Replay").
    """
    if method not in ("auto", "reset", "republish"):
        err.print("[red]error:[/] --method is auto, reset or republish")
        raise typer.Exit(2)
    settings = Settings()
    try:
        selection = Selection(
            since_ms=parse_when(since) if since else None,
            until_ms=parse_when(until) if until else None,
            partition=partition,
            from_offset=from_offset,
            to_offset=to_offset,
            job_id=job,
            topic=topic,
        )
        choice: MethodChoice = method  # type: ignore[assignment]
        p = plan(settings, stage, selection, method=choice, replay_id=replay_id)
    except ReplayError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    show = err if as_json else console
    show_plan(p, show)
    if dry_run:
        if as_json:
            console.print_json(json.dumps({"plan": p.to_dict(), "dry_run": True}))
        return
    if p.total == 0 and p.method == "republish":
        show.print("nothing to replay")
        if as_json:
            console.print_json(json.dumps({"plan": p.to_dict(), "result": None}))
        return
    if not yes and not typer.confirm(f"{p.method} {p.total} record(s)?", err=as_json):
        show.print("not done")
        raise typer.Exit(1)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=show,
            transient=as_json,
        ) as bar:
            task = bar.add_task(f"{p.method} {p.stage}", total=p.total)
            result = execute_audited(
                settings,
                p,
                lambda n: bar.update(task, completed=n),
                actor=f"operator:{getpass.getuser()}",
            )
    except ReplayError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if result.method == "reset":
        show.print(
            f"rewound {p.group} on {result.partitions} partition(s): the stage re-reads "
            f"{result.records} record(s) when it starts"
        )
    else:
        show.print(
            f"re-published {result.records} record(s) (replay.id={result.replay_id}); "
            f"a rerun with --replay-id {result.replay_id} publishes nothing twice"
        )
    if as_json:
        out = {"plan": p.to_dict(), "result": {"method": result.method, "records": result.records}}
        console.print_json(json.dumps(out))
