"""Streaming text decoding of uploads: encoding detection and line splitting, chunk by chunk.

Detection, without reading ahead:

- a byte-order mark says UTF-8 (``utf-8-sig``) or UTF-16;
- otherwise the file is read as UTF-8 until it proves not to be: when an invalid UTF-8
  sequence comes *before any non-ASCII UTF-8 character*, everything read so far was ASCII,
  which CP1252 reads identically, so the decoder switches to CP1252 (Windows "ANSI" exports)
  losslessly. CP1252's five undefined bytes are read as Latin-1, so any byte decodes;
- after a valid non-ASCII UTF-8 character the file *is* UTF-8, and a later invalid sequence
  is kept as surrogate escapes: the rows containing it are reported as row errors.

An explicit encoding (query parameter or ``charset`` of the Content-Type) skips detection.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator

from leadstream_ingest.errors import InvalidInput

_LATIN1_FALLBACK = "leadstream-latin1-fallback"


def _latin1_fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error(_LATIN1_FALLBACK, _latin1_fallback)

# Undecodable bytes (kept as lone surrogates) and NUL, which no text store downstream accepts
# (PostgreSQL text and JSONB refuse it).
_SURROGATES = re.compile("[\x00\udc80-\udcff]")
_ALIASES = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "utf_8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "cp1252": "cp1252",
    "windows-1252": "cp1252",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
    "utf-16": "utf-16",
    "utf16": "utf-16",
}


def normalize_encoding(name: str) -> str:
    """A supported encoding name, or :class:`InvalidInput`."""
    found = _ALIASES.get(name.strip().lower())
    if found is None:
        supported = "utf-8, utf-8-sig, cp1252 (windows-1252), latin-1, utf-16"
        raise InvalidInput(
            f"unsupported encoding {name[:40]!r}; use one of {supported}", code="bad_encoding"
        )
    return found


def has_invalid_bytes(text: str) -> bool:
    """Whether decoded text carries bytes that were not valid in its encoding, or NUL."""
    return _SURROGATES.search(text) is not None


class AutoDecoder:
    """Incremental decoder with the detection above; ``encoding`` tells what it settled on."""

    def __init__(self, declared: str | None = None) -> None:
        self.declared = declared is not None
        self.encoding = declared or "utf-8"
        self._decoder: codecs.IncrementalDecoder | None = None
        self._sniffed = declared is not None
        self._locked = declared is not None  # no more switching
        self._head = b""
        self.dirty = False  # some bytes were invalid (surrogate escapes in the output)
        if declared is not None:
            self._decoder = self._make(declared)

    def _make(self, encoding: str) -> codecs.IncrementalDecoder:
        errors = _LATIN1_FALLBACK if encoding == "cp1252" else "surrogateescape"
        if encoding == "utf-16":
            errors = "strict"
        return codecs.getincrementaldecoder(encoding)(errors)

    def decode(self, data: bytes, final: bool = False) -> str:
        if not self._sniffed:
            self._head += data
            if len(self._head) < 4 and not final:
                return ""
            data, self._head = self._head, b""
            self._sniff(data)
        assert self._decoder is not None
        if self._locked:
            return self._checked(self._decode_locked(data, final))
        # Provisional UTF-8: strict, so an invalid byte can still switch us to CP1252.
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError:
            pending = self._decoder.getstate()[0]
            self.encoding = "cp1252"
            self._decoder = self._make("cp1252")
            self._locked = True
            return self._checked(self._decoder.decode(pending + data, final))
        if not text.isascii():
            self._locked = True
            self._decoder = self._relax(self._decoder)
        return self._checked(text)

    def _decode_locked(self, data: bytes, final: bool) -> str:
        assert self._decoder is not None
        try:
            return self._decoder.decode(data, final)
        except UnicodeError as exc:  # utf-16 only (the others never raise)
            reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise InvalidInput(
                f"the upload is not valid {self.encoding}: {reason}", code="bad_encoding"
            ) from None

    def _relax(self, strict: codecs.IncrementalDecoder) -> codecs.IncrementalDecoder:
        relaxed = self._make("utf-8")
        relaxed.setstate(strict.getstate())
        return relaxed

    def _checked(self, text: str) -> str:
        if not self.dirty and has_invalid_bytes(text):
            self.dirty = True
        return text

    def _sniff(self, head: bytes) -> None:
        self._sniffed = True
        if head.startswith(codecs.BOM_UTF8):
            self.encoding, self._locked = "utf-8-sig", True
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.encoding, self._locked = "utf-16", True
        else:
            self.encoding = "utf-8"
            self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
            return
        self._decoder = self._make(self.encoding)


def text_chunks(chunks: Iterable[bytes], decoder: AutoDecoder) -> Iterator[str]:
    """Decoded text of a stream of byte chunks."""
    for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def lines(texts: Iterable[str]) -> Iterator[str]:
    """Physical lines, each with its line ending, split on ``\\n`` only (a ``\\r\\n`` stays
    whole; other Unicode separators inside fields are data). Files with bare ``\\r`` endings
    (classic Mac) are split on ``\\r`` when the first chunk has no ``\\n`` at all."""
    carry = ""
    sep: str | None = None
    for text in texts:
        if sep is None:
            sep = "\r" if ("\n" not in text and "\r" in text.rstrip("\r")) else "\n"
        parts = (carry + text).split(sep)
        carry = parts.pop()
        for part in parts:
            yield part + sep
    if carry:
        yield carry


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a header line: the most frequent of , ; tab | outside quotes."""
    counts = {",": 0, ";": 0, "\t": 0, "|": 0}
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
