"""The CSV upload parser, without I/O: encoding detection, line splitting, delimiter sniffing,
header mapping, row errors with line numbers, and hypothesis round-trips of generated CSVs
(quoting, delimiters, encodings, arbitrary chunk boundaries)."""

from __future__ import annotations

import codecs
import csv
import io
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leadstream.events import EventSettings, TopicCodec, load_schemas
from leadstream_ingest.avro_rows import row_encoder
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.contacts import RequestContext
from leadstream_ingest.csv_columns import normalize_header, parse_mapping, resolve_columns
from leadstream_ingest.csv_decode import AutoDecoder, lines, sniff_delimiter, text_chunks
from leadstream_ingest.csv_rows import UploadMeta
from leadstream_ingest.errors import InvalidInput, TooLarge
from leadstream_ingest.uploads import UploadOptions, UploadParser, UploadSummary

SETTINGS = IngestSettings(
    env="test",
    max_upload_rows=10_000,
    max_field_chars=200,
    upload_errors_reported=5,
    max_csv_columns=20,
)
CTX = RequestContext("req-1", "key_1", "10.0.0.1", "pytest", None)


def parse(
    data: bytes,
    *,
    chunk: int = 7,
    settings: IngestSettings = SETTINGS,
    **options: Any,
) -> tuple[UploadSummary, list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    headers_seen: list[UploadSummary] = []
    meta = UploadMeta(job_id="job-1", file_name="f.csv", ctx=CTX, tags=("t0",))
    parser = UploadParser(
        settings, UploadOptions(**options), meta, records.append, headers_seen.append
    )
    chunks = (data[i : i + chunk] for i in range(0, len(data), chunk))
    summary = parser.parse(iter(chunks))
    assert len(headers_seen) == 1
    return summary, records


# ------------------------------------------------------------------ decoding


def decode_all(data: bytes, chunk: int, declared: str | None = None) -> tuple[str, AutoDecoder]:
    decoder = AutoDecoder(declared)
    parts = (data[i : i + chunk] for i in range(0, len(data), chunk))
    return "".join(text_chunks(parts, decoder)), decoder


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1000])
def test_decoder_detects_each_encoding(chunk: int) -> None:
    text = "email,name\nzoë@example.com,Zoë Ærø\n"
    for encoded, expected in [
        (text.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + text.encode("utf-8"), "utf-8-sig"),
        (text.encode("utf-16"), "utf-16"),
        (text.encode("cp1252"), "cp1252"),
    ]:
        decoded, decoder = decode_all(encoded, chunk)
        assert (decoded, decoder.encoding) == (text, expected)
        assert not decoder.dirty


def test_ascii_prefix_then_cp1252_switches_losslessly() -> None:
    data = b"email\n" + b"a@b.com\n" * 5000 + "caf\u00e9@b.com\n".encode("cp1252")
    decoded, decoder = decode_all(data, 4096)
    assert decoder.encoding == "cp1252"
    assert decoded.endswith("café@b.com\n")


def test_utf8_then_invalid_bytes_marks_dirty_instead_of_guessing() -> None:
    data = "email\nzoë@b.com\n".encode() + b"bad\xff@b.com\n"
    decoded, decoder = decode_all(data, 3)
    assert decoder.encoding == "utf-8"
    assert decoder.dirty
    assert "zoë@b.com" in decoded


def test_cp1252_undefined_bytes_still_decode() -> None:
    decoded, decoder = decode_all(b"email\n\x81\x8d@b.com\n", 100)
    assert decoder.encoding == "cp1252"
    assert "\x81\x8d@b.com" in decoded


def test_lines_split_on_newline_only_and_keep_endings() -> None:
    assert list(lines(["a,b\r\nc", ",d\n\u2028e\x0cf\n", "g"])) == [
        "a,b\r\n",
        "c,d\n",
        "\u2028e\x0cf\n",
        "g",
    ]
    assert list(lines(["a,b\rc,d\r"])) == ["a,b\r", "c,d\r"]  # classic Mac endings


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("email,name", ","),
        ("email;name;company", ";"),
        ("email\tname", "\t"),
        ("email|name", "|"),
        ('"a;b",c,d', ","),
        ("email", ","),
    ],
)
def test_sniff_delimiter(header: str, expected: str) -> None:
    assert sniff_delimiter(header) == expected


# ------------------------------------------------------------------ header mapping


def test_common_aliases_map_to_fields() -> None:
    headers = ["E-mail", "First Name", "Last_Name", "company_name", "Zip", "Mobile", "Notes"]
    columns = resolve_columns(headers, {}, max_columns=20)
    assert [c.target for c in columns] == [
        "email",
        "first_name",
        "last_name",
        "company",
        "postal_code",
        "phone",
        "custom:Notes",
    ]
    assert normalize_header(" Email Address ") == "emailaddress"


