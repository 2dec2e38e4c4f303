"""File access for the read stage: find input files, fingerprint them, open them decompressed.

Inputs are local paths or fsspec URLs (`s3://bucket/crawl/*.jsonl.gz`), so every lookup goes through
`fsspec.core.url_to_fs`. Compression is chosen by suffix and handled here rather than by fsspec's
`compression=` argument: fsspec's zstandard reader stops after the first frame, and multi-frame
`.zst` files (pzstd, concatenated shards) are common in crawl dumps.

Everything here validates at the edge (DESIGN §Errors): a missing file, a pattern that matches
nothing, an unknown suffix or a corrupt compressed stream is an `InputError` that says what to fix.
The one exception is `iter_decoded` (and `salvage_lines` over it): it reports a compressed stream
that is cut short or does not decode as a `StreamBreak`, with its byte offset, and goes on at the
next gzip member / zstd frame, so the read stage can keep every record around the break.
"""

from __future__ import annotations

import gzip
import posixpath
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, Literal, NamedTuple

import fsspec
import zstandard
from fsspec.core import url_to_fs

from tasks.errors import InputError

CHUNK_BYTES = 1 << 20  # read size for line streaming; 1 MiB keeps syscalls rare and memory flat
_GLOB_CHARS = frozenset("*?[")
_LOCAL_PROTOCOLS = frozenset({"file", "local"})

# suffix (after the compression suffix is removed) -> format; `ReadParams.format="auto"` uses this
FORMAT_BY_SUFFIX = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".txt": "text",
    ".warc": "warc",  # .warc.gz: Common Crawl's WARC files
    ".wet": "warc",  # .warc.wet.gz / .wet.gz: WET files are WARC files of `conversion` records
}
COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".zst": "zstd"}
DECOMPRESS_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, zstandard.ZstdError)


def split_suffixes(path: str) -> tuple[str, str | None]:
    """Return (format suffix, compression) of a path: `a/b.jsonl.gz` -> (".jsonl", "gzip")."""
    name = posixpath.basename(path.split("?", 1)[0]).lower()
    stem, suffix = posixpath.splitext(name)
    compression = COMPRESSION_BY_SUFFIX.get(suffix)
    if compression is not None:
        suffix = posixpath.splitext(stem)[1]
    return suffix, compression


def detect_format(path: str) -> str:
    """The format `auto` picks for a path, by suffix; raises InputError for an unknown one."""
    suffix, _ = split_suffixes(path)
    try:
        return FORMAT_BY_SUFFIX[suffix]
    except KeyError:
        known = ", ".join(sorted(FORMAT_BY_SUFFIX))
        raise InputError(
            f"{path}: cannot tell the format from suffix {suffix or '(none)'!r} (known: {known}, "
            "optionally .gz/.zst); set input.format"
        ) from None


@contextmanager
def _open_raw(path: str) -> Iterator[BinaryIO]:
    try:
        raw = fsspec.open(path, "rb").open()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check input.paths") from None
    try:
        yield raw
    finally:
        raw.close()


@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """Open a local path or fsspec URL for binary reading, decompressed by its suffix.

    A whole-stream reader for Parquet and benchmark files: a broken stream raises mid-read. The read
    stage reads JSONL, text and WARC through `iter_decoded`, which survives breaks.
    """
    _, compression = split_suffixes(path)
    with _open_raw(path) as raw:
        if compression == "gzip":
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream
        elif compression == "zstd":
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with reader as stream:
                yield stream
        else:
            yield raw


# ---- decoding that survives a broken stream -----------------------------------------------------
# A cut download, garbage after the end or one bad gzip member must not cost the records around it
# (issue #19). So compressed input is decoded member by member (gzip member, zstd frame) with the
# compressed offset known at every step: where a member stops decoding, `iter_decoded` yields a
# `StreamBreak` saying what broke and where, and goes on at the next member it can find.

BreakKind = Literal["truncated_stream", "corrupt_member"]
_RAW_READ_BYTES = 1 << 16  # compressed bytes fed per step: a corrupt-data offset is exact to 64 KiB


