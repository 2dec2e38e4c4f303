"""Broken compressed JSONL and text: a cut download, garbage after the end or a bad member keeps every
record that decodes, and the break is one quarantine row saying what broke and at which byte (#19).
WARC files broken the same ways are in test_warc.py."""

import gzip
import json
import random
import re
import zlib

import pyarrow as pa
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.contract import DOC_SCHEMA, QUARANTINE_SCHEMA
from tasks.read import REASONS, ReadParams, run

_rng = random.Random(19)
_WORDS = ["crawl", "shard", "member", "frame", "record", "offset", "byte", "line", "text", "cut"]
LINES = [
    json.dumps({"id": f"r{i}", "text": " ".join(_rng.choice(_WORDS) for _ in range(40))}).encode() + b"\n"
    for i in range(100)
]
IDS = [f"r{i}" for i in range(100)]
COMPRESS = {
    ".gz": lambda data: gzip.compress(data, mtime=0),
    ".zst": zstandard.ZstdCompressor(write_checksum=True).compress,
}


def members(suffix: str, per_member: int = 10) -> list[bytes]:
    """LINES as gzip members / zstd frames of `per_member` records each (concatenated shards)."""
    return [COMPRESS[suffix](b"".join(LINES[i : i + per_member])) for i in range(0, len(LINES), per_member)]


def starts(parts: list[bytes]) -> list[int]:
    return [sum(map(len, parts[:i])) for i in range(len(parts) + 1)]


def decodable_lines(suffix: str, member_prefix: bytes) -> int:
    """Whole lines the codec's own streaming decoder gets out of the start of one member."""
    dec = zlib.decompressobj(wbits=31) if suffix == ".gz" else zstandard.ZstdDecompressor().decompressobj()
    return dec.decompress(member_prefix).count(b"\n")


def read(tmp_path, name: str, data: bytes, **params) -> tuple[pa.Table, pa.Table]:
    path = tmp_path / name
    path.write_bytes(data)
    return run(str(path), name, ReadParams(**params))


def breaks(quarantine: pa.Table) -> list[tuple[int, str, int]]:
    """(line, reason, offset) of each row, the offset read from `raw`'s `offset=<byte>:` prefix."""
    return [
        (row["line"], row["reason"], int(re.match(rb"offset=(\d+): ", row["raw"]).group(1)))
        for row in quarantine.to_pylist()
    ]


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
@pytest.mark.parametrize("per_member", [10, 100])  # concatenated shards; one member, as `gzip` writes
def test_cut_download_keeps_every_whole_record_before_the_cut(tmp_path, suffix, per_member):
    parts = members(suffix, per_member)
    at = starts(parts)
    k = len(parts) // 2
    cut = at[k] + len(parts[k]) * 2 // 5
    n_kept = k * per_member + decodable_lines(suffix, parts[k][: cut - at[k]])

    docs, quarantine = read(tmp_path, f"a.jsonl{suffix}", b"".join(parts)[:cut])

    assert docs.column("id").to_pylist() == IDS[:n_kept]
    assert breaks(quarantine) == [(n_kept + 1, "read:truncated_stream", cut)]
    cut_record = quarantine.column("raw")[0].as_py().split(b"\n", 1)[1]
    assert LINES[n_kept].startswith(cut_record) and cut_record != LINES[n_kept]