def test_explicit_mapping_wins_and_can_drop_columns() -> None:
    mapping = parse_mapping('{"Contact": "email", "E-mail": null, "Org": "custom:org_name"}')
    columns = resolve_columns(["Contact", "E-mail", "Org"], mapping, max_columns=20)
    assert [c.target for c in columns] == ["email", None, "custom:org_name"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "bad_mapping"),
        ("[1]", "bad_mapping"),
        ('{"a": "no_such_field"}', "bad_mapping"),
        ('{"a": 3}', "bad_mapping"),
    ],
)
def test_bad_mapping_parameter(raw: str, code: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_mapping(raw)
    assert err.value.code == code


def test_unusable_headers_are_refused_with_a_reason() -> None:
    with pytest.raises(InvalidInput, match="no email column") as err:
        resolve_columns(["name", "phone"], {}, max_columns=20)
    assert err.value.code == "no_email_column"
    with pytest.raises(InvalidInput, match="both map to email"):
        resolve_columns(["Email", "E-mail"], {}, max_columns=20)
    with pytest.raises(InvalidInput, match="not in the header"):
        resolve_columns(["email"], {"Mail": "email"}, max_columns=20)
    with pytest.raises(InvalidInput, match="columns"):
        resolve_columns([f"c{i}" for i in range(21)], {}, max_columns=20)


# ------------------------------------------------------------------ rows


def test_rows_become_records_and_errors_carry_line_numbers() -> None:
    data = (
        "Email;First Name;Company;Tags;Notes\n"
        "  Ann@Example.com ;Ann;Acme;a,b;\n"
        "\n"
        ';Bob;"multi\nline";;\n'
        "not-an-email;C;;;\n"
        "dan@example.com;Dan;;;x;extra\n"
        "eve@example.com;Eve;" + "x" * 201 + ";;\n"
        "fay@example.com;Fay;;;kept\n"
    ).encode()
    summary, records = parse(data)
    assert summary.delimiter == ";"
    assert (summary.rows_total, summary.rows_accepted, summary.rows_rejected) == (6, 2, 4)
    assert [(e.line, e.row, e.column) for e in summary.errors] == [
        (4, 2, "email"),  # the row starts on line 4 (its company spans lines 4-5)
        (6, 3, "email"),
        (7, 4, None),  # more fields than the header
        (8, 5, "Company"),
    ]
    assert summary.errors[0].reason == "email is empty"
    ann, fay = records
    assert ann["email"] == "Ann@Example.com"
    assert ann["tags"] == ["t0", "a", "b"]
    assert ann["job_id"] == "job-1"
    assert ann["source_details"]["row_number"] == 1
    assert ann["source_details"]["file_name"] == "f.csv"
    assert ann["source_details"]["api_key_id"] == "key_1"
    assert fay["custom_fields"] == {"Notes": "kept"}
    assert fay["source_details"]["row_number"] == 6


def test_errors_beyond_the_reported_number_are_counted() -> None:
    data = b"email\n" + b"bad\n" * 20 + b"ok@b.com\n"
    summary, records = parse(data)
    assert (summary.rows_rejected, len(summary.errors), len(records)) == (20, 5, 1)
    assert summary.as_dict(5)["errors_truncated"] is True


def test_full_name_is_split_and_event_ids_are_deterministic() -> None:
    data = b"Name,Email\nJane van Dyke,jane@b.com\n"
    _, first = parse(data)
    _, second = parse(data)
    assert (first[0]["first_name"], first[0]["last_name"]) == ("Jane", "van Dyke")
    assert first[0]["event_id"] == second[0]["event_id"]


def test_invalid_bytes_in_a_utf8_file_are_row_errors() -> None:
    data = "email,name\nzoë@b.com,Zoë\n".encode() + b"x@b.com,Bj\xf6rn\ny@b.com,Y\n"
    summary, records = parse(data, chunk=4)
    assert [r["email"] for r in records] == ["zoë@b.com", "y@b.com"]
    assert [(e.line, e.column) for e in summary.errors] == [(3, "name")]


def test_too_many_rows_stops_the_upload() -> None:
    small = SETTINGS.model_copy(update={"max_upload_rows": 3})
    with pytest.raises(TooLarge, match="more than 3"):
        parse(b"email\n" + b"a@b.com\n" * 4, settings=small)


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "empty_upload"), (b"\n\n", "empty_upload"), (b"name\nx\n", "no_email_column")],
)
def test_unusable_files(data: bytes, code: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse(data)
    assert err.value.code == code


def test_declared_encoding_and_delimiter_skip_detection() -> None:
    data = "email;x\nzoé@b.com;1\n".encode("latin-1")
    summary, records = parse(data, encoding="latin-1", delimiter=";")
    assert summary.encoding == "latin-1"
    assert records[0]["email"] == "zoé@b.com"


# ------------------------------------------------------------------ round trips

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=30,
)
_LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-+", min_size=1, max_size=12)
_CP1252 = st.text(
    alphabet=st.characters(
        codec="cp1252", blacklist_categories=("Cs",), blacklist_characters="\x00"
    ),
    max_size=30,
)


