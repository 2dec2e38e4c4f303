"""WARC and WET input (Common Crawl's `.warc.gz`, `.warc.wet.gz`): one document per HTML response or
text conversion record.

A `response` record holding HTML gives a document whose `text` is the HTML decoded with the HTTP
charset, else the detected one, and whose `source` is `HTML_SOURCE`, which tells the `extract` stage
to turn it into text; a `conversion` record gives its text as is, `source` `TEXT_SOURCE`. `id` is the
WARC-Record-ID (also the `warc_record_id` column, brackets kept), `url` the WARC-Target-URI; other
record headers go to `meta`. Every other record (request,
metadata, warcinfo, non-HTML responses) is skipped with a counted quarantine row whose `raw` is its
WARC header; a record cut short or a stream that stops parsing is `read:warc_corrupt`, and reading
resumes at the next gzip member (Common Crawl writes one per record; an uncompressed file stops there).

The parser is warcio: fastwarc reads 3.5x more records/s, but stops without an error on a malformed
file (ccnet's LF-terminated sample) where warcio raises, and reading is <1% of extraction's cost
(`bench/extraction.py`).
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

from resiliparse.parse.encoding import detect_encoding
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParserException

from tasks.contract import HTML_SOURCE, RAW_PREFIX_BYTES, TEXT_SOURCE
from tasks.io import DECOMPRESS_ERRORS, Decoded, StreamBreak, iter_decoded
from tasks.read.columns import Columns, Part, stream_break
from tasks.read.json_codec import dumps

if TYPE_CHECKING:
    from tasks.read import ReadParams

HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CONTENT_ENCODINGS = {"gzip": 47, "x-gzip": 47, "deflate": 47}  # zlib wbits 47: gzip or zlib header
# what a stream cut short or garbled raises, from warcio's parser or its own gzip reader (a payload
# that is itself gzip); AttributeError: warcio 1.8's `recordloader.load_http_headers` calls
# `uri.startswith` on a response or request whose header has no WARC-Target-URI (cut or garbled),
# so it is caught around `next(records)` only, never around our own code
_WARC_ERRORS = (ArchiveLoadFailed, StatusAndHeadersParserException, *DECOMPRESS_ERRORS)
_WARC_PARSE_ERRORS = (*_WARC_ERRORS, AttributeError)


def _header_bytes(record: ArcWarcRecord) -> bytes:
    """The record's WARC header (status line + fields): its quarantine `raw`."""
    return record.rec_headers.to_bytes()


def _decode_html(body: bytes, charset: str | None) -> tuple[str, str]:
    """HTML bytes as text, with the HTTP charset when Python knows it, else the detected one."""
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = None
    if not charset:  # resiliparse reads <meta charset> and falls back to byte statistics
        charset = detect_encoding(body, from_html_meta=True) or "utf-8"
    return body.decode(charset, errors="replace"), charset


def _content_type(value: str | None) -> tuple[str | None, str | None]:
    """`text/html; charset=UTF-8` -> ("text/html", "utf-8")."""
    if not value:
        return None, None
    mime, _, params = value.partition(";")
    match = _CHARSET.search(params)
    return mime.strip().lower() or None, match.group(1).lower() if match else None


_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)


def _read_body(record: ArcWarcRecord) -> bytes | None:
    """The record's payload as stored; None when the stream ends before its Content-Length or the
    header has no usable Content-Length (garbled), so where the record ends is unknown."""
    if record.length is None:
        return None
    body = record.raw_stream.read()
    header_len = record.http_headers.total_len if record.http_headers is not None else 0
    return body if header_len + len(body) >= record.length else None


def _add_warc_doc(
    cols: Columns,
    number: int,
    record: ArcWarcRecord,
    text: str,
    source: str,
    content_type: str | None,
    charset: str | None,
) -> None:
    headers = record.rec_headers
    record_id = headers.get_header("WARC-Record-ID")
    doc_id = record_id.strip("<>") if record_id else f"{cols.relpath}:{number}"
    url = headers.get_header("WARC-Target-URI")
    meta = dumps(
        {
            "warc_date": headers.get_header("WARC-Date"),
            "content_type": content_type,
            "http_charset": charset,
            "warc_identified_language": headers.get_header("WARC-Identified-Content-Language"),
        }
    )
    if not cols.add(doc_id, text, url.strip("<>") if url else None, source, meta, number, record_id):
        cols.quarantine(number, "read:duplicate_id", _header_bytes(record))


def _read_response(cols: Columns, number: int, record: ArcWarcRecord) -> bool:
    """One response record -> a document or a quarantine row; False (no row) when it is cut short."""
    http = record.http_headers
    content_type, charset = _content_type(http.get_header("Content-Type") if http is not None else None)
    if content_type is None:  # Common Crawl's payload sniffing, when the server sent no type
        content_type, _ = _content_type(record.rec_headers.get_header("WARC-Identified-Payload-Type"))
    if content_type not in HTML_CONTENT_TYPES:
        cols.quarantine(number, "read:warc_content_type", _header_bytes(record))
        return True
    body = _read_body(record)
    if body is None:
        return False
    encoding = (http.get_header("Content-Encoding") or "").strip().lower() if http is not None else ""
    if encoding in _CONTENT_ENCODINGS:  # Common Crawl stores payloads decoded; other crawlers may not
        try:
            body = zlib.decompress(body, _CONTENT_ENCODINGS[encoding])
        except zlib.error:
            cols.quarantine(number, "read:warc_corrupt", _header_bytes(record))
            return True
    text, detected = _decode_html(body, charset)
    _add_warc_doc(cols, number, record, text, HTML_SOURCE, content_type, charset or detected)
    return True


