"""The read stage on WARC and WET files: real Common Crawl files, skips counted, corruption quarantined."""

import gzip
import io
import json
import re
import zlib
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tasks.contract import DOC_SCHEMA, QUARANTINE_SCHEMA
from tasks.errors import InputError
from tasks.io import detect_format
from tasks.read import HTML_SOURCE, TEXT_SOURCE, ReadParams, run

RAW = Path("/work/shared/data/web_raw/raw_formats")


def read(path: Path, **params) -> tuple[pa.Table, pa.Table]:
    return run(str(path), path.name, ReadParams(**params))


def reason_counts(quarantine: pa.Table) -> Counter:
    return Counter(quarantine.column("reason").to_pylist())


def response(writer: WARCWriter, url: str, body: bytes, content_type: str | None, **http) -> None:
    headers = [("Content-Type", content_type)] if content_type else []
    headers += list(http.items())
    http_headers = StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1")
    record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http_headers)
    writer.write_record(record)


def request(writer: WARCWriter, url: str) -> None:
    http_headers = StatusAndHeaders("GET / HTTP/1.1", [("Host", "example.com")], is_http_request=True)
    writer.write_record(writer.create_warc_record(url, "request", http_headers=http_headers))


def small_warc(gzipped: bool = True) -> bytes:
    """A request, an HTML response, a PNG response and a Latin-1 page with its charset in <meta> only."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=gzipped)
    request(writer, "https://example.com/")
    response(writer, "https://example.com/", b"<html lang=en><p>Hello</p></html>", "text/html; charset=utf-8")
    response(writer, "https://example.com/logo.png", b"\x89PNG\r\n\x1a\n", "image/png")
    latin = '<html><head><meta charset="iso-8859-1"></head><p>caf\u00e9 cr\u00e8me</p></html>'.encode("latin-1")
    response(writer, "https://example.com/fr", latin, "text/html")
    return buffer.getvalue()


def member_starts(data: bytes) -> list[int]:
    """Where each gzip member of a multi-member file starts."""
    starts, pos = [], 0
    while pos < len(data):
        starts.append(pos)
        dec = zlib.decompressobj(wbits=31)
        dec.decompress(data[pos:])
        pos = len(data) - len(dec.unused_data)
    return starts


COMPRESS = {
    ".gz": lambda data: gzip.compress(data, mtime=0),
    ".zst": zstandard.ZstdCompressor(write_checksum=True).compress,
}
URLS = [f"https://example.com/{i}" for i in range(8)]


def html_records() -> list[bytes]:
    """Eight uncompressed WARC records, an HTML response each."""
    records = []
    for i, url in enumerate(URLS):
        buffer = io.BytesIO()
        body = f"<html><p>page {i}: {'words ' * 300}</p></html>".encode()
        response(WARCWriter(buffer, gzip=False), url, body, "text/html")
        records.append(buffer.getvalue())
    return records


def html_members(suffix: str) -> list[bytes]:
    """`html_records`, each its own gzip member / zstd frame, as Common Crawl writes them."""
    return [COMPRESS[suffix](record) for record in html_records()]


def offsets(parts: list[bytes]) -> list[int]:
    return [sum(map(len, parts[:i])) for i in range(len(parts) + 1)]


def rows(quarantine: pa.Table) -> list[tuple[int, str, int | None]]:
    """(line, reason, offset) per row; offset from a break's `offset=<byte>:` raw, else None."""
    found = [re.match(rb"offset=(\d+): ", raw) for raw in quarantine.column("raw").to_pylist()]
    return [
        (line, reason, int(m.group(1)) if m else None)
        for line, reason, m in zip(
            quarantine.column("line").to_pylist(), quarantine.column("reason").to_pylist(), found
        )
    ]


@pytest.mark.parametrize("name", ["a.warc", "a.warc.gz", "a.wet", "a.warc.wet.gz", "a.wet.gz"])
def test_warc_suffixes_are_detected(name):
    assert detect_format(name) == "warc"


def test_dolma_warc_gives_one_doc_per_html_response():
    docs, quarantine = read(RAW / "dolma_sample-0000.warc.gz")

    assert docs.schema == DOC_SCHEMA and quarantine.schema == QUARANTINE_SCHEMA
    assert docs.num_rows == 22
    assert set(docs.column("source").to_pylist()) == {HTML_SOURCE}
    # 22 requests, 1 warcinfo, 1 metadata, 2 resource records: each skipped and counted
    assert reason_counts(quarantine) == {"read:warc_record_type": 26}
    assert all(url.startswith("http") for url in docs.column("url").to_pylist())  # <...> stripped


