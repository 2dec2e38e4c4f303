"""Bad input never crashes `read`: every record of a hostile JSONL file is a document or a quarantine
row with a registered reason (records in == documents + quarantined), whatever it holds."""

from __future__ import annotations

import json

import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.contract import DOC_SCHEMA, QUARANTINE_SCHEMA
from tasks.read import REASONS, ReadParams, run

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)  # NULs, controls, astral planes
ids = st.one_of(
    st.none(), st.sampled_from(["a", "b", "1"]), st.integers(-2, 2), st.floats(allow_nan=True), st.booleans()
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=10,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def good_record(draw) -> bytes:
    record = {"text": draw(texts), "meta": draw(json_values)}
    if (doc_id := draw(ids)) is not None:
        record["id"] = doc_id  # few distinct ids: duplicates are common
    return json.dumps(record, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def hostile_line(draw) -> bytes:
    kind = draw(st.sampled_from(["good", "truncated", "latin1", "nul", "bytes", "deep", "not_object", "no_text"]))
    if kind == "good":
        return good_record(draw)
    if kind == "truncated":  # broken JSON: a good record cut anywhere
        line = good_record(draw)
        return line[: draw(st.integers(0, max(len(line) - 1, 0)))]
    if kind == "latin1":  # mixed encodings: the same record in Latin-1 (invalid UTF-8 when non-ASCII)
        return json.dumps(
            {"text": draw(st.text(alphabet="aéøß€ü", min_size=1, max_size=10))}, ensure_ascii=False
        ).encode(draw(st.sampled_from(["latin-1", "cp1252", "utf-16-le"])), errors="replace")
    if kind == "nul":
        return b'{"text": "a\x00b"}' if draw(st.booleans()) else b'{"text": "a\\u0000b", "id": "\x00"}'
    if kind == "bytes":
        return draw(st.binary(max_size=60))
    if kind == "deep":  # deeply nested meta: past what the encoders handle, and within it
        return (
            f'{{"text": "x", "meta": {nested(draw(st.sampled_from([5, 254, 255, 600, 1023, 1024, 5000])))}}}'.encode()
        )
    if kind == "not_object":
        return json.dumps(draw(json_values)).encode()
    return json.dumps({"body": draw(texts)}).encode()


def records_in(data: bytes) -> int:
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    return sum(1 for line in lines if line.strip())


@FUZZ
@given(lines=st.lists(hostile_line(), max_size=12))
def test_every_hostile_record_is_a_document_or_quarantined_with_a_reason(tmp_path, lines):
    data = b"\n".join(line.replace(b"\n", b" ") for line in lines)
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)

    docs, quarantine = run(str(path), path.name, ReadParams())

    assert docs.schema == DOC_SCHEMA and quarantine.schema == QUARANTINE_SCHEMA
    assert docs.num_rows + quarantine.num_rows == max(records_in(data), 1)
    assert set(quarantine.column("reason").to_pylist()) <= set(REASONS)
    assert len(set(docs.column("id").to_pylist())) == docs.num_rows


@FUZZ
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_as_plain_text_are_one_document_or_quarantined(tmp_path, data):
    path = tmp_path / "fuzz.txt"
    path.write_bytes(data)

    docs, quarantine = run(str(path), path.name, ReadParams())

    assert docs.num_rows + quarantine.num_rows == 1


def test_meta_nested_past_the_encoder_limit_is_quarantined_with_its_reason(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text(f'{{"text": "kept", "m": {nested(3)}}}\n{{"text": "x", "m": {nested(1000)}}}\n')

    docs, quarantine = run(str(path), path.name, ReadParams())

    assert docs.column("text").to_pylist() == ["kept"]
    assert list(zip(quarantine.column("line").to_pylist(), quarantine.column("reason").to_pylist())) == [
        (2, "read:nesting_depth")
    ]


def test_a_50_mb_document_on_one_line_is_read_whole(tmp_path):
    text = ("All work and no play makes a dull corpus. " * 1_250_000)[:50_000_000]
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps({"id": "huge", "text": text}) + '\n{"id": "small", "text": "fine"}\n')

    docs, quarantine = run(str(path), path.name, ReadParams())

    assert docs.column("id").to_pylist() == ["huge", "small"]
    assert pc.binary_length(docs.column("text"))[0].as_py() == 50_000_000
    assert quarantine.num_rows == 0
