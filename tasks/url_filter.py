"""The `url_filter` stage: drop documents by URL before any text work, as RefinedWeb and CulturaX do.

RefinedWeb (Penedo et al. 2023, §G.1) blocks 4.6M domains and scores URL words; CulturaX (Nguyen et
al. 2023, §3.2) drops URLs on the UT1 blacklist. Both match a document's host *or any parent
domain* (`a.b.example.com` is blocked by `example.com`); we do the same, plus plain substrings of
the whole URL. Documents with no URL (plain JSONL, WET records without one) always pass.

Blocklists come from the params (`blocked_domains`, `blocked_substrings`) and an optional file of
one domain per line (UT1's `domains` format: `#` comments and blank lines ignored), read once per
process. Matching is vectorised with `pyarrow.compute`: the host is cut from the URL by one regex,
then its labels are peeled one at a time (a host has a handful), each step a set lookup over the
whole column; substrings are one RE2 alternation.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ConfigDict, Field, computed_field

from tasks.contract import RecomputedOnLoad, StageOutput, split_by_reason
from tasks.errors import ConfigError

VERSION = 1  # bump when the same input + params give different output

# scheme://[userinfo@]host[:port][/?#...]; the host may be an IPv6 literal in brackets
_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(?P<host>\[[^\]/]*\]|[^:/?#]*)"
_MAX_LABELS = 16  # peel at most this many labels; real hosts have far fewer (RFC 1035 allows 127)


class UrlFilterParams(RecomputedOnLoad):
    """URL blocklists. The defaults block nothing: which sites to drop is the user's policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    blocked_domains: tuple[str, ...] = Field(
        (),
        description="Domains whose pages are dropped, with all their subdomains (url_filter:domain).",
    )
    blocked_substrings: tuple[str, ...] = Field(
        (),
        description="Case-insensitive substrings; a URL holding any is dropped (url_filter:substring).",
    )
    blocklist_path: str | None = Field(
        None,
        description="Optional file of blocked domains, one per line ('#' comments), e.g. UT1's "
        "'adult/domains'; added to blocked_domains. Its content is part of the cache key.",
    )

    @computed_field(description="SHA-256 of the blocklist file: an edited file reruns the stage.")
    @property
    def blocklist_sha256(self) -> str | None:
        if self.blocklist_path is None:
            return None
        try:
            return hashlib.sha256(Path(self.blocklist_path).read_bytes()).hexdigest()
        except OSError as exc:
            raise ConfigError(
                f"{self.blocklist_path}: cannot read the URL blocklist ({exc}); check url_filter.blocklist_path"
            ) from exc


# The one registry of this stage's reason codes, in evaluation order: code -> what it measures.
REASONS: dict[str, str] = {
    "url_filter:domain": "the URL's host, or one of its parent domains, is on the domain blocklist",
    "url_filter:substring": "the URL contains a blocked substring",
}


def normalize_domain(domain: str) -> str:
    """`WWW.Example.com.` -> `www.example.com`: hosts compare lowercased, without the root dot."""
    return domain.strip().lower().rstrip(".")


@functools.lru_cache(maxsize=8)
def load_blocklist(path: str) -> frozenset[str]:
    """The domains listed in a blocklist file, read once per process and path.

    Raises:
        ConfigError: the file cannot be read.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the URL blocklist ({exc}); check url_filter.blocklist_path") from exc
    return frozenset(normalize_domain(line) for line in lines if line.strip() and not line.lstrip().startswith("#"))


def blocked_domains(params: UrlFilterParams) -> frozenset[str]:
    domains = {normalize_domain(d) for d in params.blocked_domains if d.strip()}
    if params.blocklist_path:
        domains |= load_blocklist(params.blocklist_path)
    return frozenset(domains)


def url_hosts(urls: pa.Array) -> pa.Array:
    """Each URL's host, lowercased, without a trailing dot; null when the URL has none."""
    host = pc.struct_field(pc.extract_regex(urls, _HOST), "host")
    host = pc.replace_substring_regex(pc.utf8_lower(host), r"\.$", "")
    return pc.if_else(pc.equal(host, ""), pa.scalar(None, pa.string()), host)


def domain_blocked(hosts: pa.Array, domains: frozenset[str]) -> pa.Array:
    """True where the host or any parent domain is in `domains` (null hosts: False)."""
    blocked = pa.array([False] * len(hosts), pa.bool_())
    if not domains:
        return blocked
    value_set = pa.array(sorted(domains), pa.string())
    current = hosts
    for _ in range(_MAX_LABELS):
        blocked = pc.or_(blocked, pc.fill_null(pc.is_in(current, value_set=value_set), False))
        has_parent = pc.fill_null(pc.match_substring(current, "."), False)
        if not pc.any(has_parent).as_py():
            break
        current = pc.if_else(
            has_parent, pc.replace_substring_regex(current, r"^[^.]*\.", "", max_replacements=1), None
        )
    return blocked


def substring_blocked(urls: pa.Array, substrings: tuple[str, ...]) -> pa.Array:
    """True where the URL contains any of `substrings`, ignoring case (null URLs: False)."""
    needles = [s for s in substrings if s]
    if not needles:
        return pa.array([False] * len(urls), pa.bool_())
    pattern = "|".join(re.escape(s) for s in needles)
    return pc.fill_null(pc.match_substring_regex(urls, pattern, ignore_case=True), False)


def run(table: pa.Table, params: UrlFilterParams) -> StageOutput:
    """Route documents with a blocked URL to `rejected`; the first matching reason wins.

    Args:
        table: documents with a `url` column (null URLs pass).
        params: the blocklists.

    Returns:
        `StageOutput` with `kept` unchanged in schema and `rejected` adding `reason`.
    """
    urls = table.column("url").combine_chunks()
    by_domain = domain_blocked(url_hosts(urls), blocked_domains(params))
    by_substring = substring_blocked(urls, params.blocked_substrings)
    null = pa.scalar(None, pa.string())
    reasons = pc.if_else(by_domain, "url_filter:domain", pc.if_else(by_substring, "url_filter:substring", null))
    return split_by_reason(table, reasons)
