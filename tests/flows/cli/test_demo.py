"""The demo corpus: deterministic bytes, every injected defect present, good English docs pass the rules."""

import gzip
import ipaddress
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from flows.cli.demo import (
    BENCHMARK_PLANTS,
    DEMO_BENCHMARK,
    SHARDS,
    benchmark_problem,
    write_demo_corpus,
    write_training_pages,
)

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
STOP_WORDS = {"the", "of", "and", "to", "that", "with"}


def raw_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read()
    return data.splitlines()


def parse(line: bytes) -> dict | str:
    """The record, or what is wrong with the line."""
    try:
        return json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "invalid_utf8"
    except json.JSONDecodeError:
        return "invalid_json"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[dict | str]:
    paths = write_demo_corpus(tmp_path_factory.mktemp("demo"))
    return [parse(line) for path in paths for line in raw_lines(path)]


def records(corpus: list[dict | str]) -> list[dict]:
    return [r for r in corpus if isinstance(r, dict) and isinstance(r.get("text"), str)]


def test_same_seed_gives_identical_bytes(tmp_path):
    first = write_demo_corpus(tmp_path / "a", seed=7)

    second = write_demo_corpus(tmp_path / "b", seed=7)

    assert [p.name for p in first] == list(SHARDS)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_different_seed_gives_different_bytes(tmp_path):
    first = write_demo_corpus(tmp_path / "a", seed=7)

    second = write_demo_corpus(tmp_path / "b", seed=8)

    assert all(a.read_bytes() != b.read_bytes() for a, b in zip(first, second))


def test_n_docs_documents_plus_four_malformed_records(corpus):
    malformed = [r for r in corpus if not isinstance(r, dict) or not isinstance(r.get("text"), str)]
    kinds = sorted(r if isinstance(r, str) else ("null_text" if "text" in r else "no_text") for r in malformed)

    assert len(corpus) == 600 + 4
    assert kinds == ["invalid_json", "invalid_utf8", "no_text", "null_text"]


def test_languages_mix_is_mostly_english_with_a_few_others(corpus):
    langs = Counter(r["url"].split("/")[3] for r in records(corpus))

    assert 0.6 <= langs["en"] / sum(langs.values()) <= 0.7
    assert {"de", "fr", "es", "zh", "ru", "eo"} <= set(langs)
    assert langs["eo"] == 2


def test_every_defect_kind_is_in_the_text(corpus):
    texts = [r["text"] for r in records(corpus)]
    lowered = [t.lower() for t in texts]

    assert any("uses cookies" in t or "privacy policy" in t or "enable javascript" in t for t in lowered)
    assert any(max(Counter(t.splitlines()).values()) >= 10 for t in texts)
    assert any(len(t.split()) < 5 for t in texts)
    assert any("{" in t for t in texts)
    assert any("lorem ipsum" in t for t in lowered)
    assert any("Ã" in t for t in texts)
    assert any(unicodedata.category(c) == "Cc" and c not in "\n" for t in texts for c in t)
    assert any(c in t for t in texts for c in "\u00a0\u200b\u3000")
    pii = [t for t in texts if EMAIL.search(t)]
    assert pii and all("192.168.0.12" in t for t in pii)
    assert all(any(ipaddress.ip_address(ip).is_global for ip in IPV4.findall(t)) for t in pii)


def test_exact_duplicates_have_their_own_id_and_url(corpus):
    by_text: dict[str, list[dict]] = {}
    for r in records(corpus):
        by_text.setdefault(r["text"], []).append(r)

    groups = [g for g in by_text.values() if len(g) > 1]

    assert len(groups) >= 0.04 * 600
    assert all(len({r["id"] for r in g}) == len({r["url"] for r in g}) == len(g) for g in groups)


