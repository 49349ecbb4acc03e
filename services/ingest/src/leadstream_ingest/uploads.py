"""Streaming CSV uploads: the request body flows chunk by chunk to a parser thread, which
decodes, parses, validates and produces each row; memory stays flat whatever the file size.

    request body ──(event loop: pump)──► ChunkQueue (bounded) ──► parser thread
        decode → lines → csv → columns → rows → serialize → producer (bounded queue)

Backpressure all the way: a full producer queue blocks the parser, a full chunk queue blocks
the pump, and an unread body makes the server stop reading the socket.

The job is created (Postgres row + ``JobEvent`` created) once the header is understood;
after the last row the upload waits for every delivery report, then seals the job (row +
``JobEvent`` sealed with ``expected_total`` = rows accepted). A failure after the job
exists marks it failed (row + ``JobEvent`` failed) before the error is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from leadstream.db.ingest import IngestStore
from leadstream_ingest.avro_rows import Encoder, row_encoder
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.contacts import now_ms
from leadstream_ingest.csv_columns import Column, resolve_columns
from leadstream_ingest.csv_decode import (
    AutoDecoder,
    has_invalid_bytes,
    lines,
    sniff_delimiter,
    text_chunks,
)
from leadstream_ingest.csv_rows import RowBuilder, RowError, UploadMeta, csv_reader, is_blank
from leadstream_ingest.errors import IngestError, InvalidInput, TooLarge
from leadstream_ingest.job_events import CREATED, FAILED, SEALED, job_event
from leadstream_ingest.producer import Acks, EventProducer, Failures

log = logging.getLogger(__name__)
_END = object()


class _Aborted(Exception):
    """The body stream failed (client gone, body too large): the parser stops."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class ChunkQueue:
    """Body chunks from the event loop to the parser thread (bounded)."""

    def __init__(self, maxsize: int = 16) -> None:
        self._q: queue.Queue[object] = queue.Queue(maxsize)
        self.closed = threading.Event()  # the parser stopped reading

    def put_nowait(self, item: object) -> bool:
        try:
            self._q.put_nowait(item)
            return True
        except queue.Full:
            return False

    def put(self, item: object) -> None:
        """Blocking put that gives up when the parser has stopped."""
        while not self.closed.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._q.get_nowait()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._q.get()
            if item is _END:
                return
            if isinstance(item, _Aborted):
                raise item
            assert isinstance(item, bytes)
            yield item


async def pump(body: AsyncIterator[bytes], chunks: ChunkQueue) -> None:
    """Copy the request body into the queue; an error on the stream aborts the parser."""
    item: object
    try:
        async for chunk in body:
            if chunks.closed.is_set():
                return
            if chunk and not chunks.put_nowait(chunk):
                await asyncio.to_thread(chunks.put, chunk)
        item = _END
    except Exception as exc:  # ClientDisconnect, BodyTooLarge...
        item = _Aborted(exc)
    if not chunks.put_nowait(item):
        await asyncio.to_thread(chunks.put, item)


@dataclass(frozen=True, slots=True)
class UploadOptions:
    file_name: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    mapping: dict[str, str | None] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    name: str | None = None


@dataclass
class UploadSummary:
    job_id: str
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: list[Column] = field(default_factory=list)
    rows_total: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    job_created: bool = False

    def as_dict(self, errors_limit: int) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "rows_total": self.rows_total,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "errors": [e.as_dict() for e in self.errors],
            "errors_truncated": self.rows_rejected > len(self.errors),
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "columns": {c.header: c.target for c in self.columns},
        }


Emit = Callable[[dict[str, Any]], None]


class UploadParser:
    """The parser thread's work for one upload: bytes in, records to ``emit``, a summary out.

    ``on_header`` is called once the header is understood (the job is created there);
    ``emit`` receives each accepted ``ContactSubmitted`` record.
    """

    def __init__(
        self,
        settings: IngestSettings,
        options: UploadOptions,
        meta: UploadMeta,
        emit: Emit,
        on_header: Callable[[UploadSummary], None],
    ) -> None:
        self.settings = settings
        self.options = options
        self.meta = meta
        self.emit = emit
        self.on_header = on_header
        self.summary = UploadSummary(meta.job_id)

    def __call__(self, chunks: ChunkQueue) -> UploadSummary:
        try:
            return self.parse(iter(chunks))
        finally:
            chunks.close()

    def parse(self, chunks: Iterator[bytes]) -> UploadSummary:
        s = self.summary
        decoder = AutoDecoder(self.options.encoding)
        physical = lines(text_chunks(chunks, decoder))
        first = next(physical, None)
        while first is not None and not first.strip():
            first = next(physical, None)
        if first is None:
            raise InvalidInput("the upload is empty (no header row)", code="empty_upload")
        first = first.removeprefix("\ufeff")
        s.delimiter = self.options.delimiter or sniff_delimiter(first)
        reader = csv_reader(itertools.chain([first], physical), s.delimiter)
        try:
            header = next(reader)
        except csv.Error as exc:
            raise InvalidInput(f"the header row cannot be parsed: {exc}", code="bad_csv") from None
        if any(has_invalid_bytes(name) for name in header):
            raise InvalidInput(
                "the header row holds NUL or bytes not valid in the file's encoding",
                code="bad_encoding",
            )
        s.encoding = decoder.encoding
        s.columns = resolve_columns(
            header, self.options.mapping, max_columns=self.settings.max_csv_columns
        )
        self.on_header(s)
        s.job_created = True
        self._rows(reader, decoder)
        s.encoding = decoder.encoding
        return s

    def _rows(self, reader: Any, decoder: AutoDecoder) -> None:
        s = self.summary
        settings = self.settings
        builder = RowBuilder(s.columns, self.meta, max_field_chars=settings.max_field_chars)
        emit = self.emit
        max_rows = settings.max_upload_rows
        keep = settings.upload_errors_reported
        previous = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                s.rows_total += 1
                self._error(RowError(previous + 1, s.rows_total, f"unparseable row: {exc}"), keep)
                previous = reader.line_num
                continue
            start, previous = previous + 1, reader.line_num
            if is_blank(row):
                continue
            s.rows_total += 1
            if s.rows_total > max_rows:
                raise TooLarge(
                    f"the upload has more than {max_rows} data rows", code="too_many_rows"
                )
            built = builder.build(row, start, s.rows_total, now_ms(), check_bytes=decoder.dirty)
            if isinstance(built, RowError):
                self._error(built, keep)
                continue
            emit(built)
            s.rows_accepted += 1

    def _error(self, error: RowError, keep: int) -> None:
        self.summary.rows_rejected += 1
        if len(self.summary.errors) < keep:
            self.summary.errors.append(error)


