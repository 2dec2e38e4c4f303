"""File access for the read stage: find input files, fingerprint them, open them decompressed.

Inputs are local paths or fsspec URLs (`s3://bucket/crawl/*.jsonl.gz`), so every lookup goes through
`fsspec.core.url_to_fs`. Compression is chosen by suffix and handled here rather than by fsspec's
`compression=` argument: fsspec's zstandard reader stops after the first frame, and multi-frame
`.zst` files (pzstd, concatenated shards) are common in crawl dumps.

Everything here validates at the edge (DESIGN §Errors): a missing file, a pattern that matches
nothing, an unknown suffix or a corrupt compressed stream is an `InputError` that says what to fix.
"""

from __future__ import annotations

import gzip
import posixpath
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

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
    ".wet": "warc",   # .warc.wet.gz / .wet.gz: WET files are WARC files of `conversion` records
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
def open_input(path: str) -> Iterator[BinaryIO]:
    """Open a local path or fsspec URL for binary reading, decompressed by its suffix."""
    _, compression = split_suffixes(path)
    try:
        raw = fsspec.open(path, "rb").open()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check input.paths") from None
    try:
        if compression == "gzip":
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream
        elif compression == "zstd":
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with reader as stream:
                yield stream
        else:
            yield raw
    finally:
        raw.close()


def _read_chunk(stream: BinaryIO, path: str) -> bytes:
    try:
        return stream.read(CHUNK_BYTES)
    except DECOMPRESS_ERRORS as exc:
        raise InputError(f"{path}: corrupt compressed stream ({exc}); re-fetch or remove the file") from exc


def read_bytes(path: str) -> bytes:
    """The whole decompressed content of a file."""
    with open_input(path) as stream:
        chunks = []
        while chunk := _read_chunk(stream, path):
            chunks.append(chunk)
    return b"".join(chunks)


def iter_lines(path: str) -> Iterator[bytes]:
    """Every line of a decompressed file as bytes, without its `\\n` (a final line need not end in one).

    Lines are split on `\\n` only, never decoded here, so one bad byte sequence stays in its line.
    """
    with open_input(path) as stream:
        tail = b""
        while chunk := _read_chunk(stream, path):
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            yield from lines
        if tail:
            yield tail


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
        fs, root = url_to_fs(pattern)
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


def file_fingerprint(path: str) -> str:
    """A stable string that changes when the file's content does: the cache key of an input file.

    Prefers a content hash the filesystem reports (ETag, md5, crc32c, checksum), else size + mtime.
    """
    fs, stripped = url_to_fs(path)
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
