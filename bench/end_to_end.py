"""The whole pipeline end to end on a generated list, then the Celery baseline on the same file.

    uv run python -m bench.end_to_end [--rows 1000000] [--no-celery] [--no-write]

Ours: every service as its own process (``leadstream.infra.apps``, as ``leadstream sample
run`` starts them: the sample's loopback DNS, bison-sync in dry run), the list uploaded to the
real ingest (``POST /v1/uploads``), the job followed through the public API until it is
completed and every deliverable contact is batched and synced. Measured: contacts/s overall
(upload start → job settled), each stage's own rate (its count in the job state, from its
first to its last increase, polled every 0.5 s), the time to 202, and each service's peak RSS
(VmHWM, read from /proc before the services are stopped) and CPU seconds.

Celery baseline: ``bench/celery_baseline`` (same filter, verify and batch code; Celery 5 with
the local Redis as broker and result backend, ``celery worker -c 2``, prefetch 1, late acks,
a chord over tasks of 1,000 rows) on the same CSV, after our services are stopped. Its rate is
rows accepted / (start reading the CSV → the chord's result). Ratio: ours / Celery.

The services must not be running already (``make stop``); they use the fixed local ports
(8000, 9101-9108, 6066, 5353) and the default database and topics, as the sample run does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    append_results,
    load_average,
    machine_cpu_seconds,
    peak_rss_mib,
    proc_tree,
    tree_cpu_seconds,
)
from leadstream.demo import run as sample_run
from leadstream.demo.sample import write_sample
from leadstream.infra import InfraSettings, Stack
from leadstream.infra.apps import app_servers

ROOT = Path(__file__).resolve().parents[1]
CELERY = "celery[redis]==5.7.0"
STAGES = ("filter", "verify", "batch", "bison-sync")


def stage_counts(state: dict[str, Any]) -> dict[str, int]:
    counts = state.get("counts") or {}
    return {
        "filter": int(counts.get("contacts.filtered", 0)) + int(counts.get("contacts.rejected", 0)),
        "verify": int(counts.get("contacts.verified", 0)),
        "batch": int(state.get("batched", 0)),
        "bison-sync": int(state.get("synced", 0)),
    }


def stage_rates(history: list[tuple[float, dict[str, int]]]) -> dict[str, dict[str, float]]:
    """Per stage: its final count, when it first and last moved (s after the upload began)."""
    out: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        final = history[-1][1][stage]
        first = next((t for t, c in history if c[stage] > 0), None)
        last = next((t for t, c in history if c[stage] >= final), None)
        if final and first is not None and last is not None:
            span = max(last - first, 0.5)
            out[stage] = {"count": final, "first": first, "last": last, "rate": final / span}
    return out


def run_ours(path: Path, timeout: float) -> dict[str, Any]:
    cfg = InfraSettings().resolved()
    settings = sample_run.local_settings(cfg)
    api = f"http://{cfg.host}:8000"
    services = Stack(cfg, servers=app_servers)
    running = [s.name for s in services.status() if s.pid is not None]
    if running:
        raise SystemExit(f"services already running ({', '.join(running)}): `make stop` first")
    token = sample_run.prepare(settings, print)
    try:
        services.up(report=print)
        pids = {s.name: s.pid for s in services.status() if s.pid is not None}
        stack = {s.name: s.pid for s in Stack(cfg).status() if s.pid is not None}
        cpu0 = {n: tree_cpu_seconds(pid) for n, pid in pids.items()}
        stack0 = {n: tree_cpu_seconds(pid) for n, pid in stack.items()}
        machine0 = machine_cpu_seconds()
        load_start = load_average()
        history: list[tuple[float, dict[str, int]]] = []
        t0 = time.monotonic()
        accepted = sample_run.upload(api, token, path)
        t202 = time.monotonic() - t0
        print(f"upload accepted in {t202:.1f} s: {accepted['rows_accepted']:,} rows")

        completed: list[float] = []

        def on_state(state: dict[str, Any]) -> None:
            now = time.monotonic() - t0
            history.append((now, stage_counts(state)))
            if state.get("status") == "completed" and not completed:
                completed.append(now)

        final = sample_run.follow(api, token, accepted["job_id"], on_state, timeout)
        elapsed = time.monotonic() - t0
        load_end = load_average()
        rss = {
            n: (peak_rss_mib(pid), sum(peak_rss_mib(p) for p in proc_tree(pid)))
            for n, pid in pids.items()
        }
        cpu = {n: tree_cpu_seconds(pid) - cpu0[n] for n, pid in pids.items()}
        stack_cpu = {n: tree_cpu_seconds(pid) - stack0[n] for n, pid in stack.items()}
        machine1 = machine_cpu_seconds()
    finally:
        services.down(report=print)
    return {
        "accepted": accepted,
        "final": final,
        "seconds": elapsed,
        "completed": completed[0] if completed else elapsed,
        "t202": t202,
        "stages": stage_rates(history),
        "rss": rss,
        "cpu": cpu,
        "stack_cpu": stack_cpu,
        "machine_cpu": (machine1[0] - machine0[0], machine1[1] - machine0[1]),
        "load": (load_start, load_end),
    }


def run_celery(path: Path, chunk: int, concurrency: int, timeout: float) -> dict[str, Any]:
    argv = ["uv", "run", "--frozen", "--with", CELERY, "python", "-m",
            "bench.celery_baseline.run", "--csv", str(path), "--chunk", str(chunk),
            "--concurrency", str(concurrency), "--timeout", str(timeout)]  # fmt: skip
    load_start = load_average()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout + 300)
    if done.returncode != 0:
        raise RuntimeError(f"celery baseline failed: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = (load_start, load_average())
    return result


def report(rows: int, ours: dict[str, Any], celery: dict[str, Any] | None, cmd: str) -> str:
    acc = ours["accepted"]
    final = ours["final"]
    rate = acc["rows_accepted"] / ours["seconds"]
    outcomes = acc["rows_accepted"] / ours["completed"]
    lines = [
        f"A generated sample list of {rows:,} rows (`leadstream.demo.sample`: company and free "
        "addresses, ~6% duplicates, ~3% invalid, role accounts, disposable domains, a typo "
        f"domain; {acc['rows_rejected']:,} rows refused at ingest) uploaded to the real ingest; "
        "every service its own process on the local stack (loopback DNS for the sample's "
        "domains, bison-sync in dry run), one process per service. "
        f"Command: `{cmd}`.\n",
        "**Ours** (upload start → job completed, every deliverable contact batched and synced):\n",
        "| measure | value |\n|---|---|",
        f"| contacts accepted by ingest | {acc['rows_accepted']:,} |",
        f"| time to 202 (upload acknowledged) | {ours['t202']:.1f} s |",
        f"| every contact has its outcome (job completed) | {ours['completed']:.1f} s "
        f"({outcomes:,.0f} contacts/s) |",
        f"| end to end | {ours['seconds']:.1f} s → **{rate:,.0f} contacts/s** (target ≥ 10,000) |",
        f"| rejected by the filter | {sum((final.get('rejected_by_reason') or {}).values()):,} |",
        f"| verdicts | {_fmt(final.get('verdicts') or {})} |",
        f"| batched / synced (dry run) | {final.get('batched', 0):,} / "
        f"{final.get('synced', 0):,} |",
        f"| machine load average (1/5/15 min) at start → end | {ours['load'][0]} → "
        f"{ours['load'][1]} |",
        "",
        "| stage | contacts | first → last increase (s after upload start) | contacts/s |",
        "|---|---|---|---|",
    ]
    for stage, s in ours["stages"].items():
        lines.append(
            f"| {stage} | {int(s['count']):,} | {s['first']:.1f} → {s['last']:.1f} | "
            f"{s['rate']:,.0f} |"
        )
    lines += ["", "| service | peak RSS (VmHWM) | CPU during the run |", "|---|---|---|"]
    for name, (main, tree) in ours["rss"].items():
        extra = f" ({tree:,.0f} MiB with children)" if tree - main > 1 else ""
        lines.append(f"| {name} | {main:,.0f} MiB{extra} | {ours['cpu'][name]:,.1f} s |")
    total_cpu = sum(ours["cpu"].values())
    lines.append(f"| all services | {sum(t for _, t in ours['rss'].values()):,.0f} MiB | "
                 f"{total_cpu:,.1f} s |")  # fmt: skip
    lines += _cpu_budget(ours, acc["rows_accepted"], total_cpu)
    if celery is not None:
        c_rows = celery["rows"]
        c_rate = c_rows / celery["seconds"]
        cb = celery["callback_ended"] - celery["callback_started"]
        tasks_s = celery["callback_started"] - celery["started"]
        rss = celery["peak_rss_mib"]
        cpu = celery["cpu_s"]
        lines += [
            "",
            f"**Celery baseline** (Celery {celery['celery']}, Redis broker and result backend, "
            f"`celery worker -c {celery['concurrency']}` prefork, `worker_prefetch_multiplier=1`, "
            f"`task_acks_late=True`; {celery['tasks']:,} tasks of {celery['chunk']:,} rows in "
            "one chord; the same filter, verify and batch code and PostgreSQL writes; start "
            "reading the CSV → the chord's result):\n",
            "| measure | value |\n|---|---|",
            f"| contacts (rows ingest accepts) | {c_rows:,} |",
            f"| end to end | {celery['seconds']:.1f} s → **{c_rate:,.0f} contacts/s** |",
            f"| read + split + send the chord | {celery['dispatched'] - celery['started']:.1f} s |",
            f"| filter + verify tasks (start → callback starts) | {tasks_s:.1f} s "
            f"({c_rows / tasks_s:,.0f} contacts/s) |",
            f"| chord callback (gather results, place {celery['placed']:,} contacts) | "
            f"{cb:.1f} s |",
            f"| rejected by the filter | {sum(celery['rejected'].values()):,} |",
            f"| verdicts | {_fmt(celery['verdicts'])} |",
            f"| batches closed (500 each) | {celery['batches_closed']:,} |",
            f"| worker peak RSS (VmHWM: main, pool processes) | "
            f"{', '.join(f'{v:,.0f}' for v in rss.values())} MiB "
            f"(sum {sum(rss.values()):,.0f} MiB) |",
            f"| worker CPU (main, pool processes) | "
            f"{', '.join(f'{v:,.1f}' for v in cpu.values())} s |",
            f"| machine load average at start → end | {celery['load'][0]} → {celery['load'][1]} |",
            "",
            f"- ours end to end = **{rate:,.0f} contacts/s** (target ≥ 10,000)",
            f"- ours / Celery baseline = **{rate / c_rate:.2f}×** (target ≥ 10×); outcomes only "
            f"(ours to job completed, Celery to the end of its filter + verify tasks): "
            f"{outcomes / (c_rows / tasks_s):.2f}×",
        ]
    else:
        lines += ["", f"- ours end to end = **{rate:,.0f} contacts/s** (target ≥ 10,000)"]
    return "\n".join(lines)


def _cpu_budget(ours: dict[str, Any], contacts: int, services_cpu: float) -> list[str]:
    """Where the machine's CPU went during the run: the stack's servers beside our services,
    the machine as a whole, and CPU per contact (what a rate on 2 cores can be at most)."""
    stack_cpu = ours["stack_cpu"]
    busy, total = ours["machine_cpu"]
    lines = ["", "| stack server | CPU during the run |", "|---|---|"]
    lines += [f"| {name} | {cpu:,.1f} s |" for name, cpu in stack_cpu.items()]
    stack_total = sum(stack_cpu.values())
    both = services_cpu + stack_total
    lines += [
        f"| all stack servers | {stack_total:,.1f} s |",
        "",
        f"- CPU per contact: services {services_cpu / contacts * 1e6:,.0f} µs + stack "
        f"{stack_total / contacts * 1e6:,.0f} µs = **{both / contacts * 1e6:,.0f} µs**; at that "
        f"cost {os.cpu_count()} cores carry at most {contacts / both * (os.cpu_count() or 1):,.0f}"
        " contacts/s",
        f"- the machine was busy {busy:,.1f} of {total:,.1f} CPU-seconds ({busy / total:.0%}); "
        f"services and stack account for {both:,.1f} s of it (the rest: the benchmark's own "
        "follower, the kernel, anything else running)",
    ]
    return lines


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=None, help="default: new people each run")
    parser.add_argument("--no-celery", action="store_true")
    parser.add_argument("--chunk", type=int, default=1000, help="rows per Celery task")
    parser.add_argument("--concurrency", type=int, default=2, help="celery worker -c")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--no-write", action="store_true", help="do not append to the docs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadstream-e2e-") as tmp:
        path = Path(tmp) / "contacts.csv"
        write_sample(path, args.rows, args.seed)
        ours = run_ours(path, args.timeout)
        celery = (
            None if args.no_celery else run_celery(path, args.chunk, args.concurrency, args.timeout)
        )
    cmd = f"uv run python -m bench.end_to_end --rows {args.rows}"
    if args.no_celery:
        cmd += " --no-celery"
    body = report(args.rows, ours, celery, cmd)
    print(body)
    if not args.no_write:
        append_results("End to end, and the Celery baseline", body)


if __name__ == "__main__":
    main()
