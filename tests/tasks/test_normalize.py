import json
import unicodedata

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from tasks.normalize import (
    FTFY_CONFIG,
    NormalizeParams,
    normalize_text,
    repair_unicode,
    run,
)


def test_mojibake_is_repaired():
    text, repaired = normalize_text(
        "The caf\u00c3\u00a9 served cr\u00c3\u00a8me br\u00c3\u00bbl\u00c3\u00a9e", NormalizeParams()
    )

    assert text == "The café served crème brûlée"
    assert repaired


def test_decomposed_text_is_composed_to_nfc():
    text, _ = normalize_text("cafe\u0301", NormalizeParams())

    assert text == "caf\u00e9"


def test_control_characters_are_removed_but_newlines_kept():
    text, _ = normalize_text("one\x00 two\x07\nthree\x1b", NormalizeParams())

    assert text == "one two\nthree"


def test_whitespace_is_collapsed_and_blank_lines_limited():
    text, _ = normalize_text("  a \t b  \r\n\n\n\n c   \n", NormalizeParams())

    assert text == "a b\n\nc"


def test_curly_quotes_and_ligatures_are_left_alone():
    text, repaired = normalize_text("“ﬁne” — ＡＢＣ", NormalizeParams())

    assert text == "“ﬁne” — ＡＢＣ"
    assert not repaired


def test_text_that_becomes_empty_is_rejected_with_a_reason():
    table = pa.table({"id": ["a", "b"], "text": ["fine text", " \x00\t "]})

    out = run(table, NormalizeParams())

    assert out.kept.column("id").to_pylist() == ["a"]
    assert out.rejected.column("reason").to_pylist() == ["normalize:char_count"]


def test_run_keeps_schema_on_empty_table():
    table = pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})

    out = run(table, NormalizeParams())

    assert out.kept.schema.names == ["id", "text", "is_unicode_repaired", "is_text_normalized"]
    assert out.rejected.schema.names[-1] == "reason"


def test_fast_path_gives_ftfy_output_on_real_crawl_text(shared_data):
    import ftfy

    texts = [
        json.loads(line)["text"]
        for name in ("html_pages_wetlike.jsonl", "cc_text_docs.jsonl")
        for line in (shared_data / "web_raw" / name).read_bytes().splitlines()
    ]

    mismatches = [t[:60] for t in texts if repair_unicode(t) != ftfy.fix_text(t, FTFY_CONFIG)]

    assert mismatches == []


@given(st.text())
def test_normalized_text_is_canonical_for_any_input(text):
    out, _ = normalize_text(text, NormalizeParams())

    assert unicodedata.is_normalized("NFC", out)
    assert not any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in out)
    assert out == out.strip() and "\n\n\n" not in out and "  " not in out
