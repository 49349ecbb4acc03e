"""The generated Avro encoders/decoders (``leadstream.events.compiled``) against fastavro, for
random records of every schema in the repo (current and released): the same bytes, the same
decoded records; and through ``TopicCodec``, the same outcome (value or error) for values and
bytes outside the fast path, which must fall back to fastavro."""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadstream.events.codec import TopicCodec
from leadstream.events.compiled import Fallback, compile_decoder, compile_encoder
from leadstream.events.errors import InvalidEventError, UndecodableEventError
from leadstream.events.schemas import load_schema

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "schemas").glob("*.avsc")) + sorted(
    (ROOT / "schemas" / "released").glob("*/*.avsc")
)
FRAME = b"\x00\x00\x00\x00\x07"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TEXT = st.text(max_size=80) | st.sampled_from(["", "x", "a" * 70, "é" * 40, "用户"])
LONG = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1) | st.integers(-200, 200)
INT = st.integers(min_value=-(1 << 31), max_value=(1 << 31) - 1)
DOUBLE = st.floats(allow_nan=False)
MILLIS = st.integers(-62_135_596_800_000, 253_402_300_799_999) | st.integers(0, 2_000_000_000_000)


def _parsed(path: Path) -> dict[str, Any]:
    parsed: dict[str, Any] = parse_schema(json.loads(load_schema(path).text), named_schemas={})
    return parsed


def _valid(t: Any) -> st.SearchStrategy[Any]:
    """Values of Avro type ``t`` in the shapes the fast path takes."""
    if isinstance(t, list):
        assert t[0] == "null"
        assert len(t) == 2
        return st.none() | _valid(t[1])
    name = t if isinstance(t, str) else t["type"]
    if isinstance(t, dict) and t.get("logicalType") == "timestamp-millis":
        # out of datetime's range neither reader can decode it; written as int or datetime
        return (
            MILLIS
            | st.datetimes(
                min_value=datetime(1, 1, 2),
                max_value=datetime(9999, 12, 30),
                timezones=st.just(UTC),
            )
            | st.datetimes(timezones=st.timezones())
        )
    if name == "string":
        return TEXT
    if name == "boolean":
        return st.booleans()
    if name == "long":
        return LONG
    if name == "int":
        return INT
    if name == "double":
        return DOUBLE
    if name == "null":
        return st.none()
    if name == "array":
        return st.lists(_valid(t["items"]), max_size=70)
    if name == "map":
        return st.dictionaries(TEXT, _valid(t["values"]), max_size=70)
    if name == "record":
        return st.fixed_dictionaries({f["name"]: _valid(f["type"]) for f in t["fields"]})
    raise AssertionError(f"no strategy for {t}")


def _odd(t: Any) -> st.SearchStrategy[Any]:
    """Values fastavro may coerce, read otherwise or refuse: never the fast path's to decide."""
    others = st.sampled_from(
        [1, 1.5, True, "s", b"b", None, [], {}, ("string", "x"), datetime(2026, 1, 1, tzinfo=UTC)]
    )
    if isinstance(t, list):
        return others | _odd(t[1])
    name = t if isinstance(t, str) else t["type"]
    if name == "record":
        return (
            others
            | _record_with_odd_field(t)
            | st.builds(lambda d: {**d, "-type": "x"}, _valid(t))
            | st.builds(lambda d: {**d, "extra": 1}, _valid(t))
        )
    if name == "long":
        return others | st.just(1 << 63) | st.just(-(1 << 63) - 1)
    if name == "int":
        return others | st.just(1 << 31) | st.just(1 << 40)
    if name == "array":
        return others | st.lists(_odd(t["items"]), max_size=3)
    if name == "map":
        return others | st.dictionaries(TEXT, _odd(t["values"]), max_size=3)
    return others | st.just("\ud800")  # a lone surrogate cannot be UTF-8


def _record_with_odd_field(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    fields = schema["fields"]

    def build(base: dict[str, Any], odd: tuple[int, Any], drop: bool) -> dict[str, Any]:
        out = dict(base)
        name = fields[odd[0]]["name"]
        if drop:
            out.pop(name)
        else:
            out[name] = odd[1]
        return out

    odd_field = st.integers(0, len(fields) - 1).flatmap(
        lambda i: st.tuples(st.just(i), _odd(fields[i]["type"]))
    )
    return st.builds(build, _valid(schema), odd_field, st.booleans())


def _fastavro_bytes(schema: dict[str, Any], record: Any) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, schema, record)
    return buf.getvalue()


