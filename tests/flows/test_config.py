import pytest

from flows.config import CurationConfig, load_config
from tasks.errors import ConfigError


def test_overrides_are_typed_from_yaml_scalars():
    cfg = load_config(overrides=["input.paths=[a.jsonl]", "langid.min_score=0.8", "langid.languages=[en, de]"])

    assert cfg.langid.min_score == 0.8
    assert cfg.langid.languages == ("en", "de")


def test_quiet_and_verbose_set_the_progress_display_though_yaml_reads_off_as_false(monkeypatch):
    """Regression: `--quiet` sets `run.progress.display=off`, which YAML parsed to false: a config error."""
    from flows.cli.app import _verbosity

    # --quiet also sets Prefect's console level for the process: restored after this test
    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "NOTSET")

    quiet = load_config(overrides=["input.paths=[a.jsonl]", *_verbosity(quiet=True, verbose=False)])
    verbose = load_config(overrides=["input.paths=[a.jsonl]", *_verbosity(quiet=False, verbose=True)])

    assert quiet.run.progress.display == "off"
    assert (verbose.run.progress.display, verbose.run.progress.shards) == ("auto", True)


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

    assert {"input", "normalize", "langid", "clean", "dedup_exact", "select", "write", "run"} <= set(
        schema["properties"]
    )
    langid = schema["$defs"]["LangidParams"]["properties"]
    assert langid["min_score"]["maximum"] == 1.0
    assert all("description" in field for field in langid.values())


def test_a_dumped_config_loads_back_unchanged(tmp_path):
    blocklist = tmp_path / "blocked.txt"
    blocklist.write_text("example.com\n")
    model = tmp_path / "model.bin"
    model.write_bytes(b"x")
    cfg = load_config(
        overrides=[
            "input.paths=[a]",
            f"url_filter.blocklist_path={blocklist}",
            f"quality.scorers=[{{backend: fasttext, name: dclm, model_path: {model}, label: hq}}]",
        ]
    )

    assert CurationConfig.model_validate(cfg.model_dump(mode="json")) == cfg


def test_editing_a_model_or_blocklist_file_changes_the_cache_key(tmp_path):
    from flows.engine.store import digest
    from tasks.models import FastTextSpec
    from tasks.url_filter import UrlFilterParams

    model, blocklist = tmp_path / "model.bin", tmp_path / "blocked.txt"
    model.write_bytes(b"one")
    blocklist.write_text("example.com\n")
    before = digest(
        FastTextSpec(name="q", model_path=str(model), label="hq"), UrlFilterParams(blocklist_path=str(blocklist))
    )
    model.write_bytes(b"two!")
    blocklist.write_text("example.org\n")

    after = digest(
        FastTextSpec(name="q", model_path=str(model), label="hq"), UrlFilterParams(blocklist_path=str(blocklist))
    )

    assert before != after


def test_input_max_shard_bytes_reaches_the_read_params():
    cfg = load_config(overrides=["input.paths=[a.jsonl]", "input.max_shard_bytes=1000"])

    assert cfg.input.read_params().max_shard_bytes == 1000