class StreamBreak(NamedTuple):
    """A place where a compressed file stops decoding.

    `offset`: for `truncated_stream`, where the data ends (the file size); for `corrupt_member`, the
    start of the compressed input the decompressor rejected (the fault lies at or after it, within
    `_RAW_READ_BYTES`). `member_offset`: where the gzip member / zstd frame holding the break begins.
    `resumed_at`: the next member, found by scanning for its magic bytes, where decoding went on, or
    None when none follows. `cut`: decoded bytes of the record the break cuts through (line readers
    fill it), so a partial record is never read as a whole one.
    """

    kind: BreakKind
    unit: str  # "gzip member" / "zstd frame"
    offset: int
    member_offset: int
    resumed_at: int | None
    detail: str = ""  # the decompressor's message
    cut: bytes = b""

    def describe(self) -> str:
        """`offset=<N>: ...` in words; the read stage's quarantine `raw` starts with it."""
        if self.kind == "truncated_stream":
            what = f"the data ends inside the {self.unit} that starts at byte {self.member_offset}"
        else:
            what = f"the {self.unit} that starts at byte {self.member_offset} does not decode"
            what += f" ({self.detail})"
        then = (
            f"resumed at the next {self.unit}, byte {self.resumed_at}"
            if self.resumed_at is not None
            else f"no {self.unit} follows"
        )
        return f"offset={self.offset}: {what}; {then}"


class _Codec(NamedTuple):
    unit: str
    magic: bytes  # how a member begins: what a resync scans for
    new: Callable[[], Any]  # a decompressor for one member: decompress(), flush(), eof, unused_data
    feed: Callable[[Any, bytes], bytes]
    errors: tuple[type[Exception], ...]
    zero_padding: bool  # gzip readers skip NUL bytes between members (tape padding); zstd has none


def _gzip_codec() -> _Codec:
    # output capped per step, as GzipFile.read(CHUNK_BYTES) did; the input left waits in unconsumed_tail
    return _Codec(
        "gzip member",
        b"\x1f\x8b\x08",
        lambda: zlib.decompressobj(wbits=31),
        lambda dec, data: dec.decompress(data, CHUNK_BYTES),
        (zlib.error,),
        zero_padding=True,
    )


def _zstd_codec() -> _Codec:
    # zstandard's decompressobj has no output cap: a 64 KiB step of ordinary text gives well under
    # CHUNK_BYTES, and a decompression bomb could already fill memory through one long line before
    dctx = zstandard.ZstdDecompressor()
    return _Codec(
        "zstd frame",
        b"\x28\xb5\x2f\xfd",
        dctx.decompressobj,
        lambda dec, data: dec.decompress(data),
        (zstandard.ZstdError,),
        zero_padding=False,
    )


_CODECS: dict[str, Callable[[], _Codec]] = {"gzip": _gzip_codec, "zstd": _zstd_codec}


