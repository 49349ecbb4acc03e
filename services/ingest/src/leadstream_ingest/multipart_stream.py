"""The file part of a ``multipart/form-data`` upload, streamed (browsers and ``curl -F``).

The body goes through python-multipart's push parser chunk by chunk; only the first part
that carries a file (a ``filename``, or the field name ``file``) is passed on, so memory
stays flat like the raw ``text/csv`` path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from leadstream_ingest.errors import InvalidInput, MalformedRequest


class MultipartFile:
    """``await open()`` reads up to the file part and returns its file name; then iterate."""

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes) -> None:
        self._body = body
        self._out: list[bytes] = []
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._in_file = False
        self._chosen = False
        self._done = False
        self.file_name: str | None = None
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._part_begin,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                    "on_header_field": self._header_field_data,
                    "on_header_value": self._header_value_data,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                },
            )
        except (FormParserError, ValueError) as exc:
            raise MalformedRequest(f"bad multipart boundary: {exc}", code="bad_multipart") from exc

    # python-multipart callbacks -------------------------------------------------------

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        if self._chosen:
            return
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        filename = options.get(b"filename")
        if filename is not None or options.get(b"name") == b"file":
            self._chosen = self._in_file = True
            name = (filename or b"").decode("utf-8", "replace").replace("\\", "/")
            self.file_name = name.rsplit("/", 1)[-1][:255] or None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._out.append(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._done = True

    # ----------------------------------------------------------------------------------

    def _write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise MalformedRequest(
                f"malformed multipart body: {exc}", code="bad_multipart"
            ) from exc

    def finished(self) -> bool:
        """Whether the file part has ended (set by the parser's callbacks)."""
        return self._done

    async def open(self) -> str | None:
        async for chunk in self._body:
            self._write(chunk)
            if self._chosen:
                return self.file_name
        raise InvalidInput("the multipart body has no file part", code="no_file_part")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._out:
            yield b"".join(self._out)
            self._out.clear()
        if self.finished():
            return
        async for chunk in self._body:
            self._write(chunk)
            if self._out:
                yield b"".join(self._out)
                self._out.clear()
            if self.finished():
                return
        raise MalformedRequest("the multipart body ended inside the file", code="bad_multipart")


def boundary_of(content_type: str) -> bytes:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise MalformedRequest("multipart/form-data without a boundary", code="bad_multipart")
    return boundary
