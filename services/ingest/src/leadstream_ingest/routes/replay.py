"""Admin replay (scope ``admin``): plan a stage replay, start it, and poll it.

``POST /v1/admin/replay`` plans (``dry_run``, the default: 200 with the plan) or starts a replay
(202 with the plan and where to poll). A replay can take minutes (reading and re-publishing a
large range), longer than an HTTP request should live, so it runs in a thread of this process
and ``GET /v1/admin/replay/{id}`` reports its state and progress. The run's state is kept by the
process that started it; the durable truth is in Kafka (the progress group of a re-publish), so
a replay cut short by a restart is resumed by starting it again with the same ``replay_id``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from leadstream.ops import replay as rp
from leadstream.settings import Settings
from leadstream_ingest.auth import AdminKey
from leadstream_ingest.deps import ServicesDep
from leadstream_ingest.errors import Conflict, InvalidInput, NotFound

router = APIRouter(prefix="/v1/admin", tags=["admin"])
KEEP_FINISHED = 100  # finished runs remembered per process, newest first


class ReplayRequest(BaseModel):
    stage: Literal["filter", "verify", "batch", "bison-sync", "audit", "registrations"]
    since: str | None = Field(None, description="ISO 8601 time or an age (2h, 30m, 1d)")
    until: str | None = Field(None, description="Excluded; default now")
    partition: int | None = Field(None, ge=0)
    from_offset: int | None = Field(None, ge=0)
    to_offset: int | None = Field(None, ge=0, description="Included")
    job_id: str | None = Field(None, max_length=200)
    topic: str | None = Field(None, description="One input of a stage that reads several")
    method: Literal["auto", "reset", "republish"] = "auto"
    dry_run: bool = Field(True, description="Only plan (the default); false starts it")
    replay_id: str | None = Field(None, description="Resume or re-run this replay")


@dataclass
class ReplayRun:
    plan: rp.ReplayPlan
    actor: str
    request_id: str | None = None
    status: Literal["running", "done", "failed"] = "running"
    done: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    error: str | None = None

    def body(self) -> dict[str, Any]:
        return {
            "replay_id": self.plan.replay_id,
            "status": self.status,
            "done": self.done,
            "total": self.plan.total,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "started_by": self.actor,
            "plan": self.plan.to_dict(),
        }


class ReplayRuns:
    """The replays this process started (a lock: run threads update them)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, ReplayRun] = {}

    def start(self, settings: Settings, run: ReplayRun) -> None:
        with self.lock:
            old = self.runs.get(run.plan.replay_id)
            if old is not None and old.status == "running":
                raise Conflict(f"replay {run.plan.replay_id} is running", code="replay_running")
            self.runs[run.plan.replay_id] = run
            finished = [k for k, r in self.runs.items() if r.status != "running"]
            for k in finished[: max(0, len(finished) - KEEP_FINISHED)]:
                del self.runs[k]
        thread = threading.Thread(
            target=self._run, args=(settings, run), name=f"replay-{run.plan.replay_id}"
        )
        thread.daemon = True
        thread.start()

    def _run(self, settings: Settings, run: ReplayRun) -> None:
        def progress(n: int) -> None:
            run.done = n

        try:
            result = rp.execute_audited(
                settings, run.plan, progress, actor=run.actor, request_id=run.request_id
            )
            run.done = result.records
            run.status = "done"
        except Exception as exc:  # shown to the admin who polls
            run.error = f"{type(exc).__name__}: {exc}"
            run.status = "failed"
        finally:
            run.finished_at = time.time()

    def get(self, replay_id: str) -> ReplayRun | None:
        with self.lock:
            return self.runs.get(replay_id)


def runs_of(request: Request) -> ReplayRuns:
    runs = getattr(request.app.state, "replays", None)
    if runs is None:
        runs = request.app.state.replays = ReplayRuns()
    return runs


def _plan(settings: Settings, body: ReplayRequest) -> rp.ReplayPlan:
    try:
        selection = rp.Selection(
            since_ms=rp.parse_when(body.since) if body.since else None,
            until_ms=rp.parse_when(body.until) if body.until else None,
            partition=body.partition,
            from_offset=body.from_offset,
            to_offset=body.to_offset,
            job_id=body.job_id,
            topic=body.topic,
        )
        return rp.plan(
            settings, body.stage, selection, method=body.method, replay_id=body.replay_id
        )
    except rp.ReplayError as exc:
        raise InvalidInput(str(exc), code="invalid_replay") from exc


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid key"},
    403: {"description": "Not an admin key"},
    422: {"description": "A selection or method that cannot be carried out (the reason says)"},
}


@router.post(
    "/replay",
    responses={
        200: {"description": "The plan (dry run)"},
        202: {"description": "Started; poll the Location"},
        409: {"description": "A replay with this id is running"},
        **_ERRORS,
    },
    summary="Plan or start a stage replay (admin)",
)
async def start_replay(
    body: ReplayRequest, principal: AdminKey, services: ServicesDep, request: Request
) -> JSONResponse:
    """Plans the replay: the method (group reset or re-publish) and why, the records per
    partition. With ``dry_run: false`` it starts it in the background; see
    ``docs/operations.md`` ("Replay") for the semantics."""
    plan = await run_in_threadpool(_plan, services.settings, body)
    if body.dry_run:
        return JSONResponse({"status": "planned", "plan": plan.to_dict()})
    run = ReplayRun(
        plan,
        actor=f"api-key:{principal.key_id}",
        request_id=getattr(request.state, "request_id", None),
    )
    runs_of(request).start(services.settings, run)
    where = f"/v1/admin/replay/{plan.replay_id}"
    return JSONResponse(run.body() | {"poll": where}, status_code=202, headers={"Location": where})


@router.get(
    "/replay/{replay_id}",
    responses={
        200: {"description": "State and progress"},
        404: {"description": "Unknown"},
        **_ERRORS,
    },
    summary="A replay's state and progress (admin)",
)
async def get_replay(replay_id: str, principal: AdminKey, request: Request) -> JSONResponse:
    """``running`` (``done`` of ``total`` records so far), ``done`` or ``failed`` (``error``)."""
    run = runs_of(request).get(replay_id)
    if run is None:
        raise NotFound(
            f"no replay {replay_id} was started by this process", code="replay_not_found"
        )
    return JSONResponse(run.body())
