"""Credentials and API keys, found by the patterns of detect-secrets' regex plugins (Yelp, Apache-2.0).

Dolma tags code secrets with detect-secrets (Soldaini et al. 2024); Winnow uses the same plugins'
pattern lists over prose and code alike. Left out: its public-IP plugin (`tasks.pii.network` does IPs)
and its keyword and high-entropy plugins, which judge lines of code ("password = ...") and fire on
ordinary hashes and identifiers in web text.

detect-secrets reports a secret's value per line, not where it lies; the patterns are run here for
their spans, and only around a hint of a secret: the keyword plugins' patterns try every position of
the text they are given. A private key's span runs from its BEGIN line to the END line that closes it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from functools import cache

SKIPPED_PLUGINS = frozenset({"ip_public"})
MIN_GROUP_CHARS = 8  # a capture group shorter than this is a prefix ("ghp"), not the secret
TRIM = " \t\r\n\"'=:"  # what some patterns match around the secret (artifactory's delimiters)
KEY_END_RE = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|---- END SSH2 ENCRYPTED PRIVATE KEY ----")
KEY_SCAN_CHARS = 16_384  # how far past a BEGIN line the END line is looked for
WINDOW_CHARS = 64  # text scanned on each side of a hint: the AWS pattern reads 40 characters of key
# after up to 41 of "aws ... key ... '"; the other patterns hold their secret in the hint itself
# Hints: where a plugin's pattern can match (every pattern needs one). A token of 11 or more key
# characters with a digit in it (the shortest, Artifactory's, has 11); a key header or a URL with a
# user; a credential keyword followed by an assignment (matched on the lowered text: a case-insensitive
# alternation is five times slower in `re`).
TOKEN_HINT_RE = re.compile(  # at a token's start, when a digit follows within it
    r"[A-Za-z0-9_+/=.-](?<![A-Za-z0-9_+/=.-].)(?=[A-Za-z_+/=.-]*\d)[A-Za-z0-9_+/=.-]{10,}"
)
MARKER_HINT_RE = re.compile(r"PRIVATE KEY|PuTTY|://[^\s/@]+@")
KEYWORD_HINT_RE = re.compile(r"(?:key|pwd|pw|pass|token|secret)[\"'\]]?\s*(?::=|=>|=|:)")
KEYWORD_HINT_ANY_CASE_RE = re.compile(KEYWORD_HINT_RE.pattern, re.IGNORECASE)


@cache
def any_pattern() -> re.Pattern[str]:
    """All patterns as one alternation: one search tells whether a window needs the patterns one by one."""
    return re.compile("|".join(f"(?{_inline_flags(pattern)}:{pattern.pattern})" for pattern in patterns()))


def _inline_flags(pattern: re.Pattern[str]) -> str:
    """The flags a pattern was compiled with, as a scoped inline group takes them ("-i" for none)."""
    flags = "".join(
        letter for flag, letter in ((re.I, "i"), (re.M, "m"), (re.S, "s"), (re.X, "x")) if pattern.flags & flag
    )
    return flags or "-i"


@cache
def patterns() -> tuple[re.Pattern[str], ...]:
    """Every regex plugin's deny-list patterns, loaded once per process."""
    import detect_secrets.plugins as plugins
    from detect_secrets.plugins.base import RegexBasedDetector

    found = []
    for info in pkgutil.iter_modules(plugins.__path__):
        if info.name in SKIPPED_PLUGINS:
            continue
        module = importlib.import_module(f"{plugins.__name__}.{info.name}")
        for _, detector in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(detector, RegexBasedDetector)
                and detector is not RegexBasedDetector
                and detector.__module__ == module.__name__
            ):
                found.extend(detector().denylist)
    return tuple(found)


def secrets(text: str) -> Iterator[tuple[int, int]]:
    for window_start, window_end in _hinted_windows(text):
        window = text[window_start:window_end]
        if any_pattern().search(window) is None:
            continue
        for pattern in patterns():
            for match in pattern.finditer(window):
                start, end = _secret_span(match)
                yield from _trimmed(text, window_start + start, window_start + end, match.group())


def _hinted_windows(text: str) -> Iterator[tuple[int, int]]:
    """Around each hint, the text from `WINDOW_CHARS` before it to as many after, widened to whitespace
    so that no pattern starts or ends inside a token; overlapping windows merged."""
    current: tuple[int, int] | None = None
    for hint_start, hint_end in sorted(_hints(text)):
        start = _whitespace_before(text, max(0, hint_start - WINDOW_CHARS))
        end = _whitespace_after(text, hint_end + WINDOW_CHARS)
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


def _hints(text: str) -> Iterator[tuple[int, int]]:
    for match in TOKEN_HINT_RE.finditer(text):
        yield match.span()
    for match in MARKER_HINT_RE.finditer(text):
        yield match.span()
    lowered = text.lower()
    if len(lowered) == len(text):  # lowering kept every offset (it does, but for a few letters like "İ")
        yield from (match.span() for match in KEYWORD_HINT_RE.finditer(lowered))
    else:
        yield from (match.span() for match in KEYWORD_HINT_ANY_CASE_RE.finditer(text))


def _whitespace_before(text: str, at: int) -> int:
    return max(text.rfind(" ", 0, at), text.rfind("\n", 0, at), text.rfind("\t", 0, at)) + 1


def _whitespace_after(text: str, at: int) -> int:
    if at >= len(text):
        return len(text)
    ends = [i for i in (text.find(" ", at), text.find("\n", at), text.find("\t", at)) if i >= 0]
    return min(ends, default=len(text))


def _trimmed(text: str, start: int, end: int, matched: str) -> Iterator[tuple[int, int]]:
    """The secret's span without the delimiters some patterns take along; a private key to its END line."""
    if "PRIVATE KEY" in matched or "PuTTY" in matched:
        while start > 0 and text[start - 1] == "-":  # "-----BEGIN RSA PRIVATE KEY-----"
            start -= 1
        closing = KEY_END_RE.search(text, end, end + KEY_SCAN_CHARS)
        newline = text.find("\n", end)
        end = closing.end() if closing else newline if newline >= 0 else len(text)
    while start < end and text[start] in TRIM:
        start += 1
    while end > start and text[end - 1] in TRIM:
        end -= 1
    if end > start:
        yield start, end


def _secret_span(match: re.Match[str]) -> tuple[int, int]:
    """The last capture group long enough to be the secret itself, else the whole match."""
    for group in range(match.re.groups, 0, -1):
        start, end = match.span(group)
        if start >= 0 and end - start >= MIN_GROUP_CHARS:
            return start, end
    return match.span()
