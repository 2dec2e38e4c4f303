from pathlib import Path

from flows.config import reference_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_config_reference_matches_the_model():
    assert reference_markdown() in README.read_text()


def test_readme_shows_the_two_setup_commands_first():
    text = README.read_text()

    assert text.index("make demo") < text.index("make test") < text.index("winnow run")
