"""The licence a page or a record declares (`tasks.licenses`), and what extract and select do with it."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from tasks.contract import HTML_SOURCE
from tasks.extract import ExtractParams
from tasks.extract import run as extract
from tasks.licenses import declared_license, license_id, metadata_license
from tasks.select import LICENSE_REASON, SelectParams
from tasks.select import run as select


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("http://creativecommons.org/licenses/by-sa/3.0/de/", "cc-by-sa-3.0"),
        ("https://creativecommons.org/licenses/by-nc-nd/4.0/deed.en", "cc-by-nc-nd-4.0"),
        ("https://web.archive.org/web/2016/http://creativecommons.org/licenses/by/2.0/", "cc-by-2.0"),
        ("https://creativecommons.org/publicdomain/zero/1.0/", "cc0-1.0"),
        ("https://creativecommons.org/publicdomain/mark/1.0/", "public-domain-mark-1.0"),
        ("https://www.gnu.org/licenses/fdl-1.3.html", "gfdl"),
        ("CC-BY-4.0", "cc-by-4.0"),
        ("https://creativecommons.org/licenses/", None),
        ("https://example.com/terms", None),
        ("All rights reserved", None),
    ],
)
def test_licence_ids_from_urls_and_names(reference, expected):
    assert license_id(reference) == expected


def page(*tags: str) -> str:
    article = f"<article><p>{'Some words of the article. ' * 20}</p></article>"
    return f"<html><body>{article}<footer>{''.join(tags)}</footer></body></html>"


def test_a_rel_license_link_decides_over_other_licence_links():
    html = page(
        '<a href="https://creativecommons.org/licenses/by/2.0/">Photo: Flickr</a>',
        "<a class=badge rel='license noopener' href='http://creativecommons.org/licenses/by-nc-sa/3.0/de/'>CC</a>",
    )

    assert declared_license(html) == "cc-by-nc-sa-3.0"


def test_one_cc_link_stands_for_the_page_and_two_different_ones_for_nothing():
    one = page('<a href="https://creativecommons.org/licenses/by-sa/4.0/">CC BY-SA 4.0</a>')
    two = page(
        '<a href="https://creativecommons.org/licenses/by-sa/4.0/">text</a>',
        '<a href="https://creativecommons.org/licenses/by/2.0/">image</a>',
    )

    assert declared_license(one) == "cc-by-sa-4.0"
    assert declared_license(two) is None
    assert declared_license(page("<p>Our license terms: all rights reserved.</p>")) is None


def test_a_record_names_its_licence_in_its_metadata():
    assert metadata_license(json.dumps({"license": "https://creativecommons.org/licenses/by/4.0/"})) == "cc-by-4.0"
    assert metadata_license(json.dumps({"licence": "CC-BY-SA-3.0", "source": "x"})) == "cc-by-sa-3.0"
    assert metadata_license(json.dumps({"license": "proprietary"})) is None
    assert metadata_license(None) is None and metadata_license("{not json license") is None


def test_extract_writes_the_licence_of_pages_and_of_records():
    html = page('<a rel="license" href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>')
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "text": [html, "plain text", "more text"],
            "url": [None, None, None],
            "source": [HTML_SOURCE, None, None],
            "meta": [None, json.dumps({"license": "cc0-1.0"}), None],
        }
    )

    out = extract(table, ExtractParams(min_text_chars=10))

    assert out.kept.column("license").to_pylist() == ["cc-by-4.0", "cc0-1.0", None]


def test_select_keeps_only_the_licences_asked_for_and_unknown_means_none_declared():
    table = pa.table({"id": ["a", "b", "c"], "license": ["cc-by-4.0", None, "cc-by-nc-4.0"]})

    open_only = select(table, SelectParams(licenses=("cc-by-4.0", "cc0-1.0")))
    with_unknown = select(table, SelectParams(licenses=("cc-by-4.0", "unknown")))

    assert open_only.kept.column("id").to_pylist() == ["a"]
    assert open_only.rejected.column("reason").to_pylist() == [LICENSE_REASON] * 2
    assert with_unknown.kept.column("id").to_pylist() == ["a", "b"]
    assert SelectParams(licenses=("cc-by-4.0",)).reads() == ("license",) and SelectParams().reads() == ()


def test_a_cc_link_that_credits_an_image_licenses_the_image_not_the_page():
    photo = page(
        '<img src="/uploads/river.jpg" alt="river"/> © A. Walker / flickr.com | '
        '<a href="https://creativecommons.org/licenses/by/2.0/">CC BY 2.0</a>'
    )
    badge = page(
        '<a href="https://creativecommons.org/licenses/by-sa/4.0/"><img src="https://i.creativecommons.org/l/by-sa/4.0/88x31.png"/></a>'
        ' This blog is licensed under <a href="https://creativecommons.org/licenses/by-sa/4.0/">CC BY-SA 4.0</a>.'
    )

    assert declared_license(photo) is None
    assert declared_license(badge) == "cc-by-sa-4.0"
