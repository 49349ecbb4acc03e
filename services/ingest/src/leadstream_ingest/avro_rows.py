"""A fast Avro encoder for the ``ContactSubmitted`` records of one CSV upload.

Every row of an upload shares most of its record (job id, source, request id, nearly all of
``source_details``, no consent), so those byte segments are encoded once and each row only
encodes what varies. The generic path (fastavro's ``schemaless_writer``) costs ~4× more
per row here, and that cost decides how fast a large upload is accepted.

Safety: the encoder knows the field layout of ``schemas/ContactSubmitted.avsc``. When it is
built it checks the schema's fields against that layout and encodes probe records both
ways; if anything differs (the schema evolved) :func:`row_encoder` returns the generic
encoder instead, so a schema change can make uploads slower, never wrong.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastavro import parse_schema, schemaless_writer

from leadstream.events import TopicCodec

Encoder = Callable[[Mapping[str, Any]], bytes]

_OPTIONAL_CONTACT = (
    "first_name", "last_name", "phone", "company", "website", "title", "city", "state",
    "postal_code", "country",
)  # fmt: skip
_DETAILS = (
    "form_id", "landing_page_url", "referrer", "utm_source", "utm_medium", "utm_campaign",
    "utm_term", "utm_content", "ip_address", "user_agent", "file_name", "row_number",
    "upstream_record_id", "api_key_id",
)  # fmt: skip
_LAYOUT = (
    "event_id", "job_id", "source", "event_time", "request_id", "email", *_OPTIONAL_CONTACT,
    "tags", "custom_fields", "source_details", "consent",
)  # fmt: skip


def _long(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [_long(n) for n in range(1 << 14)]  # 1–3 byte varints, looked up instead of built


def _string(value: str) -> bytes:
    data = value.encode()
    n = len(data)
    return (_SMALL[n] if n < 16384 else _long(n)) + data


def _optional(value: str | None) -> bytes:
    return b"\x00" if value is None else b"\x02" + _string(value)


class RowEncoder:
    """Encodes the records of one upload; constant parts are taken from the first record."""

    def __init__(self, frame: bytes, first: Mapping[str, Any]) -> None:
        self.frame = frame
        self.job_id = first["job_id"]
        self.source = first["source"]
        self.request_id = first["request_id"]
        details = first["source_details"]
        self.details = {k: details[k] for k in _DETAILS if k != "row_number"}
        self._mid = _optional(self.job_id) + _string(self.source)
        self._after_time = _optional(self.request_id)
        before = b"".join(_optional(details[k]) for k in _DETAILS[:11])
        after = b"".join(_optional(details[k]) for k in _DETAILS[12:])
        self._details_before = b"\x02" + before  # union branch 1: the record
        self._details_after = after + b"\x00"  # then consent: null
        self._time: int | None = None
        self._time_bytes = b""

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether the record shares this upload's constant parts (full check)."""
        details = record["source_details"]
        return (
            record["job_id"] == self.job_id
            and record["source"] == self.source
            and record["request_id"] == self.request_id
            and record["consent"] is None
            and details is not None
            and all(details[k] == v for k, v in self.details.items())
        )

    def __call__(self, r: Mapping[str, Any]) -> bytes:
        small = _SMALL
        t = r["event_time"]
        if t != self._time:  # rows of the same millisecond share the encoding
            self._time, self._time_bytes = t, _long(t)
        parts = [
            self.frame,
            _string(r["event_id"]),
            self._mid,
            self._time_bytes,
            self._after_time,
            _string(r["email"]),
        ]
        append = parts.append
        for name in _OPTIONAL_CONTACT:
            value = r[name]
            if value is None:
                append(b"\x00")
            else:
                data = value.encode()
                n = len(data)
                append(b"\x02" + (small[n] if n < 16384 else _long(n)) + data)
        tags = r["tags"]
        append(_array(tags) if tags else b"\x00")
        custom = r["custom_fields"]
        append(_map(custom) if custom else b"\x00")
        append(self._details_before)
        row = r["source_details"]["row_number"]
        if row is None:
            append(b"\x00")
        else:
            append(b"\x02" + (small[row] if row < 16384 else _long(row)))
        append(self._details_after)
        return b"".join(parts)


def _array(items: Sequence[str]) -> bytes:
    if not items:
        return b"\x00"
    return _long(len(items)) + b"".join(_string(i) for i in items) + b"\x00"


def _map(items: Mapping[str, str]) -> bytes:
    if not items:
        return b"\x00"
    body = b"".join(_string(k) + _string(v) for k, v in items.items())
    return _long(len(items)) + body + b"\x00"


def _layout_ok(schema_text: str) -> bool:
    schema = json.loads(schema_text)
    names = tuple(f["name"] for f in schema.get("fields", ()))
    if names != _LAYOUT:
        return False
    details = next(f for f in schema["fields"] if f["name"] == "source_details")["type"]
    record = next((t for t in details if isinstance(t, dict)), None)
    return record is not None and tuple(f["name"] for f in record["fields"]) == _DETAILS


def row_encoder(codec: TopicCodec, first: Mapping[str, Any]) -> Encoder:
    """The fast encoder for an upload whose first record is ``first``, or the codec's own
    ``serialize`` when the schema or the record does not fit it.

    The records must come from the same :class:`~leadstream_ingest.csv_rows.RowBuilder` as
    ``first`` (it sets the constant parts, once per upload); only the job id is re-checked
    per record, the rest was checked on ``first``.
    """
    if not _layout_ok(codec.schema.text):
        return codec.serialize
    frame = codec.serialize(first)[:5]  # magic byte + schema id (prepares the codec)
    fast = RowEncoder(frame, first)
    if not fast.matches(first):
        return codec.serialize
    parsed = parse_schema(json.loads(codec.schema.text), named_schemas={})
    probes = [dict(first), {**first, "tags": ["a", "é"], "custom_fields": {"k": "v" * 300}}]
    for probe in probes:
        buffer = io.BytesIO()
        buffer.write(frame)
        schemaless_writer(buffer, parsed, probe)
        if fast(probe) != buffer.getvalue():
            return codec.serialize

    job_id = fast.job_id

    def encode(record: Mapping[str, Any]) -> bytes:
        return fast(record) if record["job_id"] == job_id else codec.serialize(record)

    return encode