def test_near_duplicates_extend_another_document_by_one_sentence(corpus):
    texts = {r["text"] for r in records(corpus)}
    near = [r for r in records(corpus) if r["defect"] == "near_duplicate"]

    assert len(near) >= 0.02 * 600
    for r in near:
        head, _, tail = r["text"].rpartition(". ")
        assert head + "." in texts and len(tail.split()) < 25, r["id"]


def test_good_english_documents_pass_the_heuristic_rules(corpus):
    good = [r for r in records(corpus) if r["defect"] is None and "/en/" in r["url"]]

    assert len(good) > 200
    for r in good:
        lines = r["text"].splitlines()
        words = r["text"].split()
        assert len(words) >= 60, r["id"]
        assert len(re.findall(r"[.!?](?:\s|$)", r["text"])) >= 5, r["id"]
        assert len([line for line in lines if line]) >= 3, r["id"]
        assert all(line.endswith((".", "!", "?")) for line in lines if line), r["id"]
        assert len(set(lines) - {""}) == len([line for line in lines if line]), r["id"]
        assert r["text"].count("\n") / len(words) <= 0.3, r["id"]
        assert len(STOP_WORDS & {w.lower() for w in words}) >= 2, r["id"]


def test_rewriting_the_same_corpus_leaves_files_untouched(tmp_path):
    first = {p: p.stat().st_mtime_ns for p in write_demo_corpus(tmp_path)}

    second = {p: p.stat().st_mtime_ns for p in write_demo_corpus(tmp_path)}

    assert second == first


def test_two_benchmark_problems_are_planted_one_verbatim_one_retold(corpus):
    planted = {r["defect"]: r["text"] for r in records(corpus) if r["defect"] in BENCHMARK_PLANTS}
    verbatim = benchmark_problem(BENCHMARK_PLANTS["benchmark_verbatim"]["item"])
    retold = benchmark_problem(BENCHMARK_PLANTS["benchmark_paraphrase"]["item"])

    assert set(planted) == {"benchmark_verbatim", "benchmark_paraphrase"}
    assert verbatim["question"] in planted["benchmark_verbatim"]
    assert "<<" not in planted["benchmark_verbatim"]  # as web copies show the answer: no calculator notes
    assert BENCHMARK_PLANTS["benchmark_paraphrase"]["text"] in planted["benchmark_paraphrase"]
    shared = {tuple(w) for w in ngrams(retold["question"])} & {
        tuple(w) for w in ngrams(planted["benchmark_paraphrase"])
    }
    assert not shared  # no 13-gram: only the embedding search can find it


def ngrams(text: str, n: int = 13) -> list[list[str]]:
    words = re.findall(r"\w+", text.lower())
    return [words[i : i + n] for i in range(len(words) - n + 1)]


def test_demo_benchmark_sample_is_300_gsm8k_problems_with_their_licence():
    problems = [json.loads(line) for line in DEMO_BENCHMARK.read_text(encoding="utf-8").splitlines()]

    assert len(problems) == 300 and [p["id"] for p in problems] == [f"gsm8k-test-{i:04d}" for i in range(300)]
    assert all(p["question"] and "####" in p["answer"] for p in problems)
    assert "MIT License" in (DEMO_BENCHMARK.parent / "LICENSE").read_text()


def test_training_pages_are_seeded_and_every_raw_page_has_a_defect(tmp_path):
    reference, raw = write_training_pages(tmp_path / "a", seed=3, n_docs=120)
    again = write_training_pages(tmp_path / "b", seed=3, n_docs=120)

    good = [json.loads(line) for line in reference.read_text(encoding="utf-8").splitlines()]
    noisy = [json.loads(line) for line in raw.read_text(encoding="utf-8").splitlines()]
    assert [reference.read_bytes(), raw.read_bytes()] == [p.read_bytes() for p in again]
    assert len(good) == len(noisy) == 120
    assert all(d["defect"] is None for d in good) and all(d["defect"] for d in noisy)
    assert {d["url"].split("/")[3] for d in good} >= {"en", "de", "fr", "es", "zh", "ru"}
