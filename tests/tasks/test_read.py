"""The read stage: each quarantine reason tripped by the smallest file, ids, meta, formats, inputs."""

import gzip
import json
import re
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.contract import DOC_SCHEMA, QUARANTINE_SCHEMA, RAW_PREFIX_BYTES
from tasks.errors import InputError
from tasks.io import expand_inputs, file_fingerprint
from tasks.read import REASONS, ReadParams, run

REAL_JSONL = Path("/work/shared/data/web_raw/cc_text_docs.jsonl")


def read(path: Path, **params) -> tuple[pa.Table, pa.Table]:
    return run(str(path), path.name, ReadParams(**params))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def reasons(quarantine: pa.Table) -> list[tuple[int, str]]:
    return list(zip(quarantine.column("line").to_pylist(), quarantine.column("reason").to_pylist()))


def test_reason_codes_are_unique_and_well_formed():
    codes = list(REASONS)

    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[a-z0-9_]+:[a-z0-9_]+", code) for code in codes)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"text": "caf\xe9"}', "read:invalid_utf8"),
        (b'{"text": "unterminated', "read:invalid_json"),
        (b'["text"]', "read:not_an_object"),
        (b'{"body": "x"}', "read:missing_text"),
        (b'{"text": null}', "read:text_not_string"),
        (b'{"text": 42}', "read:text_not_string"),
    ],
)
def test_bad_line_is_quarantined_with_its_reason(tmp_path, line, reason):
    path = write(tmp_path / "a.jsonl", b'{"text": "good"}\n' + line + b"\n")

    docs, quarantine = read(path)

    assert docs.column("text").to_pylist() == ["good"]
    assert reasons(quarantine) == [(2, reason)]
    assert quarantine.column("raw").to_pylist() == [line]
    assert quarantine.column("source_file").to_pylist() == ["a.jsonl"]


def test_invalid_utf8_line_does_not_poison_the_file(tmp_path):
    path = write(tmp_path / "a.jsonl", b'{"text": "\xff"}\n{"text": "caf\xc3\xa9"}\n')

    docs, quarantine = read(path)

    assert docs.column("text").to_pylist() == ["café"]
    assert reasons(quarantine) == [(1, "read:invalid_utf8")]


def test_duplicate_id_is_quarantined_and_the_first_wins(tmp_path):
    path = write(tmp_path / "a.jsonl", b'{"id": "x", "text": "first"}\n{"id": "x", "text": "second"}\n')

    docs, quarantine = read(path)

    assert docs.column("text").to_pylist() == ["first"]
    assert reasons(quarantine) == [(2, "read:duplicate_id")]


@pytest.mark.parametrize("content", [b"", b"\n  \n\r\n"])
def test_file_without_records_is_one_empty_file_row(tmp_path, content):
    path = write(tmp_path / "a.jsonl", content)

    docs, quarantine = read(path)

    assert docs.num_rows == 0
    assert reasons(quarantine) == [(0, "read:empty_file")]
    assert quarantine.column("raw").to_pylist() == [b""]


def test_blank_lines_are_skipped_but_counted_in_line_numbers(tmp_path):
    path = write(tmp_path / "a.jsonl", b'\n{"text": "a"}\n\n{"text": "b"}')

    docs, quarantine = read(path)

    assert docs.column("id").to_pylist() == ["a.jsonl:2", "a.jsonl:4"]
    assert quarantine.num_rows == 0


def test_raw_keeps_the_first_kib_of_the_record(tmp_path):
    line = b'{"body": "' + b"x" * 5000 + b'"}'
    path = write(tmp_path / "a.jsonl", line)

    _, quarantine = read(path)

    assert quarantine.column("raw").to_pylist() == [line[:RAW_PREFIX_BYTES]]


def test_ids_without_an_id_field_are_stable_across_runs(tmp_path):
    path = write(tmp_path / "a.jsonl", b'{"text": "a"}\n{"text": "b"}\n')

    first, _ = read(path)
    second, _ = read(path)

    assert first.column("id").to_pylist() == ["a.jsonl:1", "a.jsonl:2"]
    assert second.column("id").equals(first.column("id"))


def test_int_ids_are_stringified(tmp_path):
    path = write(tmp_path / "a.jsonl", b'{"id": 7, "text": "a"}\n{"doc": 8, "text": "b"}\n')

    docs, _ = read(path, id_field="doc")

    assert docs.column("id").to_pylist() == ["a.jsonl:1", "8"]
    assert docs.column("meta").to_pylist() == ['{"id":7}', None]


