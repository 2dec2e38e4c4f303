"""`read_parts`: a file read as bounded parts, split between records, that join to the unsplit read (#14)."""

import gzip
import io
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_warc as warc
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.warcwriter import WARCWriter

from tasks.contract import DOC_SCHEMA, QUARANTINE_SCHEMA
from tasks.errors import InputError
from tasks.read import ReadParams, read_parts, run

ONE_PART = 1 << 40  # a budget no test file reaches: the unsplit read

_rng = random.Random(14)
_WORDS = ["crawl", "shard", "part", "bound", "mémoire", "文字", "record", "x" * 30]
LINES = [
    json.dumps(
        {"text": " ".join(_rng.choice(_WORDS) for _ in range(_rng.randint(0, 80)))}, ensure_ascii=i % 2 == 0
    ).encode()
    + b"\n"
    for i in range(400)
]
LINES[7] = b'{"text": "cut\n'  # invalid_json
LINES[50] = b'{"id": "dup", "text": "first"}\n'
LINES[300] = b'{"id": "dup", "text": "second"}\n'  # duplicate_id two parts later: the first still wins
LINES[120] = b"\xff\n"  # invalid_utf8
LINES[121] = b"\n"  # blank: skipped, still counted in line numbers


def gz_members(data: list[bytes], per_member: int) -> bytes:
    chunks = (data[i : i + per_member] for i in range(0, len(data), per_member))
    return b"".join(gzip.compress(b"".join(chunk), mtime=0) for chunk in chunks)


def warc_with_skips() -> bytes:
    """Eight HTML responses (one gzip member each) with a request, a PNG and a repeated record between."""
    members = warc.html_members(".gz")
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    warc.request(writer, "https://example.com/")
    warc.response(writer, "https://example.com/logo.png", b"\x89PNG\r\n\x1a\n", "image/png")
    return b"".join(members[:4]) + buffer.getvalue() + b"".join(members[4:]) + members[2]


def parquet_bytes() -> bytes:
    n = 2500  # past one 1024-row batch, in 700-row row groups
    table = pa.table(
        {
            "text": [None if i % 97 == 5 else f"row {i} " * (i % 30) for i in range(n)],
            "id": [4 if i == 2400 else (i if i % 3 else None) for i in range(n)],  # 2400 repeats row 4's
            "n": list(range(n)),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=700)
    return buffer.getvalue()


def cut(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


WHOLE_GZ = gz_members(LINES, 50)
BAD_MEMBER_GZ = WHOLE_GZ[:3000] + b"JUNK" + WHOLE_GZ[3004:]
FILES = {  # name -> content: every format, clean and broken
    "a.jsonl": b"".join(LINES),
    "a.jsonl.gz": WHOLE_GZ,
    "cut.jsonl.gz": cut(WHOLE_GZ, 0.6),
    "bad_member.jsonl.gz": BAD_MEMBER_GZ + b"<html>503</html>",
    "a.jsonl.zst": zstandard.ZstdCompressor().compress(b"".join(LINES)) + b"garbage after the end",
    "a.parquet": parquet_bytes(),
    "a.warc.gz": warc_with_skips(),
    "cut.warc.gz": cut(b"".join(warc.html_members(".gz")), 0.7),
    "small.warc": warc.small_warc(gzipped=False),
    "a.txt": b"one document, whatever the budget\n",
}
REAL = [warc.RAW / "dolma_sample-0000.warc.gz", warc.RAW / "whirlwind.warc.wet.gz"]


def parts_of(path: Path, max_shard_bytes: int, **params) -> list[tuple[pa.Table, pa.Table]]:
    return list(read_parts(str(path), path.name, ReadParams(max_shard_bytes=max_shard_bytes, **params)))


def joined(parts: list[tuple[pa.Table, pa.Table]]) -> tuple[pa.Table, pa.Table]:
    return pa.concat_tables([d for d, _ in parts]), pa.concat_tables([q for _, q in parts])


def row_bytes(docs: pa.Table, quarantine: pa.Table) -> list[int]:
    """What each row of a part counts against max_shard_bytes."""
    content = docs.select(["id", "text", "url", "source", "meta"])  # provenance is not counted
    strings = [sum(len(v.encode()) for v in row.values() if v is not None) for row in content.to_pylist()]
    return strings + [len(raw) for raw in quarantine.column("raw").to_pylist()]


def ids(parts) -> list[list[str]]:
    return [docs.column("id").to_pylist() for docs, _ in parts]


def lines(parts) -> list[list[int]]:
    return [quarantine.column("line").to_pylist() for _, quarantine in parts]


@pytest.fixture(params=sorted(FILES) + [p.name for p in REAL])
def any_file(request, tmp_path) -> Path:
    if request.param in FILES:
        path = tmp_path / request.param
        path.write_bytes(FILES[request.param])
        return path
    return warc.RAW / request.param


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("a.jsonl", {"read:invalid_json", "read:invalid_utf8", "read:duplicate_id"}),
        ("cut.jsonl.gz", {"read:truncated_stream"}),
        ("bad_member.jsonl.gz", {"read:corrupt_member"}),
        ("a.jsonl.zst", {"read:corrupt_member"}),
        ("a.parquet", {"read:text_not_string", "read:duplicate_id"}),
        ("a.warc.gz", {"read:warc_record_type", "read:warc_content_type", "read:duplicate_id"}),
        ("cut.warc.gz", {"read:truncated_stream"}),
    ],
)
def test_the_test_files_hold_the_faults_they_stand_for(tmp_path, name, reasons):
    path = tmp_path / name
    path.write_bytes(FILES[name])

    [(_, quarantine)] = parts_of(path, ONE_PART)

    assert reasons <= set(quarantine.column("reason").to_pylist())


