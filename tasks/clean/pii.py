"""PII redaction: e-mail addresses and public IP addresses become placeholders.

A text transform run before the rules, as Dolma's PII masking (Soldaini et al. 2024, Sec. 3.1.4:
e-mails and IPs replaced by tokens) and FineWeb's `PIIFormatter` (datatrove `formatters/pii.py`:
e-mails and public IPs only) do. An IP is public when the stdlib `ipaddress` module calls it global
and neither multicast nor reserved: private (10/8, 192.168/16, fc00::/7...), loopback, link-local,
documentation and shared ranges are left alone, as they identify no one.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from tasks.clean import CleanParams

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


class PiiParams(BaseModel):
    """What PII to redact and what replaces it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Redact PII (n_pii_redacted stays, null, when off).")
    redact_emails: bool = Field(True, description="Replace e-mail addresses.")
    redact_ip_addresses: bool = Field(True, description="Replace public IPv4 and IPv6 addresses.")
    # placeholder tokens in the manner of Dolma's |||EMAIL_ADDRESS||| / |||IP_ADDRESS||| masks
    email_replacement: str = Field("<EMAIL>", description="Text that replaces an e-mail address.")
    ip_replacement: str = Field("<IP_ADDRESS>", description="Text that replaces a public IP address.")


def redact_pii(text: str, lang: str | None, p: CleanParams) -> tuple[str, int]:
    """The text with e-mails and public IPs replaced, and how many were. Language-independent."""
    del lang  # PII patterns are the same in every language; the argument keeps transforms uniform
    pii = p.pii
    n = 0
    if pii.redact_emails and "@" in text:
        text, n = EMAIL_RE.subn(pii.email_replacement, text)
    if pii.redact_ip_addresses:
        if "." in text:
            text, n_v4 = _redact_public(IPV4_RE, text, pii.ip_replacement)
            n += n_v4
        if IPV6_HINT_RE.search(text):
            text, n_v6 = _redact_public(IPV6_RE, text, pii.ip_replacement)
            n += n_v6
    return text, n


def _redact_public(pattern: re.Pattern[str], text: str, replacement: str) -> tuple[str, int]:
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if is_public_ip(match.group()):
            count += 1
            return replacement
        return match.group()

    return pattern.sub(replace, text), count


def is_public_ip(candidate: str) -> bool:
    """True for a syntactically valid, globally routable unicast address."""
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:  # a candidate that is not an address ("999.1.1.1", a time "12:30:45")
        return False
    return address.is_global and not address.is_multicast and not address.is_reserved