class _Compressed:
    """A raw stream read ahead in steps, with the file offset of the first unconsumed byte."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.buf = b""
        self.offset = 0  # file offset of buf[0]

    def peek(self) -> bytes:
        """The unconsumed bytes read so far, reading a step when there are none; b"" at the end."""
        if not self.buf:
            self.buf = self.raw.read(_RAW_READ_BYTES)
        return self.buf

    def consume(self, n: int) -> None:
        self.buf = self.buf[n:]
        self.offset += n

    def skip_zeros(self) -> None:
        while (data := self.peek()) and data[0] == 0:
            self.consume(len(data) - len(data.lstrip(b"\x00")))

    def find(self, magic: bytes, start: int) -> int | None:
        """Consume up to the first `magic` at or after file offset `start`; its offset, None at the end."""
        while self.offset < start and self.peek():
            self.consume(min(start - self.offset, len(self.buf)))
        while True:
            index = self.buf.find(magic)
            if index >= 0:
                self.consume(index)
                return self.offset
            keep = min(len(self.buf), len(magic) - 1)  # a magic split across two reads
            self.consume(len(self.buf) - keep)
            more = self.raw.read(_RAW_READ_BYTES)
            if not more:
                self.consume(len(self.buf))
                return None
            self.buf += more


Decoded = tuple[bytes, int]  # decoded bytes (never more than one member's) and their member's offset


def _decode_members(raw: BinaryIO, codec: _Codec) -> Iterator[Decoded | StreamBreak]:
    src = _Compressed(raw)
    first = True
    while True:
        if codec.zero_padding and not first:  # NULs after a member, never instead of the first one
            src.skip_zeros()
        first = False
        if not src.peek():
            return
        member = src.offset
        dec = codec.new()
        while not dec.eof:
            data = src.peek()
            start = src.offset
            try:
                out = codec.feed(dec, data) if data else dec.flush()
            except codec.errors as exc:
                # resume at the next member after the input that failed: the one before it decoded
                resumed = src.find(codec.magic, max(start, member + 1))
                yield StreamBreak("corrupt_member", codec.unit, start, member, resumed, str(exc))
                if resumed is None:
                    return
                break
            if data:
                src.consume(len(data) - len(dec.unconsumed_tail) - len(dec.unused_data))
            if out:
                yield out, member
            elif not data and not dec.eof:  # input exhausted and nothing pending: the file is cut
                yield StreamBreak("truncated_stream", codec.unit, src.offset, member, None)
                return


def iter_decoded(path: str) -> Iterator[Decoded | StreamBreak]:
    """A file's decompressed bytes in chunks, with a `StreamBreak` wherever decoding fails.

    Chunks are at most `CHUNK_BYTES` (gzip; zstd: one 64 KiB step's output) and never span two
    members, so a reader can tell member boundaries apart (WARC resyncs on them). After a
    `corrupt_member` break the chunks go on from the next member when one was found; nothing follows
    a `truncated_stream` break. Uncompressed files are read as they are and never break.
    """
    _, compression = split_suffixes(path)
    with _open_raw(path) as raw:
        if compression is None:
            while chunk := raw.read(CHUNK_BYTES):
                yield chunk, 0
        else:
            yield from _decode_members(raw, _CODECS[compression]())


def salvage_lines(path: str) -> Iterator[bytes | StreamBreak]:
    """Every line of a decompressed file as bytes, without its `\\n`, and every `StreamBreak`.

    Lines are split on `\\n` only, never decoded here, so one bad byte sequence stays in its line.
    The bytes after the last `\\n` before a break are the break's `cut`, never a line: the record
    they start may go on in data that is lost. A final line need not end in `\\n` when the file
    ends cleanly.
    """
    tail = b""
    for item in iter_decoded(path):
        if isinstance(item, StreamBreak):
            yield item._replace(cut=tail)
            tail = b""
            continue
        lines = (tail + item[0]).split(b"\n")
        tail = lines.pop()
        yield from lines
    if tail:
        yield tail


def _strict(path: str, brk: StreamBreak) -> InputError:
    return InputError(f"{path}: corrupt compressed stream ({brk.describe()}); re-fetch or remove the file")


def read_bytes(path: str) -> bytes:
    """The whole decompressed content of a file; a broken stream is an InputError."""
    chunks = []
    for item in iter_decoded(path):
        if isinstance(item, StreamBreak):
            raise _strict(path, item)
        chunks.append(item[0])
    return b"".join(chunks)


def iter_lines(path: str) -> Iterator[bytes]:
    """Every line of a decompressed file as bytes, as `salvage_lines`; a broken stream is an InputError."""
    for item in salvage_lines(path):
        if isinstance(item, StreamBreak):
            raise _strict(path, item)
        yield item


def _is_glob(part: str) -> bool:
    return not _GLOB_CHARS.isdisjoint(part)


def _glob_root(path: str) -> str:
    """The directories of a glob before its first wildcard: `a/b/*/c*.gz` -> `a/b`."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if _is_glob(part):
            return "/".join(parts[:i])
    return posixpath.dirname(path)


def _is_walked(relpath: str) -> bool:
    """Directory walks skip hidden and underscore files (`.DS_Store`, `_SUCCESS`, `.part` temp names)."""
    return not any(part.startswith((".", "_")) for part in relpath.split("/"))


def _files_under(fs: fsspec.AbstractFileSystem, root: str) -> list[tuple[str, str]]:
    files = []
    for found in fs.find(root):
        relpath = posixpath.relpath(found, root)
        if _is_walked(relpath):
            files.append((found, relpath))
    return files


def expand_inputs(patterns: list[str]) -> list[tuple[str, str]]:
    """Resolve input patterns to sorted `(path_or_url, relpath)` pairs.

    Args:
        patterns: files, directories (walked recursively) or globs, local or fsspec URLs.

    Returns:
        Unique pairs sorted by path. `relpath` is relative to the pattern's non-glob root (a file's
        own directory, a directory itself), with '/' separators: it names the file in document ids
        and quarantine rows, so it must not depend on where the corpus is mounted.

    Raises:
        InputError: a pattern matches no file or is a malformed glob, or two files would share
            a relpath (their derived ids would collide).

    Example:
        >>> expand_inputs(["crawl/*.jsonl.gz"])  # doctest: +SKIP
        [('crawl/a.jsonl.gz', 'a.jsonl.gz'), ('crawl/b.jsonl.gz', 'b.jsonl.gz')]
    """
    by_relpath: dict[str, str] = {}
    for pattern in patterns:
        fs, root = url_to_fs(pattern, use_listings_cache=False)  # a long-lived process must see new files
        if _is_glob(root):
            base = _glob_root(root)
            found = []
            try:
                matches = fs.glob(root)
            except ValueError as exc:  # fsspec's message for a malformed glob, e.g. `a**.gz`
                raise InputError(f"{pattern!r} is not a valid glob ({exc}); check input.paths") from exc
            for match in matches:
                if fs.isdir(match):
                    found += [(path, posixpath.relpath(path, base)) for path, _ in _files_under(fs, match)]
                else:
                    found.append((match, posixpath.relpath(match, base)))
        elif fs.isdir(root):
            found = _files_under(fs, root)
        elif fs.exists(root):
            found = [(root, posixpath.basename(root))]
        else:
            found = []
        if not found:
            raise InputError(f"{pattern!r} matches no file; check input.paths")
        local = fs.protocol in _LOCAL_PROTOCOLS or _LOCAL_PROTOCOLS.intersection(fs.protocol)
        for path, relpath in found:
            full = path if local else fs.unstrip_protocol(path)
            other = by_relpath.setdefault(relpath, full)
            if other != full:
                raise InputError(
                    f"{other} and {full} share the relative name {relpath!r}, so their document ids "
                    "would collide; pass their common parent directory as one input.paths entry"
                )
    return sorted(((path, relpath) for relpath, path in by_relpath.items()), key=lambda pair: pair[0])


def fingerprint_bytes(fingerprint: str) -> int | None:
    """The size a `file_fingerprint` records (None when the filesystem reported none)."""
    size = fingerprint.split(";", 1)[0].removeprefix("size=")
    return int(size) if size.isdigit() else None


def file_fingerprint(path: str) -> str:
    """A stable string that changes when the file's content does: the cache key of an input file.

    Prefers a content hash the filesystem reports (ETag, md5, crc32c, checksum), else size + mtime.
    """
    fs, stripped = url_to_fs(path, use_listings_cache=False)  # a cached listing keeps an old ETag
    try:
        info = fs.info(stripped)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check input.paths") from None
    size = f"size={info.get('size')}"
    for key in ("ETag", "etag", "md5Hash", "crc32c", "checksum", "content_md5"):
        if info.get(key):
            return f"{size};{key.lower()}={str(info[key]).strip(chr(34))}"
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        if info.get(key) is not None:
            return f"{size};mtime={info[key]}"
    return size