@pytest.mark.parametrize("max_shard_bytes", [1, 700, 5000])
def test_parts_join_to_the_unsplit_read_row_for_row(any_file, max_shard_bytes):
    [whole] = parts_of(any_file, ONE_PART)

    parts = parts_of(any_file, max_shard_bytes)

    docs, quarantine = joined(parts)
    assert docs.equals(whole[0]) and quarantine.equals(whole[1])
    assert all(d.schema == DOC_SCHEMA and q.schema == QUARANTINE_SCHEMA for d, q in parts)
    if whole[0].num_rows + whole[1].num_rows > 1 and sum(row_bytes(*whole)) > max_shard_bytes:
        assert len(parts) > 1


def test_run_is_the_unsplit_read(any_file):
    [(docs, quarantine)] = parts_of(any_file, ONE_PART)

    ran = run(str(any_file), any_file.name, ReadParams(max_shard_bytes=100))

    assert ran[0].equals(docs) and ran[1].equals(quarantine)
    assert ran[0].column("id").num_chunks == 1 and ran[1].column("raw").num_chunks == 1


@pytest.mark.parametrize("max_shard_bytes", [1, 700, 5000])
def test_a_part_holds_at_most_max_shard_bytes_unless_it_is_one_row(any_file, max_shard_bytes):
    parts = parts_of(any_file, max_shard_bytes)

    sizes = [row_bytes(docs, quarantine) for docs, quarantine in parts]

    assert all(len(part) >= 1 for part in sizes)  # never an empty part
    assert all(sum(part) <= max_shard_bytes or len(part) == 1 for part in sizes)


