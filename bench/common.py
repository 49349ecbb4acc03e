"""Shared bench plumbing: settings for the local stack, machine facts, the results file."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka.admin import AdminClient

from leadstream.infra import InfraSettings
from leadstream.settings import Settings

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def bench_settings() -> Settings:
    """Settings pointing at the local stack, with a fresh topic prefix."""
    cfg = InfraSettings()
    return Settings(
        kafka_bootstrap=f"{cfg.host}:{cfg.kafka_port}",
        schema_registry_url=f"http://{cfg.host}:{cfg.registry_port}/apis/ccompat/v7",
        topic_prefix=f"bench-{uuid.uuid4().hex[:8]}.",
    )


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, Python {platform.python_version()}"


def append_results(title: str, body: str) -> None:
    """Append a dated section to docs/benchmarks.md (created with a header if missing)."""
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmarks\n\nEach section is one run of a `bench/` script, appended by the "
            "script itself. Ratios compare runs made in the same process, one after the other, "
            "on the same machine (these machines are noisy: compare ratios, not absolutes).\n"
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with RESULTS.open("a") as fh:
        fh.write(f"\n## {title} — {stamp}\n\nMachine: {machine()}.\n\n{body.rstrip()}\n")


def proc_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc; processes that are gone are left out)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if Path(f"/proc/{p}").exists():
            out.append(p)
        todo.extend(children.get(p, ()))
    return out


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (its own, not its children's)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat:
    busy = user + nice + system + irq + softirq + steal; total adds idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq + steal
    return busy / tick, (busy + idle + iowait) / tick


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (a PostgreSQL server's backends)."""
    return sum(cpu_seconds(p) for p in proc_tree(pid))


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def delete_topics(admin: AdminClient, names: Iterable[str]) -> None:
    """Delete the run's topics; one that cannot be deleted is reported, not fatal."""
    for future in admin.delete_topics(list(names)).values():
        try:
            future.result(timeout=30)
        except Exception as exc:
            print(f"could not delete a bench topic: {exc}", file=sys.stderr)
