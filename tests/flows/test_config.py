import pytest

from flows.config import CurationConfig, load_config
from tasks.errors import ConfigError


def test_overrides_are_typed_from_yaml_scalars():
    cfg = load_config(overrides=["input.paths=[a.jsonl]", "langid.min_score=0.8", "langid.languages=[en, de]"])

    assert cfg.langid.min_score == 0.8
    assert cfg.langid.languages == ("en", "de")


def test_yaml_file_and_overrides_combine_with_overrides_winning(tmp_path):
    path = tmp_path / "curate.yaml"
    path.write_text("input:\n  paths: [x.jsonl]\nlangid:\n  min_score: 0.3\n")

    cfg = load_config(path, ["langid.min_score=0.7"], base={"output": "elsewhere"})

    assert (cfg.input.paths, cfg.langid.min_score, cfg.output) == (("x.jsonl",), 0.7, "elsewhere")


def test_typo_in_a_key_is_a_clear_error():
    with pytest.raises(ConfigError, match="langid.min_scor"):
        load_config(overrides=["input.paths=[a]", "langid.min_scor=0.8"])


def test_out_of_range_value_is_a_clear_error():
    with pytest.raises(ConfigError, match="langid.min_score"):
        load_config(overrides=["input.paths=[a]", "langid.min_score=1.5"])


def test_unreadable_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")


def test_malformed_override_is_a_config_error():
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(overrides=["langid.min_score"])


def test_store_defaults_inside_output():
    cfg = load_config(overrides=["input.paths=[a]", "output=/data/out/"])

    assert cfg.store_url == "/data/out/.winnow-store"


def test_parameter_schema_has_a_section_per_stage_with_descriptions():
    schema = CurationConfig.model_json_schema()

    assert {"input", "normalize", "langid", "clean", "dedup_exact", "select", "write", "run"} <= set(schema["properties"])
    langid = schema["$defs"]["LangidParams"]["properties"]
    assert langid["min_score"]["maximum"] == 1.0
    assert all("description" in field for field in langid.values())