def _fastavro_read(schema: dict[str, Any], data: bytes) -> Any:
    return schemaless_reader(io.BytesIO(data), schema, None)


def _codecs(path: Path) -> tuple[TopicCodec, TopicCodec]:
    """(the codec as shipped, the same codec on fastavro only), prepared without a registry."""
    fast = TopicCodec("t", load_schema(path), registry=None)  # type: ignore[arg-type]
    slow = TopicCodec("t", load_schema(path), registry=None)  # type: ignore[arg-type]
    slow._encode = None
    slow._decode = None
    for codec in (fast, slow):
        codec._frame = FRAME
        codec._readers[7] = (codec._repo_parsed, None)
    return fast, slow


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT / "schemas")))
def test_every_schema_compiles(path: Path) -> None:
    schema = _parsed(path)
    assert compile_encoder(schema) is not None
    assert compile_decoder(schema) is not None


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT / "schemas")))
def test_same_bytes_and_records_as_fastavro(path: Path) -> None:
    schema = _parsed(path)
    encode = compile_encoder(schema)
    decode = compile_decoder(schema)
    assert encode is not None
    assert decode is not None

    @SETTINGS
    @given(_valid(schema))
    def check(record: dict[str, Any]) -> None:
        expected = _fastavro_bytes(schema, record)
        try:
            fast = encode(record, FRAME)
        except Fallback:  # a naive datetime (local time) is fastavro's
            fast = FRAME + expected
        assert fast == FRAME + expected
        value, end = decode(FRAME + expected, len(FRAME))
        assert end == len(FRAME) + len(expected)
        read = _fastavro_read(schema, expected)
        assert value == read
        assert repr(value) == repr(read)  # same types (datetime with the same tzinfo …)

    check()


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT / "schemas")))
def test_values_outside_the_fast_path_get_fastavro_outcome(path: Path) -> None:
    fast, slow = _codecs(path)

    @SETTINGS
    @given(_record_with_odd_field(_parsed(path)))
    def check(record: dict[str, Any]) -> None:
        try:
            expected: bytes | type[Exception] = slow.serialize(record)
        except InvalidEventError:
            expected = InvalidEventError
        try:
            got: bytes | type[Exception] = fast.serialize(record)
        except InvalidEventError:
            got = InvalidEventError
        assert got == expected

    check()


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT / "schemas")))
def test_damaged_bytes_get_fastavro_outcome(path: Path) -> None:
    schema = _parsed(path)
    fast, slow = _codecs(path)

    @SETTINGS
    @given(_valid(schema), st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 3))
    def check(record: dict[str, Any], where: int, byte: int, how: int) -> None:
        data = bytearray(FRAME + _fastavro_bytes(schema, record))
        i = len(FRAME) + where % (len(data) - len(FRAME))
        if how == 0:
            data[i] = byte  # one byte changed
        elif how == 1:
            del data[i:]  # truncated
        elif how == 2:
            data.append(byte)  # trailing garbage
        else:
            data[i:i] = bytes([0xFF] * 11)  # an over-long varint
        outcomes = []
        for codec in (slow, fast):
            try:
                value = codec.deserialize(bytes(data))
                outcomes.append(repr(value))
            except UndecodableEventError as exc:
                outcomes.append(f"undecodable {exc.reason}")
        assert outcomes[1] == outcomes[0]

    check()


def test_non_canonical_encodings_are_read_like_fastavro() -> None:
    """Overlong varints, negative block counts and a boolean byte of 2 are legal for some
    readers; the fast path leaves them to fastavro."""
    path = ROOT / "schemas" / "ContactSubmitted.avsc"
    fast, slow = _codecs(path)
    schema = _parsed(path)
    base = {f["name"]: None for f in schema["fields"]}
    base.update(event_id="e", source="csv", event_time=5, email="a@b.c", tags=["x"])
    base["custom_fields"] = {"k": "v"}
    data = FRAME + _fastavro_bytes(schema, base)
    assert fast.deserialize(data) == slow.deserialize(data)
    # event_id "e" with its length 1 as an overlong varint (0x82 0x00)
    overlong = FRAME + b"\x82\x00" + data[len(FRAME) + 1 :]
    assert fast.deserialize(overlong) == slow.deserialize(overlong)
    when = slow.deserialize(data)["event_time"]
    assert when == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=5)
    assert struct.calcsize("<d") == 8