def test_whirlwind_warc_response_carries_url_id_and_meta():
    docs, quarantine = read(RAW / "whirlwind.warc.gz")

    doc = docs.to_pylist()[0]
    meta = json.loads(doc["meta"])
    assert docs.num_rows == 1
    assert doc["id"] == "urn:uuid:2aabeff2-67f5-4608-8466-e87c6296e2b6"
    assert doc["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert doc["text"].lstrip().startswith("<!DOCTYPE html>")
    assert meta == {
        "content_type": "text/html",
        "http_charset": "utf-8",
        "warc_date": "2024-05-18T01:58:10Z",
        "warc_identified_language": None,
    }
    assert doc["warc_record_id"] == "<urn:uuid:2aabeff2-67f5-4608-8466-e87c6296e2b6>"
    assert (doc["source_file"], doc["source_record"]) == ("whirlwind.warc.gz", 3)
    assert reason_counts(quarantine) == {"read:warc_record_type": 3}  # warcinfo, request, metadata


def test_wet_conversion_record_is_text_with_identified_language():
    docs, quarantine = read(RAW / "whirlwind.warc.wet.gz")

    doc = docs.to_pylist()[0]
    assert docs.num_rows == 1
    assert doc["source"] == TEXT_SOURCE
    assert doc["text"].startswith("Escopete - Biquipedia")
    assert json.loads(doc["meta"])["warc_identified_language"] == "spa"
    assert reason_counts(quarantine) == {"read:warc_record_type": 1}


def test_ccnet_sample_needs_explicit_format_and_is_quarantined_as_malformed():
    # The sample's lines end in LF, not CRLF, and its Content-Lengths count characters, not bytes:
    # the warcinfo record overruns into the next header, which no WARC parser can then read.
    path = RAW / "ccnet_sample.warc.wet.txt"

    as_text, _ = read(path)
    docs, quarantine = read(path, format="warc")

    assert as_text.num_rows == 1  # `.txt` alone means plain text
    assert docs.num_rows == 0
    assert reason_counts(quarantine) == {"read:warc_record_type": 1, "read:warc_corrupt": 1}


def test_non_html_responses_and_requests_are_skipped_and_counted(tmp_path):
    path = tmp_path / "small.warc.gz"
    path.write_bytes(small_warc())

    docs, quarantine = read(path)

    assert docs.column("url").to_pylist() == ["https://example.com/", "https://example.com/fr"]
    assert reason_counts(quarantine) == {"read:warc_record_type": 1, "read:warc_content_type": 1}
    assert quarantine.column("raw").to_pylist()[1].startswith(b"WARC/1.")


def test_html_without_http_charset_is_decoded_with_its_meta_charset(tmp_path):
    path = tmp_path / "small.warc"
    path.write_bytes(small_warc(gzipped=False))

    docs, _ = read(path)

    doc = docs.to_pylist()[1]
    assert "caf\u00e9 cr\u00e8me" in doc["text"]
    assert json.loads(doc["meta"])["http_charset"] in {"iso-8859-1", "windows-1252", "cp1252", "latin-1"}


def test_gzip_truncated_in_the_middle_keeps_every_whole_record(tmp_path):
    data = (RAW / "dolma_sample-0000.warc.gz").read_bytes()
    cut = len(data) // 2
    n_whole = sum(1 for start in member_starts(data) if start < cut) - 1  # one gzip member per record
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(data[:cut])

    docs, quarantine = read(path)

    assert docs.num_rows + quarantine.num_rows == n_whole + 1
    assert quarantine.column("line").to_pylist()[-1] == n_whole + 1
    assert reason_counts(quarantine) == {
        "read:warc_record_type": n_whole - docs.num_rows,
        "read:truncated_stream": 1,
    }
    assert quarantine.column("raw").to_pylist()[-1].startswith(f"offset={cut}: ".encode())


def test_uncompressed_record_cut_short_is_quarantined(tmp_path):
    raw = gzip.decompress((RAW / "whirlwind.warc.gz").read_bytes())
    cut = raw.index(b"</html>")  # inside the one HTML response
    path = tmp_path / "cut.warc"
    path.write_bytes(raw[:cut])

    docs, quarantine = read(path)

    assert docs.num_rows == 0
    assert reason_counts(quarantine) == {"read:warc_record_type": 2, "read:warc_corrupt": 1}


def test_garbage_between_records_is_quarantined(tmp_path):
    raw = gzip.decompress((RAW / "dolma_sample-0000.warc.gz").read_bytes())
    second = raw.index(b"WARC/1.", 10)
    path = tmp_path / "garbled.warc"
    path.write_bytes(raw[:second] + b"GARBAGE\r\n\r\n" + raw[second:])

    docs, quarantine = read(path)

    assert docs.num_rows == 0
    assert quarantine.column("reason").to_pylist() == ["read:warc_record_type", "read:warc_corrupt"]


def test_duplicate_record_id_is_quarantined(tmp_path):
    one = (RAW / "whirlwind.warc.wet.gz").read_bytes()
    path = tmp_path / "twice.warc.wet.gz"
    path.write_bytes(one + one)  # gzip members concatenate into one stream

    docs, quarantine = read(path)

    assert docs.num_rows == 1
    assert reason_counts(quarantine)["read:duplicate_id"] == 1


def test_empty_warc_file_is_quarantined(tmp_path):
    path = tmp_path / "empty.warc.gz"
    path.write_bytes(gzip.compress(b""))

    docs, quarantine = read(path)

    assert docs.num_rows == 0
    assert quarantine.column("reason").to_pylist() == ["read:empty_file"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"WARC/1.0\r\n" + b)))
