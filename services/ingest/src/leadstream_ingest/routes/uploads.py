"""``POST /v1/uploads``: a CSV file, streamed (raw ``text/csv`` body or multipart)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from leadstream_ingest.auth import IngestKey
from leadstream_ingest.contacts import job_id_for, refuse_nul
from leadstream_ingest.csv_columns import parse_mapping
from leadstream_ingest.csv_decode import normalize_encoding
from leadstream_ingest.csv_rows import UploadMeta
from leadstream_ingest.deps import ServicesDep, request_context
from leadstream_ingest.errors import InvalidInput, UnsupportedMedia
from leadstream_ingest.multipart_stream import MultipartFile, boundary_of
from leadstream_ingest.uploads import UploadOptions

router = APIRouter(prefix="/v1", tags=["uploads"])

CSV_TYPES = frozenset(
    {
        "text/csv",
        "application/csv",
        "text/plain",
        "text/tab-separated-values",
        "application/vnd.ms-excel",
        "application/octet-stream",
    }
)
DELIMITERS = {
    ",": ",",
    ";": ";",
    "\t": "\t",
    "|": "|",
    "comma": ",",
    "semicolon": ";",
    "tab": "\t",
    "pipe": "|",
}


class RowErrorOut(BaseModel):
    line: int
    row: int
    reason: str
    column: str | None


class UploadAccepted(BaseModel):
    request_id: str
    job_id: str
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    errors: list[RowErrorOut]
    errors_truncated: bool
    encoding: str
    delimiter: str
    columns: dict[str, str | None]


_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed body (multipart)"},
    401: {"description": "Missing, invalid or revoked API key"},
    403: {"description": "The key lacks the ingest scope"},
    413: {"description": "File or row count over the limit"},
    415: {"description": "Not a CSV content type"},
    422: {"description": "Unusable file: encoding, no header, no email column, no valid row"},
    503: {"description": "The broker did not acknowledge; the job is marked failed"},
}


def _media(content_type: str) -> tuple[str, str | None]:
    media, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip().strip('"')
    return media.strip().lower(), charset


@router.post(
    "/uploads",
    status_code=202,
    response_model=UploadAccepted,
    responses=ERRORS,
    openapi_extra={"requestBody": _BODY},
    summary="Upload a CSV file of contacts (streamed; creates a job)",
)
async def upload_csv(
    request: Request,
    principal: IngestKey,
    services: ServicesDep,
    file_name: Annotated[str | None, Query(max_length=255)] = None,
    name: Annotated[str | None, Query(max_length=256, description="Job name.")] = None,
    encoding: Annotated[
        str | None, Query(max_length=40, description="Skip detection: utf-8, cp1252, …")
    ] = None,
    delimiter: Annotated[
        str | None, Query(max_length=9, description="Skip sniffing: , ; tab | (or names).")
    ] = None,
    mapping: Annotated[
        str | None,
        Query(
            max_length=20_000,
            description='JSON object header → field, e.g. {"E-mail": "email", "Notes": null}.',
        ),
    ] = None,
    tags: Annotated[list[str] | None, Query(max_length=50, description="Tags for every row.")] = (
        None
    ),
) -> JSONResponse:
    """Streams the body: rows are validated and produced as they arrive; answered 202 after
    the broker acknowledged every accepted row. Row errors are counted and the first ones
    returned with their line numbers."""
    settings = services.settings
    media, charset = _media(request.headers.get("content-type", ""))
    declared = encoding or charset
    options_encoding = normalize_encoding(declared) if declared else None
    sep = None
    if delimiter is not None:
        sep = DELIMITERS.get(delimiter.lower() if len(delimiter) > 1 else delimiter)
        if sep is None:
            raise InvalidInput("delimiter must be one of , ; tab |", code="bad_delimiter")
    column_mapping = parse_mapping(mapping)
    clean_tags = tuple(t.strip()[:64] for t in (tags or ()) if t.strip())
    body: AsyncIterator[bytes] = request.stream()
    if media == "multipart/form-data":
        multipart = MultipartFile(body, boundary_of(request.headers["content-type"]))
        file_name = file_name or await multipart.open()
        body = aiter(multipart)
    elif media not in CSV_TYPES:
        raise UnsupportedMedia(
            f"send the CSV as text/csv (or multipart/form-data), not {media or 'no type'!r}",
            code="unsupported_media_type",
        )
    try:
        refuse_nul([file_name, name, list(clean_tags), column_mapping])
    except ValueError:
        raise InvalidInput(
            "file_name, name, tags and mapping must not contain NUL characters", code="bad_text"
        ) from None
    ctx = request_context(request, principal.key_id)
    job_id = job_id_for(None)
    request.state.job_id = job_id
    options = UploadOptions(
        file_name=file_name,
        encoding=options_encoding,
        delimiter=sep,
        mapping=column_mapping,
        tags=clean_tags,
        name=name,
    )
    meta = UploadMeta(job_id=job_id, file_name=file_name, ctx=ctx, tags=clean_tags)
    summary = await services.uploads.accept(body, options, meta)
    services.metrics.contacts.labels("csv").inc(summary.rows_accepted)
    services.metrics.rows_rejected.inc(summary.rows_rejected)
    answer = {"request_id": ctx.request_id, **summary.as_dict(settings.upload_errors_reported)}
    return JSONResponse(answer, status_code=202)