def test_a_record_whose_newline_is_cut_off_is_not_a_document(tmp_path):
    compressor = zlib.compressobj(wbits=31)
    data = compressor.compress(b'{"id": "a", "text": "whole"}\n{"id": "b", "text": "never ended"}')
    data += compressor.flush(zlib.Z_SYNC_FLUSH)  # everything so far decodes; the member never ends

    docs, quarantine = read(tmp_path, "a.jsonl.gz", data)

    assert docs.column("id").to_pylist() == ["a"]
    assert breaks(quarantine) == [(2, "read:truncated_stream", len(data))]
    assert quarantine.column("raw")[0].as_py().endswith(b'\n{"id": "b", "text": "never ended"}')


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_garbage_after_the_end_keeps_every_record(tmp_path, suffix):
    whole = b"".join(members(suffix))
    tail = b"<html>503 Service Unavailable</html>\n" * 3  # an error page saved after the data

    docs, quarantine = read(tmp_path, f"a.jsonl{suffix}", whole + tail)

    assert docs.column("id").to_pylist() == IDS
    assert breaks(quarantine) == [(101, "read:corrupt_member", len(whole))]
    assert b"follows" in quarantine.column("raw")[0].as_py()  # `no gzip member follows`


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_bad_member_in_the_middle_is_quarantined_and_reading_resumes_at_the_next(tmp_path, suffix):
    parts = members(suffix)
    at = starts(parts)
    parts[3] = b"JUNK" + parts[3][4:]  # its header is gone: nothing of it decodes

    docs, quarantine = read(tmp_path, f"a.jsonl{suffix}", b"".join(parts))

    assert docs.column("id").to_pylist() == IDS[:30] + IDS[40:]
    assert breaks(quarantine) == [(31, "read:corrupt_member", at[3])]
    unit = "gzip member" if suffix == ".gz" else "zstd frame"
    assert f"resumed at the next {unit}, byte {at[4]}".encode() in quarantine.column("raw")[0].as_py()


def test_bad_data_inside_a_gzip_member_costs_at_most_that_member(tmp_path):
    parts = members(".gz")
    at = starts(parts)
    bad = bytearray(parts[3])
    bad[len(bad) // 2 : len(bad) // 2 + 8] = b"\xff" * 8
    parts[3] = bytes(bad)

    docs, quarantine = read(tmp_path, "a.jsonl.gz", b"".join(parts))

    [(line, reason, offset)] = breaks(quarantine)
    assert docs.column("id").to_pylist() == IDS[:30] + IDS[40:]
    assert (line, reason) == (31, "read:corrupt_member") and at[3] <= offset < at[4]


def test_nul_padding_after_the_last_gzip_member_is_not_a_break(tmp_path):
    docs, quarantine = read(tmp_path, "a.jsonl.gz", b"".join(members(".gz")) + b"\x00" * 512)

    assert docs.column("id").to_pylist() == IDS
    assert quarantine.num_rows == 0


def test_cut_text_file_is_quarantined_whole_not_read_as_a_shorter_document(tmp_path):
    data = gzip.compress(b"".join(LINES), mtime=0)

    docs, quarantine = read(tmp_path, "a.txt.gz", data[: len(data) // 2])

    assert docs.num_rows == 0
    assert breaks(quarantine) == [(1, "read:truncated_stream", len(data) // 2)]


WHOLE_GZ = b"".join(COMPRESS[".gz"](b"".join(LINES[i : i + 15])) for i in range(0, 45, 15))  # 3 members


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, len(WHOLE_GZ)))
def test_any_cut_keeps_a_prefix_of_the_records_and_at_most_one_break(tmp_path, cut):
    docs, quarantine = read(tmp_path, "a.jsonl.gz", WHOLE_GZ[:cut])

    ids = docs.column("id").to_pylist()
    rows = breaks(quarantine) if cut else []
    assert ids == IDS[: len(ids)]
    assert docs.column("text").to_pylist() == [json.loads(line)["text"] for line in LINES[: len(ids)]]
    assert len(rows) <= 1 and all(row == (len(ids) + 1, "read:truncated_stream", cut) for row in rows)
    if cut == len(WHOLE_GZ):
        assert ids == IDS[:45] and quarantine.num_rows == 0


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["a.jsonl.gz", "a.jsonl.zst", "a.txt.gz", "a.warc.gz", "a.warc.zst"]),
    prefix=st.sampled_from([b"", _GZIP_HEADER, _ZSTD_MAGIC, gzip.compress(LINES[0], mtime=0)]),
    data=st.binary(max_size=400),
    repeat=st.integers(1, 3),
)
def test_arbitrary_compressed_bytes_never_raise_and_keep_the_schemas(tmp_path, name, prefix, data, repeat):
    docs, quarantine = read(tmp_path, name, (prefix + data) * repeat)

    assert docs.schema == DOC_SCHEMA and quarantine.schema == QUARANTINE_SCHEMA
    assert set(quarantine.column("reason").to_pylist()) <= set(REASONS)
