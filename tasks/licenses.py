"""The licence a document declares: Creative Commons and other open-licence links in a page's HTML, or
a licence field its record carries.

Ids are lowercase, after the Hugging Face Hub's licence list and the Data Provenance Initiative's
taxonomy (Longpre et al. 2023): `cc-by-4.0`, `cc-by-nc-sa-3.0`, `cc0-1.0`, `public-domain-mark-1.0`,
`gfdl`. A jurisdiction port (`/3.0/de/`) maps to its base licence. Where nothing is declared the
licence is None: a page with no licence is not thereby free to use.

In HTML, a `rel="license"` link decides (the microformat Creative Commons' licence chooser writes);
without one, a Creative Commons licence link stands for the page when it is the only licence the
page links to, as Dolma's licence tagger reads CC URLs anywhere in a page (Soldaini et al. 2024),
unless it follows an image or a credit (a photo's, a map's, a track's author): that link licenses
the work it credits.
Tags are found by a regex over the markup, not a parse: the extractor already parses each page once,
and the attributes looked for are plain (`bench/licenses.py` measures it against hand labels).
"""

from __future__ import annotations

import json
import re
from collections import Counter

# creativecommons.org/licenses/<terms>/<version>[/<port>] and /publicdomain/<zero|mark>/<version>
_CC = re.compile(
    r"creativecommons\.org/(?P<kind>licenses|publicdomain)/(?P<terms>[a-z-]+)/(?P<version>\d\.\d)", re.IGNORECASE
)
_GFDL = re.compile(r"gnu\.org/(?:licenses/fdl|copyleft/fdl)", re.IGNORECASE)
CC_TERMS = frozenset({"by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd"})
_TAG = re.compile(r"<(?:a|link)\b[^>]*>", re.IGNORECASE)
_REL_LICENSE = re.compile(
    r"""\brel\s*=\s*(?:"[^"]*\blicense\b[^"]*"|'[^']*\blicense\b[^']*'|license\b)""", re.IGNORECASE
)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s>]+))""", re.IGNORECASE)
METADATA_FIELDS = ("license", "licence", "license_url", "licence_url", "rights")  # a record's own licence fields
# What precedes a credit line: an image, a caption, or a word that introduces an image's, map's or
# track's author or source, in the languages of the web's largest shares (en, de, fr, es, it, pt, nl).
# A CC link right after one licenses that work, not the page.
_CREDIT = re.compile(
    r"flickr|wikimedia|openstreetmap|\b(?:photo|foto|bild|image|imagen|immagine|picture|credit|crédit|crédito|"
    r"bildnachweis|bildquelle|fotografie|photograph|music|musik|musique|música)",
    re.IGNORECASE,
)
CREDIT_WINDOW = 160  # characters before a CC link searched for a credit (bench/licenses.py: 80-300 tried)
_BADGE = re.compile(r"creativecommons|licensebuttons|88x31|80x15", re.IGNORECASE)  # a CC licence badge's image


def license_id(reference: str) -> str | None:
    """The licence id a URL or name refers to; None when it names no licence this module knows."""
    match = _CC.search(reference)
    if match:
        terms, version = match["terms"].lower(), match["version"]
        if match["kind"].lower() == "publicdomain":
            return {"zero": f"cc0-{version}", "mark": f"public-domain-mark-{version}"}.get(terms)
        return f"cc-{terms}-{version}" if terms in CC_TERMS else None
    if _GFDL.search(reference):
        return "gfdl"
    name = reference.strip().lower().replace(" ", "-").replace("_", "-")
    if re.fullmatch(r"cc-(?:by|by-sa|by-nd|by-nc|by-nc-sa|by-nc-nd)-\d\.\d|cc0-1\.0", name):
        return name
    return None


def declared_license(html: str) -> str | None:
    """The licence an HTML page declares for itself (see the module's rules)."""
    lowered = html.lower()
    if "license" not in lowered and "creativecommons" not in lowered and "gnu.org" not in lowered:
        return None
    declared: Counter = Counter()
    linked: Counter = Counter()
    for tag in _TAG.finditer(html):
        href = _HREF.search(tag.group())
        found = license_id(next(v for v in href.groupdict().values() if v is not None)) if href else None
        if found is None:
            continue
        if _REL_LICENSE.search(tag.group()):
            declared[found] += 1
        elif not _credits_a_work(html, tag.start()):
            linked[found] += 1
    if declared:
        return declared.most_common(1)[0][0]
    return next(iter(linked)) if len(linked) == 1 else None


def _credits_a_work(html: str, at: int) -> bool:
    """Whether the CC link at `at` follows an image or a credit: an image (not a licence badge served
    by Creative Commons) or a credit word in the visible text, within CREDIT_WINDOW characters."""
    window = html[max(0, at - CREDIT_WINDOW) : at]
    for image in re.finditer(r"<img\b[^>]*>?", window, re.IGNORECASE):
        if not _BADGE.search(image.group()):
            return True
    return bool(_CREDIT.search(re.sub(r"<[^>]*>?", " ", window)))


def metadata_license(meta: str | None) -> str | None:
    """The licence a record's metadata (`meta`, the JSON of its other fields) names, if one this
    module knows."""
    if not meta or not any(field in meta for field in METADATA_FIELDS):
        return None
    try:
        fields = json.loads(meta)
    except json.JSONDecodeError:
        return None
    for field in METADATA_FIELDS:
        value = fields.get(field) if isinstance(fields, dict) else None
        if isinstance(value, str) and (found := license_id(value)):
            return found
    return None