def test_arbitrary_bytes_never_raise_and_keep_the_schemas(tmp_path, data):
    path = tmp_path / "any.warc"
    path.write_bytes(data)

    docs, quarantine = read(path)

    assert docs.schema == DOC_SCHEMA and quarantine.schema == QUARANTINE_SCHEMA


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_cut_warc_keeps_every_whole_record_and_the_cut_one_is_the_break(tmp_path, suffix):
    records = html_records()
    parts = [COMPRESS[suffix](record) for record in records]
    cut = offsets(parts)[4] + len(parts[4]) // 2
    path = tmp_path / f"cut.warc{suffix}"
    path.write_bytes(b"".join(parts)[:cut])

    docs, quarantine = read(path)

    cut_record = quarantine.column("raw")[0].as_py().split(b"\n", 1)[1]  # what decoded of record 5
    assert docs.column("url").to_pylist() == URLS[:4]
    assert rows(quarantine) == [(5, "read:truncated_stream", cut)]
    assert records[4].startswith(cut_record)  # gzip: its header; zstd: nothing (a frame is one block)


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_garbage_after_the_last_warc_record_keeps_every_record(tmp_path, suffix):
    whole = b"".join(html_members(suffix))
    path = tmp_path / f"tail.warc{suffix}"
    path.write_bytes(whole + b"\x01\x00garbage" * 40)

    docs, quarantine = read(path)

    assert docs.column("url").to_pylist() == URLS
    assert rows(quarantine) == [(9, "read:corrupt_member", len(whole))]


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_bad_member_in_the_middle_of_a_warc_resumes_at_the_next_record(tmp_path, suffix):
    parts = html_members(suffix)
    at = offsets(parts)
    parts[3] = parts[3][:10] + b"\xff" * 16 + parts[3][26:]  # the record's compressed data is garbled
    path = tmp_path / f"bad.warc{suffix}"
    path.write_bytes(b"".join(parts))

    docs, quarantine = read(path)

    [(line, reason, offset)] = rows(quarantine)
    assert docs.column("url").to_pylist() == URLS[:3] + URLS[4:]
    assert (line, reason) == (4, "read:corrupt_member") and at[3] <= offset < at[4]
    assert f"byte {at[4]}".encode() in quarantine.column("raw")[0].as_py()  # where reading resumed


def test_unparseable_record_in_a_sound_gzip_member_skips_only_that_member(tmp_path):
    parts = html_members(".gz")
    parts[2] = gzip.compress(b"GARBAGE\r\n\r\n", mtime=0)
    path = tmp_path / "garbled.warc.gz"
    path.write_bytes(b"".join(parts))

    docs, quarantine = read(path)

    assert docs.column("url").to_pylist() == URLS[:2] + URLS[3:]
    assert rows(quarantine) == [(3, "read:warc_corrupt", None)]


def test_cut_warc_is_an_input_error_naming_the_file_when_set_to_fail(tmp_path):
    members = html_members(".gz")
    cut = offsets(members)[4] + len(members[4]) // 2  # inside a member: a cut between two is a clean, shorter file
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(b"".join(members)[:cut])

    message = rf"{re.escape(str(path))}: corrupt compressed stream \(offset={cut}: "
    with pytest.raises(InputError, match=message):
        read(path, on_corrupt_file="fail")


def test_record_header_cut_before_its_target_uri_is_quarantined_not_raised(tmp_path):
    records = html_records()  # warcio 1.8 raises AttributeError on a response without WARC-Target-URI
    path = tmp_path / "cut.warc"
    path.write_bytes(records[0] + records[1][: records[1].index(b"WARC-Target-URI")])

    docs, quarantine = read(path)

    assert docs.column("url").to_pylist() == URLS[:1]
    assert rows(quarantine) == [(2, "read:warc_corrupt", None)]


def test_record_without_content_length_is_quarantined_and_the_next_member_read(tmp_path):
    records = html_records()
    no_length = re.sub(rb"Content-Length: \d+\r\n", b"", records[1])
    path = tmp_path / "nolength.warc.gz"
    path.write_bytes(b"".join(COMPRESS[".gz"](record) for record in [records[0], no_length, records[2]]))

    docs, quarantine = read(path)

    assert docs.column("url").to_pylist() == [URLS[0], URLS[2]]
    assert rows(quarantine) == [(2, "read:warc_corrupt", None)]