def _first_non_ascii_is_invalid_utf8(data: bytes) -> bool:
    i = next((n for n, b in enumerate(data) if b >= 0x80), None)
    if i is None:
        return True
    for k in (2, 3, 4):
        try:
            data[i : i + k].decode("utf-8")
            return False
        except UnicodeDecodeError:
            continue
    return True


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, list[dict[str, str | None]], str | None, int]:
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "cp1252-auto"]))
    text = _CP1252 if encoding.startswith("cp1252") else _TEXT
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    line_end = draw(st.sampled_from(["\n", "\r\n"]))
    n = draw(st.integers(min_value=1, max_value=12))
    if quoting == csv.QUOTE_MINIMAL and line_end == "\n":
        # csv.writer then leaves a bare \r unquoted: not valid CSV (RFC 4180), so not generated.
        text = text.map(lambda t: t.replace("\r", " "))
    rows = [
        {
            "email": f"{draw(_LOCAL)}{i}@example.com",
            "first_name": draw(text),
            "company": draw(text),
            "note": draw(text),
        }
        for i in range(n)
    ]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator=line_end)
    writer.writerow(["E-mail", "First Name", "company_name", "Note"])
    for r in rows:
        writer.writerow([r["email"], r["first_name"], r["company"], r["note"]])
    body = out.getvalue()
    data = body.encode(encoding.removesuffix("-auto"))
    if encoding == "cp1252-auto":
        assume(_first_non_ascii_is_invalid_utf8(data))
    declared = "cp1252" if encoding == "cp1252" else None
    expected = [
        {
            "email": r["email"],
            "first_name": (r["first_name"] or "").strip() or None,
            "company": (r["company"] or "").strip() or None,
            "note": (r["note"] or "").strip() or None,
        }
        for r in rows
    ]
    chunk = draw(st.integers(min_value=1, max_value=64))
    return data, expected, declared, chunk


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_generated_csvs_round_trip(
    case: tuple[bytes, list[dict[str, Any]], str | None, int],
) -> None:
    data, expected, declared, chunk = case
    summary, records = parse(data, chunk=chunk, encoding=declared)
    assert summary.rows_rejected == 0, summary.errors
    got = [
        {
            "email": r["email"],
            "first_name": r["first_name"],
            "company": r["company"],
            "note": r["custom_fields"].get("Note"),
        }
        for r in records
    ]
    assert got == expected
    assert [r["source_details"]["row_number"] for r in records] == list(range(1, len(expected) + 1))


# ------------------------------------------------------------------ the fast row encoder


class _Registry:
    """Enough of a registry client for TopicCodec.prepare (no I/O)."""

    class _Registered:
        schema_id = 42

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def lookup_schema(self, subject: str, schema: object) -> _Registered:
        return self._Registered()

    def get_schema(self, schema_id: int) -> Schema:
        assert schema_id == 42
        return self.schema


def _codec() -> TopicCodec:
    schema = load_schemas(EventSettings(env="test"))["ContactSubmitted"]
    registry = _Registry(Schema(schema.text, "AVRO"))
    return TopicCodec("contacts.raw", schema, registry)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    cells=st.lists(st.lists(_TEXT, min_size=5, max_size=5), min_size=1, max_size=8),
    tags=st.lists(st.text(min_size=1, max_size=10), max_size=3),
    file_name=st.none() | st.text(max_size=300),
)
def test_fast_row_encoder_writes_what_fastavro_writes(
    cells: list[list[str]], tags: list[str], file_name: str | None
) -> None:
    codec = _codec()
    header = ["Email", "First Name", "Tags", "Notes", "Zip"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for i, row in enumerate(cells):
        writer.writerow([f"p{i}@example.com", *row[1:]])
    ctx = RequestContext("req", None, "::1", "ua" * 200, "https://ref")
    meta = UploadMeta(job_id="job-x", file_name=file_name, ctx=ctx, tags=tuple(tags))
    records: list[dict[str, Any]] = []
    UploadParser(SETTINGS, UploadOptions(), meta, records.append, lambda _: None).parse(
        iter([out.getvalue().encode()])
    )
    encode = row_encoder(codec, records[0])
    assert encode != codec.serialize  # the fast path was taken (== compares bound methods)
    for record in records:
        assert encode(record) == codec.serialize(record)
        assert codec.deserialize(encode(record))["email"] == record["email"]


def test_fast_row_encoder_falls_back_when_the_record_does_not_fit() -> None:
    codec = _codec()
    _, records = parse(b"email\na@b.c\n")
    odd = {**records[0], "consent": {"granted": True}}
    assert row_encoder(codec, odd) == codec.serialize
