"""The compiled Avro encoder writes fastavro's bytes, or hands the record to the codec."""

from __future__ import annotations

import io
import json
import random
import string
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from fastavro import parse_schema, schemaless_writer

from leadstream.events import TopicCodec
from leadstream.events.schemas import load_schemas
from leadstream_ingest.avro_compiled import compiled_encoder

FRAME = b"\x00\x00\x00\x00\x07"
SCHEMAS = load_schemas()


class _Codec:
    """What the encoder uses of a TopicCodec: the schema text and ``serialize``."""

    def __init__(self, name: str) -> None:
        self.schema = SCHEMAS[name]
        self.parsed = parse_schema(json.loads(self.schema.text), named_schemas={})
        self.calls = 0

    def serialize(self, record: Any) -> bytes:
        self.calls += 1
        out = io.BytesIO()
        out.write(FRAME)
        schemaless_writer(out, self.parsed, record)
        return out.getvalue()


def _text(rng: random.Random) -> str:
    size = rng.choice([0, 1, 5, 63, 64, 200, 9000])
    alphabet = string.printable + "éü漢字🙂"
    return "".join(rng.choice(alphabet) for _ in range(size))


def _record(schema: Any, rng: random.Random) -> Any:
    if isinstance(schema, list):
        return None if rng.random() < 0.4 else _record(schema[1], rng)
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            return {f["name"]: _record(f["type"], rng) for f in schema["fields"]}
        if kind == "map":
            return {
                _text(rng): _record(schema["values"], rng) for _ in range(rng.choice([0, 1, 7]))
            }
        schema = kind
    if schema == "string":
        return _text(rng)
    if schema == "long":
        return rng.choice([0, 1, -1, 63, 64, -65, 8191, 8192, 2**40, -(2**62), 2**63 - 1])
    if schema == "int":
        return rng.choice([0, -1, 200, 2**31 - 1, -(2**31)])
    if schema == "double":
        return rng.choice([0.0, -1.5, 1e300, 3, 0.001])
    if schema == "boolean":
        return rng.random() < 0.5
    raise AssertionError(schema)


@pytest.mark.parametrize("name", ["Registration", "RequestLog"])
def test_random_records_encode_to_fastavros_bytes(name: str) -> None:
    codec = _Codec(name)
    encode = compiled_encoder(cast(TopicCodec, codec), FRAME)
    assert encode != codec.serialize  # compiled
    schema = json.loads(codec.schema.text)
    rng = random.Random(7)
    for _ in range(500):
        record = _record(schema, rng)
        calls = codec.calls
        assert encode(record) == codec.serialize(record)
        assert codec.calls == calls + 1  # only the comparison's own call


def test_records_the_compiled_code_does_not_take_go_to_the_codec() -> None:
    codec = _Codec("Registration")
    encode = compiled_encoder(cast(TopicCodec, codec), FRAME)
    rng = random.Random(3)
    base = _record(json.loads(codec.schema.text), rng)
    consent = {"granted": True, "method": None, "text": None, "ip_address": None}
    odd = [
        {**base, "consent": {**consent, "captured_at": datetime(2026, 1, 2, tzinfo=UTC)}},
        {**base, "custom_fields": {"a": 1}},  # not a string: fastavro decides (refuses)
        {k: v for k, v in base.items() if k != "phone"},  # missing, no default: refused
    ]
    for record in odd:
        try:
            expected: bytes | type[Exception] = codec.serialize(record)
        except Exception as exc:
            expected = type(exc)
        calls = codec.calls
        if isinstance(expected, bytes):
            assert encode(record) == expected
        else:
            with pytest.raises(expected):
                encode(record)
        assert codec.calls == calls + 1  # handed over


def test_a_schema_it_does_not_compile_uses_the_codec() -> None:
    codec = _Codec("ContactSubmitted")  # has an array (tags)
    assert compiled_encoder(cast(TopicCodec, codec), FRAME) == codec.serialize


def test_missing_fields_take_their_defaults_as_in_fastavro() -> None:
    codec = _Codec("Registration")
    encode = compiled_encoder(cast(TopicCodec, codec), FRAME)
    base = _record(json.loads(codec.schema.text), random.Random(5))
    partial = {k: v for k, v in base.items() if k not in ("first_name", "custom_fields")}
    partial["source_details"] = {"ip_address": "192.0.2.1", "user_agent": None}
    expected = codec.serialize(partial)
    calls = codec.calls
    assert encode(partial) == expected
    assert codec.calls == calls  # compiled, not handed over