def test_quarantine_rows_go_with_the_part_open_when_they_were_met(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(
        b'{"id": "a", "text": "aaaaaaaaaa"}\n'  # 1 + 10 bytes
        b'{"id": "b", "text": "bbbbbbbbbb"}\n'  # 22
        b"not json\n"  # 8 more: 30 fits
        b'{"id": "c", "text": "cccccccccc"}\n'  # 41 would not: a new part
        b'{"id": "d", "text": "' + b"d" * 40 + b'"}\n'  # larger than the budget: a part of its own
        b"[]\n"  # after it nothing fits: a part of quarantine rows only
    )

    parts = parts_of(path, 30)

    assert ids(parts) == [["a", "b"], ["c"], ["d"], []]
    assert lines(parts) == [[3], [], [], [6]]
    assert [q.column("reason").to_pylist() for _, q in parts] == [
        ["read:invalid_json"],
        [],
        [],
        ["read:not_an_object"],
    ]


def test_a_document_larger_than_the_budget_is_a_part_of_its_own(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(
        b'{"id": "s", "text": "x"}\n{"id": "b", "text": "' + b"y" * 100 + b'"}\n{"id": "t", "text": "z"}\n'
    )

    parts = parts_of(path, 10)

    assert ids(parts) == [["s"], ["b"], ["t"]]


def test_ids_and_line_numbers_count_from_the_start_of_the_file_not_the_part(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"text": "aaaa"}\n{"text": "bbbb"}\n{"text": 1}\n{"text": "cccc"}\n')

    parts = parts_of(path, 4)

    assert ids(parts) == [["a.jsonl:1"], ["a.jsonl:2"], [], ["a.jsonl:4"]]
    assert lines(parts) == [[], [], [3], []]


def test_a_duplicate_id_in_a_later_part_is_quarantined_and_the_first_wins(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"id": "x", "text": "first"}\n{"id": "y", "text": "other"}\n{"id": "x", "text": "again"}\n')

    parts = parts_of(path, 6)

    assert ids(parts) == [["x"], ["y"], []]
    assert lines(parts) == [[], [], [3]]
    assert parts[2][1].column("reason").to_pylist() == ["read:duplicate_id"]


@pytest.mark.parametrize("content", [b"", b"\n \n"])
def test_a_file_without_records_is_one_part_holding_its_empty_file_row(tmp_path, content):
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(content))

    parts = parts_of(path, 1)

    assert ids(parts) == [[]]
    assert parts[0][1].column("reason").to_pylist() == ["read:empty_file"]


def test_parquet_rows_past_the_first_batch_keep_their_file_row_numbers(tmp_path):
    path = tmp_path / "a.parquet"
    path.write_bytes(FILES["a.parquet"])
    n = 2500
    expected = [str(i) if i % 3 else f"a.parquet:{i + 1}" for i in range(n) if i % 97 != 5 and i != 2400]

    docs, quarantine = joined(parts_of(path, 20_000))

    assert docs.column("id").to_pylist() == expected
    assert docs.column("meta").to_pylist()[-1] == '{"n":2499}'
    assert [(r["line"], r["reason"]) for r in quarantine.select(["line", "reason"]).to_pylist()] == (
        [(i + 1, "read:text_not_string") for i in range(n) if i % 97 == 5 and i < 2400]
        + [(2401, "read:duplicate_id")]
        + [(i + 1, "read:text_not_string") for i in range(n) if i % 97 == 5 and i > 2400]
    )


# ---- laziness: a part comes out before the rest of the file is read ----------------------------


@pytest.mark.parametrize("name", ["cut.jsonl.gz", "cut.warc.gz"])
def test_the_first_part_is_read_before_a_cut_at_the_end_of_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(FILES[name])
    parts = read_parts(str(path), name, ReadParams(max_shard_bytes=1, on_corrupt_file="fail"))

    first_docs, _ = next(parts)  # 'fail' raises at the break: the part came before it was reached

    assert first_docs.num_rows == 1
    with pytest.raises(InputError, match="corrupt compressed stream"):
        list(parts)


def test_the_first_parquet_part_is_read_before_a_corrupt_last_row_group(tmp_path):
    table = pa.table({"text": [f"row-{i:05d}" for i in range(3000)]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=1000, compression="none", use_dictionary=False)
    data = bytearray(buffer.getvalue())
    at = data.index(b"row-02500")
    data[at - 4 : at] = b"\xff\xff\xff\x7f"  # the length before a string of the last row group
    path = tmp_path / "a.parquet"
    path.write_bytes(bytes(data))
    parts = read_parts(str(path), "a.parquet", ReadParams(max_shard_bytes=100))

    first_docs, _ = next(parts)

    assert first_docs.column("text").to_pylist()[0] == "row-00000"
    with pytest.raises(InputError, match="not a readable Parquet file"):
        list(parts)


# ---- any input, any budget ---------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(
        st.sampled_from(
            [
                b'{"text": "a"}',
                b'{"id": "k", "text": "bb"}',
                b'{"id": 1, "text": "ccc"}',
                b"\xff",
                b"[]",
                b"",
                b'{"text": 1}',
                b'{"text": "' + b"long " * 60 + b'"}',
                b'{"text": "\xc3\xa9t\xc3\xa9", "u": [1, 2]}',
            ]
        ),
        max_size=30,
    ),
    max_shard_bytes=st.integers(1, 400),
    compress=st.booleans(),
    keep=st.floats(0.3, 1.0),
)
def test_any_jsonl_and_budget_split_into_bounded_parts_that_join_to_the_whole(
    tmp_path, records, max_shard_bytes, compress, keep
):
    data = b"\n".join(records)
    path = tmp_path / ("a.jsonl.gz" if compress else "a.jsonl")
    path.write_bytes(cut(gzip.compress(data, mtime=0), keep) if compress else data)
    [whole] = parts_of(path, ONE_PART)

    parts = parts_of(path, max_shard_bytes)

    docs, quarantine = joined(parts)
    assert docs.equals(whole[0]) and quarantine.equals(whole[1])
    sizes = [row_bytes(d, q) for d, q in parts]
    assert all(part and (sum(part) <= max_shard_bytes or len(part) == 1) for part in sizes)
