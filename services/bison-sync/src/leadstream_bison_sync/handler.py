"""The bison-sync stage handler: ``batches.ready`` → upload → ``batches.synced``;
``bison.events`` → history, status, sentiment, suppressions."""

from __future__ import annotations

import logging
from collections.abc import Sequence

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
    ) -> None:
        self.uploader = uploader
        self.recorder = recorder
        self.ready_topic = ready_topic
        self.events_topic = events_topic

    def __call__(self, records: Sequence[Record]) -> list[list[Output]]:
        try:
            return self._handle(records)
        except DatabaseUnavailableError as exc:
            raise RetryLater(str(exc)) from exc

    def _handle(self, records: Sequence[Record]) -> list[list[Output]]:
        self.recorder.record([r.value for r in records if r.topic == self.events_topic])
        return [self._upload(r) if r.topic == self.ready_topic else [] for r in records]

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