def test_other_fields_go_to_meta_as_compact_sorted_json(tmp_path):
    record = {"text": "t", "url": "https://a.example/", "source": "cc", "z": [1, "é"], "a": {"b": None}}
    path = write(tmp_path / "a.jsonl", json.dumps(record).encode())

    docs, _ = read(path)

    assert docs.to_pylist() == [
        {
            "id": "a.jsonl:1",
            "text": "t",
            "url": "https://a.example/",
            "source": "cc",
            "meta": '{"a":{"b":null},"z":[1,"é"]}',
            "source_file": "a.jsonl",
            "source_record": 1,
            "warc_record_id": None,
        },
    ]


def test_custom_field_names_and_non_string_url_stays_in_meta(tmp_path):
    path = write(tmp_path / "a.jsonl", b'{"content": "t", "link": {"href": "x"}, "origin": null}\n')

    docs, _ = read(path, text_field="content", url_field="link", source_field="origin")

    assert docs.select(["id", "text", "url", "source", "meta"]).to_pylist() == [
        {"id": "a.jsonl:1", "text": "t", "url": None, "source": None, "meta": '{"link":{"href":"x"}}'},
    ]


@pytest.mark.parametrize(
    ("name", "compress"),
    [("a.jsonl.gz", gzip.compress), ("a.jsonl.zst", zstandard.ZstdCompressor().compress)],
)
def test_compressed_jsonl_is_read(tmp_path, name, compress):
    path = write(tmp_path / name, compress(b'{"text": "a"}\n{"text": "b"}\n'))

    docs, quarantine = read(path)

    assert docs.column("id").to_pylist() == [f"{name}:1", f"{name}:2"]
    assert quarantine.num_rows == 0


def test_multi_frame_zstd_is_read_to_the_end(tmp_path):
    frame = zstandard.ZstdCompressor().compress
    path = write(tmp_path / "a.ndjson.zst", frame(b'{"text": "a"}\n') + frame(b'{"text": "b"}\n'))

    docs, _ = read(path)

    assert docs.column("text").to_pylist() == ["a", "b"]


def test_corrupt_gzip_is_an_input_error_naming_the_file_when_set_to_fail(tmp_path):
    path = write(tmp_path / "a.jsonl.gz", gzip.compress(b'{"text": "a"}\n' * 100)[:-20])

    with pytest.raises(InputError, match=rf"{re.escape(str(path))}: corrupt compressed stream \(offset=\d+: "):
        read(path, on_corrupt_file="fail")


def test_parquet_is_read_with_ids_and_meta(tmp_path):
    table = pa.table({"text": ["a", None, "c"], "id": [10, 11, None], "lang": ["en", "fr", "de"]})
    pq.write_table(table, tmp_path / "a.parquet")

    docs, quarantine = read(tmp_path / "a.parquet")

    assert docs.drop_columns(["source_file", "warc_record_id"]).to_pylist() == [
        {"id": "10", "text": "a", "url": None, "source": None, "meta": '{"lang":"en"}', "source_record": 1},
        {"id": "a.parquet:3", "text": "c", "url": None, "source": None, "meta": '{"lang":"de"}', "source_record": 3},
    ]
    assert reasons(quarantine) == [(2, "read:text_not_string")]
    assert json.loads(quarantine.column("raw")[0].as_py()) == {"text": None, "id": 11, "lang": "fr"}


def test_parquet_without_the_text_column_is_an_input_error(tmp_path):
    pq.write_table(pa.table({"body": ["a"]}), tmp_path / "a.parquet")

    with pytest.raises(InputError, match=r"no column 'text' \(found \['body'\]\); set input.text_field"):
        read(tmp_path / "a.parquet")


def test_text_file_is_one_document(tmp_path):
    path = write(tmp_path / "notes.txt", b"line one\nline two\n")

    docs, quarantine = read(path)

    assert docs.column("id").to_pylist() == ["notes.txt"]
    assert docs.column("text").to_pylist() == ["line one\nline two\n"]
    assert quarantine.num_rows == 0


@pytest.mark.parametrize(("content", "reason"), [(b"", "read:empty_file"), (b"caf\xe9", "read:invalid_utf8")])
def test_bad_text_file_is_quarantined(tmp_path, content, reason):
    path = write(tmp_path / "notes.txt", content)

    docs, quarantine = read(path)

    assert docs.num_rows == 0
    assert quarantine.column("reason").to_pylist() == [reason]


