"""The url_filter stage: each reason tripped by one URL, parent domains, null URLs, the blocklist file."""

import re

import pyarrow as pa
import pytest

from tasks.contract import doc_table
from tasks.errors import ConfigError
from tasks.url_filter import REASONS, UrlFilterParams, run, url_hosts


def docs(urls: list[str | None]) -> pa.Table:
    return doc_table(id=[f"d{i}" for i in range(len(urls))], text=["text"] * len(urls), url=urls)


def verdicts(table: pa.Table, params: UrlFilterParams) -> dict[str, str | None]:
    out = run(table, params)
    result = {doc_id: None for doc_id in out.kept.column("id").to_pylist()}
    result.update(zip(out.rejected.column("id").to_pylist(), out.rejected.column("reason").to_pylist()))
    return result


def test_reason_codes_are_unique_and_well_formed():
    assert all(re.fullmatch(r"[a-z0-9_]+:[a-z0-9_]+", code) for code in REASONS)


def test_blocked_domain_and_its_subdomains_are_rejected_but_lookalikes_pass():
    table = docs(
        [
            "https://example.com/a",
            "http://news.EXAMPLE.com./b",
            "https://example.community/",
            "https://notexample.com/",
        ]
    )

    result = verdicts(table, UrlFilterParams(blocked_domains=("Example.com",)))

    assert result == {"d0": "url_filter:domain", "d1": "url_filter:domain", "d2": None, "d3": None}


def test_blocked_substring_is_rejected_ignoring_case():
    table = docs(["https://ok.net/Casino-Royale", "https://ok.net/news"])

    result = verdicts(table, UrlFilterParams(blocked_substrings=("casino",)))

    assert result == {"d0": "url_filter:substring", "d1": None}


def test_domain_reason_wins_over_substring():
    result = verdicts(
        docs(["https://casino.example.com/"]),
        UrlFilterParams(blocked_domains=("example.com",), blocked_substrings=("casino",)),
    )

    assert result == {"d0": "url_filter:domain"}


def test_null_and_hostless_urls_pass():
    table = docs([None, "not a url", ""])

    result = verdicts(table, UrlFilterParams(blocked_domains=("example.com",), blocked_substrings=("x",)))

    assert result == {"d0": None, "d1": None, "d2": None}


def test_blocklist_file_adds_domains(tmp_path):
    path = tmp_path / "domains"
    path.write_text("# adult\nbad.example\n\n  Worse.Example  \n")

    result = verdicts(
        docs(["https://www.bad.example/", "https://worse.example/", "https://good.example/"]),
        UrlFilterParams(blocklist_path=str(path)),
    )

    assert result == {"d0": "url_filter:domain", "d1": "url_filter:domain", "d2": None}


def test_missing_blocklist_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="blocklist_path"):
        run(docs(["https://a.example/"]), UrlFilterParams(blocklist_path=str(tmp_path / "nope")))


def test_host_is_cut_from_userinfo_port_and_ipv6():
    urls = pa.array(["http://u:p@Host.Example:8080/x?y", "http://[::1]:80/", "ftp://a.b/"])

    assert url_hosts(urls).to_pylist() == ["host.example", "[::1]", "a.b"]


def test_empty_and_multi_chunk_tables():
    chunked = pa.concat_tables([docs(["https://example.com/"]), docs([]), docs(["https://ok.org/"])])

    out = run(chunked, UrlFilterParams(blocked_domains=("example.com",)))
    empty = run(docs([]), UrlFilterParams(blocked_domains=("example.com",)))

    assert out.kept.column("id").to_pylist() == ["d0"] and out.rejected.num_rows == 1
    assert empty.kept.num_rows == 0 and empty.rejected.schema.names[-1] == "reason"


def test_defaults_block_nothing():
    out = run(docs(["https://example.com/"]), UrlFilterParams())

    assert out.rejected.num_rows == 0