def _read_conversion(cols: Columns, number: int, record: ArcWarcRecord) -> bool:
    body = _read_body(record)
    if body is None:
        return False
    try:
        text = body.decode("utf-8")  # WET conversion records are UTF-8 (Common Crawl's WET format)
    except UnicodeDecodeError:
        cols.quarantine(number, "read:invalid_utf8", _header_bytes(record))
        return True
    content_type, _ = _content_type(record.rec_headers.get_header("Content-Type"))
    _add_warc_doc(cols, number, record, text, TEXT_SOURCE, content_type, None)
    return True


class _Parts:
    """A file's decoded bytes as a stream warcio reads, ending at each break in the compressed data.

    `read` returns b"" at a break (`brk` says which) or at the end of the file (`brk` None); `resume`
    goes on after a break that found a next member. A read never spans two members, so what warcio
    has buffered when it fails is the current member's, and `skip_member` restarts at the next one:
    in a `.warc.gz`, the next record. `head` is the first KiB decoded from the current member.
    """

    def __init__(self, items: Iterator[Decoded | StreamBreak]) -> None:
        self.items = items
        self.chunk, self.pos, self.member, self.head = b"", 0, -1, b""
        self.ended = False  # a read has met a break or the end of the file
        self.brk: StreamBreak | None = None

    def _advance(self) -> None:
        item = next(self.items, None)
        if item is None or isinstance(item, StreamBreak):
            self.ended, self.brk = True, item
            return
        chunk, member = item
        if member != self.member:
            self.head = b""
        self.head += chunk[: RAW_PREFIX_BYTES - len(self.head)]
        self.chunk, self.pos, self.member = chunk, 0, member

    def read(self, size: int = -1) -> bytes:
        while self.pos == len(self.chunk) and not self.ended:
            self._advance()
        end = len(self.chunk) if size is None or size < 0 else self.pos + size
        out = self.chunk[self.pos : end]
        self.pos += len(out)
        return out

    def skip_member(self) -> None:
        member = self.member
        self.chunk, self.pos = b"", 0
        while not self.ended and (self.member == member or not self.chunk):
            self._advance()

    def resume(self) -> bool:
        """After a break: True when decoding goes on at a next member."""
        if self.brk is None or self.brk.resumed_at is None:
            return False
        self.ended, self.brk = False, None
        return True


def _error_bytes(exc: Exception) -> bytes:
    return f"{type(exc).__name__}: {exc}".encode()


def _read_records(cols: Columns, stream: _Parts, number: int) -> Generator[Part, None, tuple[int, bytes | None]]:
    """Records until `stream` ends or one fails, yielding the parts they fill; returns (records
    numbered so far, `raw` of the failed one).

    A record that fails is numbered; its row is the caller's, which knows whether a break cut it.
    """
    records = ArchiveIterator(stream, no_record_parse=False, ensure_http_headers=False)
    while True:
        yield from cols.ready()
        try:
            record = next(records)
        except StopIteration:
            return number, None
        except _WARC_PARSE_ERRORS as exc:  # the stream cannot be parsed past here
            return number + 1, _error_bytes(exc)
        number += 1
        try:
            if record.rec_type == "response":
                ok = _read_response(cols, number, record)
            elif record.rec_type == "conversion":
                ok = _read_conversion(cols, number, record)
            else:
                cols.quarantine(number, "read:warc_record_type", _header_bytes(record))
                ok = True
        except _WARC_ERRORS as exc:
            return number, _error_bytes(exc)
        if not ok:
            return number, _header_bytes(record)


def read_warc(cols: Columns, path: str, params: ReadParams) -> Iterator[Part]:
    """Every record of a WARC/WET file; `line` in quarantine rows is the 1-based record number.

    Decompression is `iter_decoded`'s (by suffix), not warcio's, whose reader prints a warning and
    returns a short record at a corrupt or cut gzip member.
    """
    stream = _Parts(iter_decoded(path))
    number = 0
    while True:
        number, failed = yield from _read_records(cols, stream, number)
        if failed is not None and not stream.ended:  # a WARC-level fault in data that decodes
            cols.quarantine(number, "read:warc_corrupt", failed)
            stream.skip_member()
            continue
        if stream.brk is None:  # the end of the file
            if failed is not None:
                cols.quarantine(number, "read:warc_corrupt", failed)
            break
        # A record that failed as the data ran out is the one the break cut: one row, the break's,
        # whose `raw` goes on with what decoded of the broken member (in a .warc.gz, that record).
        # (A fault within warcio's 16 KiB read-ahead of the break is attributed to the break too.)
        if failed is None:  # warcio reads a cut header as the end: the break is the next record
            number += 1
        cut = stream.head if stream.member == stream.brk.member_offset else failed or b""
        stream_break(cols, number, stream.brk._replace(cut=cut), path, params)
        if not stream.resume():
            break
    if number == 0 and not cols.n_rows:
        cols.quarantine(0, "read:empty_file", b"")