class UploadService:
    """Accepts one CSV upload end to end (see the module docstring)."""

    def __init__(
        self,
        settings: IngestSettings,
        producer: EventProducer,
        store: IngestStore,
        executor: Executor,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.store = store
        self.executor = executor

    async def accept(
        self,
        body: AsyncIterator[bytes],
        options: UploadOptions,
        meta: UploadMeta,
    ) -> UploadSummary:
        loop = asyncio.get_running_loop()
        acks = Acks(loop)
        chunks = ChunkQueue()

        def on_header(summary: UploadSummary) -> None:  # parser thread
            self.store.create_job(
                meta.job_id,
                kind="csv",
                source=meta.source,
                api_key_id=meta.ctx.api_key_id,
                meta={"name": options.name or options.file_name, "file_name": options.file_name},
            )
            event = self._event(meta, options, CREATED)
            data = self.producer.encode("jobs.events", event)
            self.producer.produce("jobs.events", data, meta.job_id, None, acks)

        codec = self.producer.serde.codec("contacts.raw")
        produce = self.producer.produce_bulk
        topic = self.producer.topic("contacts.raw")
        headers: list[tuple[str, str | bytes | None]] = [("job_id", meta.job_id.encode())]
        encoders: list[Encoder] = []
        failures = Failures()

        def emit(record: dict[str, Any]) -> None:  # parser thread
            if not encoders:
                encoders.append(row_encoder(codec, record))
            produce(topic, encoders[0](record), record["email"].lower(), headers, failures)

        parser = UploadParser(self.settings, options, meta, emit, on_header)
        pumping = asyncio.ensure_future(pump(body, chunks))
        began = time.perf_counter()
        try:
            summary = await loop.run_in_executor(self.executor, parser, chunks)
            parsed = time.perf_counter()
            await asyncio.to_thread(self.producer.flush_bulk, failures)
            await acks.wait(self.producer.ack_timeout_s)  # JobEvent created
            log.info(
                "upload %s: %d rows parsed and produced in %.2f s, acknowledged %.2f s later",
                meta.job_id,
                summary.rows_total,
                parsed - began,
                time.perf_counter() - parsed,
            )
        except BaseException as exc:
            chunks.close()
            await asyncio.gather(pumping, return_exceptions=True)
            cause = exc.cause if isinstance(exc, _Aborted) else exc
            if parser.summary.job_created:
                await self._fail(meta, options, parser.summary, cause)
            if isinstance(exc, _Aborted):
                raise cause from None
            raise
        await pumping
        if summary.rows_total == 0:
            error = InvalidInput("the upload has a header but no data rows", code="no_rows")
            await self._fail(meta, options, summary, error)
            raise error
        if summary.rows_accepted == 0:
            error = InvalidInput(
                f"none of the {summary.rows_total} rows could be accepted",
                code="no_valid_rows",
                details=summary.as_dict(self.settings.upload_errors_reported),
            )
            await self._fail(meta, options, summary, error)
            raise error
        await self._seal(meta, options, summary)
        return summary

    def _event(
        self,
        meta: UploadMeta,
        options: UploadOptions,
        event_type: str,
        *,
        expected_total: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return job_event(
            meta.job_id,
            event_type,
            source=meta.source,
            kind="csv",
            request_id=meta.ctx.request_id,
            name=options.name or options.file_name,
            expected_total=expected_total,
            details=details,
        )

    async def _seal(self, meta: UploadMeta, options: UploadOptions, s: UploadSummary) -> None:
        details = {
            "rows_total": s.rows_total,
            "rows_rejected": s.rows_rejected,
            "encoding": s.encoding,
        }
        await asyncio.to_thread(self.store.seal_job, meta.job_id, s.rows_accepted, details)
        event = self._event(meta, options, SEALED, expected_total=s.rows_accepted, details=details)
        await self._send_job_event(meta.job_id, event)

    async def _fail(
        self, meta: UploadMeta, options: UploadOptions, s: UploadSummary, cause: BaseException
    ) -> None:
        reason = cause.reason if isinstance(cause, IngestError) else type(cause).__name__
        details = {"error": reason, "rows_produced": s.rows_accepted, "rows_total": s.rows_total}
        try:
            await asyncio.to_thread(self.store.fail_job, meta.job_id, reason, details)
            event = self._event(meta, options, FAILED, details=details)
            await self._send_job_event(meta.job_id, event)
        except Exception:  # the original error is what the client must see
            log.exception("could not mark job %s failed", meta.job_id)

    async def _send_job_event(self, job_id: str, event: dict[str, Any]) -> None:
        acks = Acks(asyncio.get_running_loop())
        data = self.producer.encode("jobs.events", event)
        await asyncio.to_thread(self.producer.produce, "jobs.events", data, job_id, None, acks)
        await acks.wait(self.producer.ack_timeout_s)
