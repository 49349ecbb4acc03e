"""The fault suite: the whole pipeline as real processes on its own stack, while services are
SIGKILLed, a stage is SIGSTOPped, the servers are restarted and registrations arrive in a burst.

What must hold is exact: nothing lost, nothing twice — in PostgreSQL, at the fake Email Bison,
in the job states and in MongoDB's request log. Recovery times and latencies are measured and
recorded (``conftest.py``: the figures), never asserted.

Size: ``CHAOS_SCALE=ci`` (default) or ``full`` (``make chaos``), see ``scale.py``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence

import pytest

from leadstream.jobs import JobState
from tests.chaos import scale
from tests.chaos.load import Trickle, burst, percentile
from tests.chaos.world import (
    GROUPS,
    SPARE_PORTS,
    Contact,
    Upload,
    World,
    make_contacts,
    sigcont,
    sigstop,
)

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
SIZE = scale.current()
LONG = 3600 if SIZE.name == "full" else 600
STAGES = ("filter", "verify", "batch", "bison-sync", "jobs", "audit", "registration-writer")
SERVERS = ("kafka", "postgres", "redis", "ferretdb")


def _left(began: float) -> float:
    """What is left of the test's time, less 150 s (the world's start-up, ~90 s, counts against
    the first test's timeout): a wait that ends before pytest's timeout fails with its own
    report (which consumer groups are behind)."""
    return max(30.0, LONG - (time.monotonic() - began) - 150)


def schedule(kills: int) -> list[str]:
    """Stage kills round after round; each server restarted once, between the first round's
    kills."""
    out: list[str] = []
    servers = list(SERVERS)
    for _ in range(kills):
        for stage in STAGES:
            out.append(stage)
            if servers:
                out.append(servers.pop(0))
    return out


class Uploader:
    """Uploads the contacts in jobs of ``rows`` at ``per_s`` contacts per second; the next
    job at once after :meth:`nudge` (a fault is about to be injected: give it work in
    flight), all the rest at once after :meth:`hurry`."""

    def __init__(self, world: World, contacts: Sequence[Contact], rows: int, per_s: float):
        self.world, self.per_s = world, per_s
        self.chunks = [contacts[i : i + rows] for i in range(0, len(contacts), rows)]
        self.uploads: list[Upload] = []
        self.error: BaseException | None = None
        self._hurry = threading.Event()
        self._nudge = threading.Event()
        self._thread = threading.Thread(target=self._run, name="uploader", daemon=True)

    def start(self) -> Uploader:
        self._thread.start()
        return self

    def hurry(self) -> None:
        self._hurry.set()
        self._nudge.set()

    def nudge(self) -> None:
        self._nudge.set()

    def join(self, timeout: float) -> list[Upload]:
        self.hurry()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "uploads did not finish"
        if self.error is not None:
            raise self.error
        return self.uploads

    def _run(self) -> None:
        try:
            with self.world.client() as client:
                for k, chunk in enumerate(self.chunks):
                    began = time.monotonic()
                    self.uploads.append(self.world.upload(client, chunk, f"chaos-{k}"))
                    pause = len(chunk) / self.per_s - (time.monotonic() - began)
                    self._nudge.wait(max(0.0, pause))
                    if not self._hurry.is_set():
                        self._nudge.clear()
        except BaseException as exc:  # reported by join()
            self.error = exc


def check_jobs(states: dict[str, JobState], uploads: Sequence[Upload]) -> None:
    """Every job completed with exact counts: each contact received, verified deliverable,
    batched and synced exactly once; nothing rejected or dead-lettered."""
    for up in uploads:
        s = states[up.job_id]
        n = len(up.emails)
        assert s.status == "completed", s
        assert s.expected_total == n, s
        assert (s.received, s.verified, s.rejected, s.dead_lettered) == (n, n, 0, 0), s
        assert dict(s.verdicts) == {"deliverable": n}, s
        assert (s.batched, s.synced) == (n, n), s


def check_contacts(world: World, emails: Sequence[str]) -> None:
    """Each contact once in PostgreSQL, created once at Email Bison and attached once."""
    in_db = world.contacts_in_postgres(emails)
    assert len(in_db) == len(emails), f"lost in PostgreSQL: {len(emails) - len(in_db)}"
    assert set(in_db.values()) == {1}
    with world.fake.lock:  # one pass (created_count scans every lead per call)
        made = Counter[str]()
        for (_ws, email), n in world.fake.data.created.items():
            made[email] += n
    created = Counter(made[e] for e in emails)
    assert created == {1: len(emails)}, f"leads created n times → contacts: {created}"


def check_request_logs(world: World, request_ids: Sequence[str]) -> None:
    logs = world.wait_request_logs(request_ids, timeout=120)
    missing = set(request_ids) - set(logs)
    assert not missing, f"{len(missing)} accepted requests not in the request log"
    assert set(logs.values()) == {1}


def check_registrations(world: World, request_ids: Sequence[str]) -> None:
    outcomes = world.wait_registrations(request_ids, timeout=120)
    missing = set(request_ids) - set(outcomes)
    assert not missing, f"{len(missing)} accepted registrations not in PostgreSQL"
    assert set(outcomes.values()) == {1}


@pytest.mark.timeout(LONG)
def test_kills_and_restarts_lose_and_duplicate_nothing(world: World) -> None:
    contacts = make_contacts(SIZE.contacts, f"s1{time.time_ns() % 10**8}")
    uploader = Uploader(world, contacts, SIZE.upload_rows, SIZE.intake_per_s).start()
    trickle = Trickle(world.api, SIZE.trickle_per_s).start()
    began = time.monotonic()
    try:
        restarts: list[tuple[str, float, float]] = []
        for target in schedule(SIZE.kills):
            uploader.nudge()
            if target in GROUPS:
                _kill_and_restart(world, target)
            else:
                restarts.append(_restart_server(world, target))
        world.figures.add(scenario=1, what="faults injected", seconds=time.monotonic() - began)
        uploads = uploader.join(LONG)
        states = world.wait_jobs(uploads, timeout=_left(began))
    finally:
        uploader.hurry()
        trickle.stop()
    for name, stopped, back in restarts:
        resumed = {stage: world.monitor.first_after(stage, back) for stage in GROUPS}
        world.figures.add(
            scenario=1,
            what="restart",
            target=name,
            down_s=round(back - stopped, 2),
            first_commit_after_stop_s={
                k: (None if v is None else round(v - stopped, 2)) for k, v in resumed.items()
            },
        )
    world.figures.add(
        scenario=1,
        what="pipeline drained",
        contacts=len(contacts),
        jobs=len(uploads),
        seconds=time.monotonic() - began,
        registrations_accepted=len(trickle.accepted),
        registrations_refused=dict(trickle.other),
    )
    check_jobs(states, uploads)
    emails = [e for up in uploads for e in up.emails]
    assert len(emails) == len(contacts)
    check_contacts(world, emails)
    sends = world.fake.attach_sends(world.campaign)
    assert len(sends) >= len(emails)
    assert set(sends.values()) == {1}, "a lead was attached to the campaign twice"
    assert trickle.accepted, "no registration was accepted during the faults"
    check_registrations(world, trickle.accepted)
    check_request_logs(world, [up.request_id for up in uploads] + trickle.accepted)


def _kill_and_restart(world: World, name: str) -> None:
    deadline = time.monotonic() + 30
    while not world.monitor.busy(name, within_s=2.0) and time.monotonic() < deadline:
        time.sleep(0.2)
    busy = world.monitor.busy(name, within_s=2.0)
    killed = world.kill(name)
    world.start(name)
    ready = time.monotonic()
    resumed = world.monitor.wait_advance(name, since=killed, timeout=60)
    world.figures.add(
        scenario=1,
        what="SIGKILL",
        target=name,
        busy_when_killed=busy,
        restarted_ready_s=round(ready - killed, 2),
        recovery_s=None if resumed is None else round(resumed - killed, 2),
    )


def _restart_server(world: World, name: str) -> tuple[str, float, float]:
    stopped, back = world.restart_infra(name)
    # The next fault waits until the head of the pipeline commits again.
    world.monitor.wait_advance("filter", since=back, timeout=60)
    return name, stopped, back


@pytest.mark.timeout(LONG)
def test_stopped_stage_loses_its_partitions_and_gets_them_back(world: World) -> None:
    """A filter instance SIGSTOPped past max.poll.interval.ms: its partitions go to the other
    instance, come back after SIGCONT, and nothing is filtered twice."""
    began = time.monotonic()
    settings = {
        "LEADSTREAM_RUNTIME_SESSION_TIMEOUT_MS": "6000",
        "LEADSTREAM_RUNTIME_MAX_POLL_INTERVAL_MS": "6000",
    }
    group = GROUPS["filter"]
    a = world.replica("filter", "a", SPARE_PORTS[0], **settings)
    b = world.replica("filter", "b", SPARE_PORTS[1], **settings)
    client_a, client_b = f"{group}-chaos-filter-a", f"{group}-chaos-filter-b"
    world.stop("filter")
    try:
        world.start(a.name)
        world.start(b.name)
        both = _wait_assignment(world, group, lambda m: len(m) == 2 and all(m.values()), 90)
        contacts = make_contacts(SIZE.stop_contacts, f"s2{time.time_ns() % 10**8}")
        uploader = Uploader(world, contacts, SIZE.upload_rows, SIZE.intake_per_s * 2).start()
        world.monitor.watch(b.name, SPARE_PORTS[1])
        deadline = time.monotonic() + 60
        while not world.monitor.busy(b.name, within_s=1.0) and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = sigstop(b)
        stopped = time.monotonic()
        try:
            alone = _wait_assignment(world, group, lambda m: set(m) == {client_a}, 60)
            taken = time.monotonic()
            assert alone[client_a] == both[client_a] | both[client_b]
            time.sleep(max(0.0, stopped + 6.0 + 3.0 - time.monotonic()))  # past max.poll
        finally:
            sigcont(pid)
        resumed = time.monotonic()
        again = _wait_assignment(world, group, lambda m: len(m) == 2 and all(m.values()), 90)
        back = time.monotonic()
        assert again[client_b], again
        uploads = uploader.join(LONG)
        states = world.wait_jobs(uploads, timeout=_left(began))
    finally:
        world.stop(a.name)
        world.stop(b.name)
        world.start("filter")
    world.figures.add(
        scenario=2,
        what="SIGSTOP past max.poll.interval.ms (6 s), then SIGCONT",
        target="filter (2 instances)",
        contacts=len(contacts),
        partitions_moved_after_s=round(taken - stopped, 2),
        stopped_for_s=round(resumed - stopped, 2),
        partitions_back_after_cont_s=round(back - resumed, 2),
    )
    check_jobs(states, uploads)
    job_ids = {up.job_id for up in uploads}
    filtered = world.keys_by_job("contacts.filtered", job_ids, expect=len(contacts))
    lost = len(contacts) - len(filtered)
    assert lost == 0, f"{lost} contacts lost on contacts.filtered"
    assert set(filtered.values()) == {1}, "a contact was filtered twice"
    check_contacts(world, [c.email for c in contacts])
    check_request_logs(world, [up.request_id for up in uploads])


def _wait_assignment(
    world: World,
    group: str,
    predicate: object,
    timeout: float,
) -> dict[str, set[tuple[str, int]]]:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    members: dict[str, set[tuple[str, int]]] = {}
    while time.monotonic() < deadline:
        try:
            members = world.group_assignment(group)
        except Exception:  # the coordinator is rebalancing
            members = {}
        if members and predicate(members):
            return members
        time.sleep(0.25)
    raise AssertionError(f"group {group} never reached the expected assignment: {members}")


@pytest.mark.timeout(LONG)
def test_registration_burst_persists_every_202_once(world: World) -> None:
    abuser = "203.0.113.9"
    result = burst(world.api, SIZE.burst, SIZE.burst_concurrency, abuser=abuser)
    answers = result.answers
    assert len(answers) == SIZE.burst
    others = [a for a in answers if a.ip != abuser]
    abusive = [a for a in answers if a.ip == abuser]
    assert Counter(a.status for a in others) == {202: len(others)}, Counter(
        a.status for a in others
    )
    statuses = Counter(a.status for a in abusive)
    assert set(statuses) <= {202, 429}, statuses
    # The GCRA allows the burst (5) and then 10 per 60 s: the rest must be refused.
    allowed = 5 + int(result.elapsed_s * 10 / 60) + 1
    assert statuses[202] <= allowed, statuses
    assert statuses[429] >= len(abusive) - allowed, statuses
    accepted = [a.request_id for a in answers if a.status == 202 and a.request_id]
    check_registrations(world, accepted)
    check_request_logs(world, accepted)
    latencies = [a.latency_s * 1000 for a in others]
    world.figures.add(
        scenario=3,
        what="registration burst",
        requests=len(answers),
        seconds=round(result.elapsed_s, 2),
        requests_per_s=round(len(answers) / result.elapsed_s, 1),
        concurrency=SIZE.burst_concurrency,
        accepted=len(accepted),
        rate_limited=statuses[429],
        p50_ms=round(percentile(latencies, 0.50), 1),
        p95_ms=round(percentile(latencies, 0.95), 1),
        p99_ms=round(percentile(latencies, 0.99), 1),
    )
