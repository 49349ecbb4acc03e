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
    """Turns one parsed row into a record (closure over the upload's columns and limits)."""

    def __init__(
        self, columns: Sequence[Column], meta: UploadMeta, *, max_field_chars: int
    ) -> None:
        self.columns = list(columns)
        self.meta = meta
        self.max_field_chars = max_field_chars
        self.width = len(columns)
        self.fields = [(c.index, c.field) for c in columns if c.field is not None]
        self.customs = [(c.index, c.custom) for c in columns if c.custom is not None]
        self.ns = uuid.uuid5(uuid.NAMESPACE_URL, f"leadstream:csv:{meta.job_id}")
        ctx = meta.ctx
        self._details = {
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
            "upstream_record_id": None,
            "api_key_id": ctx.api_key_id,
        }

    def build(
        self, row: list[str], line: int, number: int, event_time: int, *, check_bytes: bool
    ) -> dict[str, Any] | RowError:
        if len(row) > self.width and any(v.strip() for v in row[self.width :]):
            return RowError(
                line, number, f"{len(row)} fields, but the header has {self.width}", None
            )
        limit = self.max_field_chars
        for value, column in zip(row, self.columns, strict=False):
            if len(value) > limit:
                return RowError(
                    line, number, f"field longer than {limit} characters", column.header
                )
        if check_bytes:
            for value, column in zip(row, self.columns, strict=False):
                if has_invalid_bytes(value):
                    return RowError(
                        line, number, "bytes that are not valid in the file's encoding",
                        column.header,
                    )  # fmt: skip
        n = len(row)
        got: dict[str, str] = {}
        for i, name in self.fields:
            if i < n:
                v = row[i].strip()
                if v:
                    got[name] = v
        email = got.get("email")
        if email is None:
            return RowError(line, number, "email is empty", "email")
        local, at, domain = email.rpartition("@")
        if not at or not local or not domain or len(email) > 320:
            return RowError(line, number, "not an email address", "email")
        first, last = got.get("first_name"), got.get("last_name")
        full = got.get("full_name")
        if full is not None and first is None and last is None:
            first, _, last_part = full.partition(" ")
            last = last_part.strip() or None
        custom: dict[str, str] = {}
        for i, key in self.customs:
            if i < n:
                v = row[i].strip()
                if v:
                    custom[key] = v
        tags = list(self.meta.tags)
        if "tags" in got:
            tags.extend(t.strip() for t in _TAG_SPLIT.split(got["tags"]) if t.strip())
        details: dict[str, str | int | None] = dict(self._details)
        details["row_number"] = number
        return {
            "event_id": str(uuid.uuid5(self.ns, str(number))),
            "job_id": self.meta.job_id,
            "source": self.meta.source,
            "event_time": event_time,
            "request_id": self.meta.ctx.request_id,
            "email": email,
            "first_name": first,
            "last_name": last,
            "phone": got.get("phone"),
            "company": got.get("company"),
            "website": got.get("website"),
            "title": got.get("title"),
            "city": got.get("city"),
            "state": got.get("state"),
            "postal_code": got.get("postal_code"),
            "country": got.get("country"),
            "tags": tags,
            "custom_fields": custom,
            "source_details": details,
            "consent": None,
        }


def csv_reader(lines: Iterator[str], delimiter: str) -> Iterator[list[str]]:
    """A csv reader over physical lines (``strict`` off: a stray quote is data, as Excel
    reads it)."""
    return csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)


def is_blank(row: list[str]) -> bool:
    return not row or all(not v.strip() for v in row)
