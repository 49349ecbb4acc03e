"""CSV rows → ``ContactSubmitted`` records, or row errors (pure, no I/O).

:func:`read_rows` runs the csv module over physical lines and yields, per data row, its line
number, row number and either the record or the reason it was refused. Blank lines are
skipped; quoted fields may span lines (the line number is where the row starts).
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from leadstream_ingest.contacts import RequestContext
from leadstream_ingest.csv_columns import Column
from leadstream_ingest.csv_decode import has_invalid_bytes

_TAG_SPLIT = re.compile(r"[;,|]")


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # physical line where the row starts (the header is line 1)
    row: int  # 1-based data row number
    reason: str
    column: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "row": self.row, "reason": self.reason, "column": self.column}


@dataclass(frozen=True, slots=True)
class UploadMeta:
    """Per-upload constants every record carries."""

    job_id: str
    file_name: str | None
    ctx: RequestContext
    tags: tuple[str, ...]
    source: str = "csv"


class RowBuilder:
    """Turns one parsed row into a record (closure over the upload's columns and limits).

    Hot path (a million calls per large upload): the constant parts of the record are
    prepared once, and per row only the present fields are set.
    """

    def __init__(
        self, columns: Sequence[Column], meta: UploadMeta, *, max_field_chars: int
    ) -> None:
        self.columns = list(columns)
        self.meta = meta
        self.max_field_chars = max_field_chars
        self.width = len(columns)
        self.fields = [(c.index, c.field) for c in columns if c.field is not None]
        self.customs = [(c.index, c.custom) for c in columns if c.custom is not None]
        self.has_full_name = any(f == "full_name" for _, f in self.fields)
        self.has_tags = any(f == "tags" for _, f in self.fields)
        # Event ids: the job's own UUID space, the last 12 hex digits being the row number.
        job_space = str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadstream:csv:{meta.job_id}"))
        self.id_prefix = job_space[:24]
        ctx = meta.ctx
        self._details: dict[str, str | int | None] = {
            "form_id": None,
            "landing_page_url": None,
            "referrer": ctx.referrer,
            "utm_source": None,
            "utm_medium": None,
            "utm_campaign": None,
            "utm_term": None,
            "utm_content": None,
            "ip_address": ctx.ip_address,
            "user_agent": ctx.user_agent,
            "file_name": meta.file_name,
            "row_number": None,
            "upstream_record_id": None,
            "api_key_id": ctx.api_key_id,
        }
        self._template: dict[str, Any] = {
            "event_id": None,
            "job_id": meta.job_id,
            "source": meta.source,
            "event_time": 0,
            "request_id": ctx.request_id,
            "email": None,
            "first_name": None,
            "last_name": None,
            "phone": None,
            "company": None,
            "website": None,
            "title": None,
            "city": None,
            "state": None,
            "postal_code": None,
            "country": None,
            "tags": [],
            "custom_fields": {},
            "source_details": None,
            "consent": None,
        }

    def _too_long(self, row: list[str], line: int, number: int) -> RowError | None:
        limit = self.max_field_chars
        for value, column in zip(row, self.columns, strict=False):
            if len(value) > limit:
                return RowError(
                    line, number, f"field longer than {limit} characters", column.header
                )
        return None

    def build(
        self, row: list[str], line: int, number: int, event_time: int, *, check_bytes: bool
    ) -> dict[str, Any] | RowError:
        n = len(row)
        if n > self.width and any(v.strip() for v in row[self.width :]):
            return RowError(line, number, f"{n} fields, but the header has {self.width}", None)
        if sum(map(len, row)) > self.max_field_chars:  # only then look field by field
            error = self._too_long(row, line, number)
            if error is not None:
                return error
        if check_bytes:
            for value, column in zip(row, self.columns, strict=False):
                if has_invalid_bytes(value):
                    reason = "NUL, or bytes that are not valid in the file's encoding"
                    return RowError(line, number, reason, column.header)
        record = self._template.copy()
        for i, name in self.fields:
            if i < n:
                v = row[i].strip()
                if v:
                    record[name] = v
        email = record["email"]
        if email is None:
            return RowError(line, number, "email is empty", "email")
        local, at, domain = email.rpartition("@")
        if not at or not local or not domain or len(email) > 320:
            return RowError(line, number, "not an email address", "email")
        if self.has_full_name:
            full = record.pop("full_name", None)
            if full is not None and record["first_name"] is None and record["last_name"] is None:
                first, _, rest = full.partition(" ")
                record["first_name"], record["last_name"] = first, rest.strip() or None
        if self.customs:
            custom: dict[str, str] = {}
            for i, key in self.customs:
                if i < n:
                    v = row[i].strip()
                    if v:
                        custom[key] = v
            record["custom_fields"] = custom
        else:
            record["custom_fields"] = {}
        tags = record.pop("tags") if self.has_tags else None
        if self.meta.tags or tags:
            found = list(self.meta.tags)
            if isinstance(tags, str):
                found.extend(t.strip() for t in _TAG_SPLIT.split(tags) if t.strip())
            record["tags"] = found
        else:
            record["tags"] = []
        details = self._details.copy()
        details["row_number"] = number
        record["source_details"] = details
        record["event_id"] = f"{self.id_prefix}{number:012x}"
        record["event_time"] = event_time
        return record


def csv_reader(lines: Iterator[str], delimiter: str) -> Iterator[list[str]]:
    """A csv reader over physical lines (``strict`` off: a stray quote is data, as Excel
    reads it)."""
    return csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)


def is_blank(row: list[str]) -> bool:
    return not row or all(not v.strip() for v in row)
