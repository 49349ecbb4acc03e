"""The bison-sync stage handler: ``batches.ready`` → upload → ``batches.synced``;
``bison.events`` → history, status, sentiment, suppressions."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from leadstream.bison import (
    BisonAuthError,
    BisonNotFoundError,
    BisonRateLimitedError,
    BisonRequestError,
    BisonUnavailableError,
)
from leadstream.db.contacts import DatabaseUnavailableError
from leadstream.runtime import BadRecord, FatalStageError, Output, Record, RetryLater
from leadstream_bison_sync.events import FeedbackRecorder
from leadstream_bison_sync.synced import synced_output
from leadstream_bison_sync.uploader import UploadBusyError, Uploader

log = logging.getLogger(__name__)


class BisonSyncHandler:
    def __init__(
        self,
        uploader: Uploader,
        recorder: FeedbackRecorder,
        *,
        ready_topic: str,
        events_topic: str,
        concurrency: int = 1,
    ) -> None:
        self.uploader = uploader
        self.recorder = recorder
        self.ready_topic = ready_topic
        self.events_topic = events_topic
        self._pool = (
            ThreadPoolExecutor(concurrency, thread_name_prefix="bison-upload")
            if concurrency > 1
            else None
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __call__(self, records: Sequence[Record]) -> list[list[Output]]:
        try:
            return self._handle(records)
        except DatabaseUnavailableError as exc:
            raise RetryLater(str(exc)) from exc
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # The shared rate bucket lives in Redis: a Redis restart is transient, and its
            # batches must wait for it, not be dead-lettered (a restart did that once).
            raise RetryLater(f"Redis unavailable: {exc}") from exc

    def _handle(self, records: Sequence[Record]) -> list[list[Output]]:
        self.recorder.record([r.value for r in records if r.topic == self.events_topic])
        out: list[list[Output]] = [[] for _ in records]
        ready = [(i, r) for i, r in enumerate(records) if r.topic == self.ready_topic]
        if self._pool is None or len(ready) < 2:
            for i, r in ready:
                out[i] = self._upload(r)
            return out
        # Uploads of different batches overlap, so one batch's bookkeeping (PostgreSQL, JSON)
        # does not leave the shared rate budget unused; each batch is still uploaded in order
        # under its own advisory lock.
        futures: list[tuple[int, Future[list[Output]]]] = [
            (i, self._pool.submit(self._upload, r)) for i, r in ready
        ]
        failures: list[BaseException] = []
        for i, fut in futures:
            try:
                out[i] = fut.result()
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise _most_severe(failures)
        return out

    def _upload(self, r: Record) -> list[Output]:
        try:
            done = self.uploader.upload(r.value, (r.topic, r.partition, r.offset))
        except UploadBusyError as exc:
            raise RetryLater(str(exc), delay_s=2.0) from exc
        except BisonRateLimitedError as exc:
            raise RetryLater(str(exc), delay_s=exc.retry_after_s) from exc
        except BisonUnavailableError as exc:
            raise RetryLater(str(exc)) from exc
        except BisonAuthError as exc:
            if exc.status == 401:
                raise FatalStageError(f"Email Bison refused the API key: {exc}") from exc
            raise BadRecord(f"campaign {r.value.get('campaign_id')}: {exc}") from exc
        except (BisonNotFoundError, BisonRequestError) as exc:
            raise BadRecord(f"campaign {r.value.get('campaign_id')}: {exc}") from exc
        if done.value is None:
            log.info(
                "batch %s was uploaded from another record; nothing to emit", r.value["batch_id"]
            )
            return []
        return [synced_output(done.value)]


def _most_severe(failures: list[BaseException]) -> BaseException:
    """Fatal stops the stage; a retry redoes the whole handler batch (finished uploads are
    re-emitted from PostgreSQL); anything else makes the runtime isolate the bad record."""
    for kind in (FatalStageError, RetryLater):
        for exc in failures:
            if isinstance(exc, kind):
                return exc
    return failures[0]
