"""The read stage on WARC and WET files: real Common Crawl files, skips counted, corruption quarantined."""

import gzip
import io
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tasks.contract import DOC_SCHEMA, QUARANTINE_SCHEMA
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
        "warc_record_id": "<urn:uuid:2aabeff2-67f5-4608-8466-e87c6296e2b6>",
    }
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


def test_gzip_truncated_in_the_middle_is_quarantined_not_fatal(tmp_path):
    data = (RAW / "dolma_sample-0000.warc.gz").read_bytes()
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(data[: len(data) // 2])

    docs, quarantine = read(path)

    counts = reason_counts(quarantine)
    assert 0 < docs.num_rows < 22
    assert counts["read:warc_corrupt"] == 1
    assert quarantine.column("reason").to_pylist()[-1] == "read:warc_corrupt"


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