def test_explicit_format_overrides_the_suffix(tmp_path):
    path = write(tmp_path / "dump.log", b'{"text": "a"}\n')

    docs, _ = read(path, format="jsonl")

    assert docs.column("text").to_pylist() == ["a"]


def test_unknown_suffix_is_an_input_error(tmp_path):
    path = write(tmp_path / "dump.log", b"x")

    with pytest.raises(InputError, match="set input.format"):
        read(path)


def test_missing_path_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read(tmp_path / "absent.jsonl")


def test_params_reject_unknown_fields():
    with pytest.raises(ValueError, match="text_feild"):
        ReadParams(text_feild="body")


def test_expand_inputs_on_a_glob_is_relative_to_its_root(tmp_path):
    for name in ("a/x.jsonl", "a/y.jsonl", "b/z.jsonl", "a/skip.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write(tmp_path / name, b"")

    pairs = expand_inputs([f"{tmp_path}/*/*.jsonl"])

    assert pairs == [
        (f"{tmp_path}/a/x.jsonl", "a/x.jsonl"),
        (f"{tmp_path}/a/y.jsonl", "a/y.jsonl"),
        (f"{tmp_path}/b/z.jsonl", "b/z.jsonl"),
    ]


def test_expand_inputs_walks_a_directory_and_skips_hidden_files(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.jsonl", "sub/a.jsonl.gz", ".hidden", "_SUCCESS"):
        write(tmp_path / name, b"")

    pairs = expand_inputs([str(tmp_path), str(tmp_path / "b.jsonl")])

    assert pairs == [(f"{tmp_path}/b.jsonl", "b.jsonl"), (f"{tmp_path}/sub/a.jsonl.gz", "sub/a.jsonl.gz")]


def test_expand_inputs_rejects_a_pattern_matching_nothing(tmp_path):
    with pytest.raises(InputError, match="matches no file; check input.paths"):
        expand_inputs([f"{tmp_path}/*.jsonl"])


def test_expand_inputs_rejects_files_sharing_a_relpath(tmp_path):
    for name in ("a/x.jsonl", "b/x.jsonl"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write(tmp_path / name, b"")

    with pytest.raises(InputError, match="share the relative name 'x.jsonl'"):
        expand_inputs([f"{tmp_path}/a/*.jsonl", f"{tmp_path}/b/*.jsonl"])


def test_file_fingerprint_changes_with_the_content(tmp_path):
    path = write(tmp_path / "a.jsonl", b"one")
    before = file_fingerprint(str(path))

    write(path, b"three")

    assert file_fingerprint(str(path)) != before
    assert file_fingerprint(str(path)) == file_fingerprint(str(path))


def test_real_crawl_sample_reads_without_quarantine():
    docs, quarantine = run(str(REAL_JSONL), REAL_JSONL.name, ReadParams())

    assert docs.num_rows == 427
    assert quarantine.num_rows == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=400)
    | st.lists(
        st.sampled_from(
            [
                b'{"text": "a"}',
                b'{"id": 1, "text": "b"}',
                b"\xff",
                b"[]",
                b"",
                b" ",
                b'{"text": 1}',
                b'{"text": "\\ud800"}',
                b"NaN",
                b'{"text": "c", "u": 1e999}',
            ]
        ),
        max_size=8,
    ).map(b"\n".join)
)
def test_arbitrary_bytes_never_raise_and_every_record_is_accounted_for(tmp_path, data):
    path = write(tmp_path / "fuzz.jsonl", data)
    n_records = sum(1 for line in data.removeprefix(b"\xef\xbb\xbf").split(b"\n") if line.strip())

    docs, quarantine = read(path)

    assert docs.schema == DOC_SCHEMA
    assert quarantine.schema == QUARANTINE_SCHEMA
    assert docs.num_rows + quarantine.num_rows == max(n_records, 1)


def test_fsspec_urls_are_expanded_and_read(tmp_path):
    fs = fsspec.filesystem("memory")
    root = f"/{tmp_path.name}"
    fs.pipe(f"{root}/a/x.jsonl", b'{"text": "a"}\n')
    fs.pipe(f"{root}/b.jsonl.gz", gzip.compress(b'{"text": "b"}\n'))

    pairs = expand_inputs([f"memory://{root}"])
    texts = [run(path, relpath, ReadParams())[0].column("text").to_pylist() for path, relpath in pairs]

    assert pairs == [
        (f"memory://{root}/a/x.jsonl", "a/x.jsonl"),
        (f"memory://{root}/b.jsonl.gz", "b.jsonl.gz"),
    ]
    assert texts == [["a"], ["b"]]
    fs.rm(root, recursive=True)
