import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_BYTES = 12 * 1024  # a five-minute read; the rest is the docs site (docs/, mkdocs.yml)


def test_readme_shows_the_two_setup_commands_first():
    text = README.read_text()

    assert text.index("make demo") < text.index("make test") < text.index("winnow run")


def test_readme_reads_in_five_minutes():
    size = README.stat().st_size

    assert size <= MAX_README_BYTES, f"README.md is {size} bytes; move detail to docs/"


def test_readme_links_only_to_docs_pages_that_exist():
    links = re.findall(r"\]\((docs/[^)#\s]+)", README.read_text())

    assert links
    assert [link for link in links if not (ROOT / link).is_file()] == []
