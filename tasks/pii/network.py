"""E-mail addresses, public IP addresses, and credentials carried in URLs.

E-mails and public IPs are what Dolma's PII masking (Soldaini et al. 2024, Sec. 3.1.4) and FineWeb's
`PIIFormatter` (datatrove `formatters/pii.py`) replace. An IP is public when the stdlib `ipaddress`
module calls it global and neither multicast nor reserved: private (10/8, 192.168/16, fc00::/7...),
loopback, link-local, documentation and shared ranges identify no one. A URL's password and the values
of its token-bearing query parameters are parsed by `urllib.parse`, not guessed from the text around.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

EMAIL_RE = re.compile(
    r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
# Candidates only; `ipaddress` decides what is an address. Each pattern starts with a character class
# (the regex engine then skips ahead in C) and checks the preceding character by a lookbehind after it.
IPV4_RE = re.compile(r"\d(?<![\d.]\d)\d{0,2}(?:\.\d{1,3}){3}(?!\.?\d)")
IPV6_RE = re.compile(
    r"(?:[0-9A-Fa-f](?<![\w:.][0-9A-Fa-f])[0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{0,4}){2,7}"
    r"|:(?<![\w:.]:)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){1,6})(?![\w:])"
)
IPV6_HINT_RE = re.compile(r":[0-9A-Fa-f]{0,4}:")  # two colons close together: cheap test before IPV6_RE

USERINFO_RE = re.compile(r"://[^\s/@:]*:\Z")  # "scheme://user:" right before a password
URL_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s<>\"'`]+")
# Query parameters whose value authenticates its bearer: OAuth 2.0 (RFC 6749: access_token,
# refresh_token, client_secret, code is left out as short-lived), AWS SigV4 presigned URLs
# (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token), Azure SAS (sig), and the common API-key names.
TOKEN_PARAMS = frozenset(
    "access_token refresh_token id_token client_secret token auth auth_token api_key apikey key secret "
    "password passwd pwd pass sig signature session sessionid sid x-amz-signature x-amz-credential "
    "x-amz-security-token x-goog-signature jwt".split()
)
MIN_TOKEN_CHARS = 8  # shorter values ("key=en", "sid=3") are settings, not secrets


def emails(text: str) -> Iterator[tuple[int, int]]:
    """E-mail addresses, except a URL's "password@host" (`url_credentials` takes the password)."""
    if "@" in text:
        for match in EMAIL_RE.finditer(text):
            start = match.start()
            if text[start - 1 : start] == ":" and USERINFO_RE.search(text, max(0, start - 256), start):
                continue
            yield match.span()


def ip_addresses(text: str) -> Iterator[tuple[int, int]]:
    if "." in text:
        for match in IPV4_RE.finditer(text):
            if is_public_ip(match.group()):
                yield match.span()
    if IPV6_HINT_RE.search(text):
        for match in IPV6_RE.finditer(text):
            if is_public_ip(match.group()):
                yield match.span()


def is_public_ip(candidate: str) -> bool:
    """True for a syntactically valid, globally routable unicast address."""
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:  # a candidate that is not an address ("999.1.1.1", a time "12:30:45")
        return False
    return address.is_global and not address.is_multicast and not address.is_reserved


def url_credentials(text: str) -> Iterator[tuple[int, int]]:
    """The password of `scheme://user:password@host` and the values of token-bearing query parameters."""
    if "://" not in text:
        return
    for match in URL_RE.finditer(text):
        url, offset = match.group().rstrip(".,;:!?)]}"), match.start()
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:  # a malformed port or IPv6 literal: not a URL urllib can vouch for
            continue
        if password:
            start = url.index("@", len(parts.scheme) + 3) - len(password)
            if url[start : start + len(password)] == password:
                yield offset + start, offset + start + len(password)
        if parts.query:
            at = url.index("?") + 1
            for name, value in parse_qsl(parts.query, keep_blank_values=True):
                if name.lower() in TOKEN_PARAMS and len(value) >= MIN_TOKEN_CHARS:
                    raw = f"{name}="
                    start = url.find(raw, at)
                    if start < 0:
                        continue
                    value_start = start + len(raw)
                    value_end = _query_value_end(url, value_start)
                    yield offset + value_start, offset + value_end
                    at = value_end


def _query_value_end(url: str, start: int) -> int:
    ends = [i for i in (url.find("&", start), url.find("#", start), url.find(";", start)) if i >= 0]
    return min(ends, default=len(url))
