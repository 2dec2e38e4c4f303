"""The `winnow` command line: clear errors before any work, inspect on a finished run."""

import json

from typer.testing import CliRunner

from flows.cli.app import app

runner = CliRunner()


def test_missing_input_is_a_clear_error_before_any_work(tmp_path):
    result = runner.invoke(
        app, ["run", "--input", str(tmp_path / "nothing-*.jsonl"), "--output", str(tmp_path / "out")]
    )

    assert result.exit_code == 2
    assert "matches no file" in result.output
    assert not (tmp_path / "out").exists()


def test_unreadable_config_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["run", "--input", "x.jsonl", "--config", str(tmp_path / "none.yaml")])

    assert result.exit_code == 2
    assert "cannot read config" in result.output


def test_invalid_override_names_the_field(tmp_path):
    result = runner.invoke(app, ["run", "--input", "x.jsonl", "--set", "clean.gopher_quality.min_doc_words=many"])

    assert result.exit_code == 2
    assert "clean.gopher_quality.min_doc_words" in result.output


def test_inspect_without_a_run_says_what_to_do(tmp_path):
    result = runner.invoke(app, ["inspect", str(tmp_path), "--stage", "clean"])

    assert result.exit_code == 2
    assert "no run summary" in result.output


def test_schema_prints_the_config_json_schema():
    result = runner.invoke(app, ["schema"])

    assert result.exit_code == 0
    assert '"CurationConfig"' in result.output or '"title": "CurationConfig"' in result.output


def test_from_run_names_the_runs_it_knows(tmp_path):
    result = runner.invoke(app, ["run", "--from-run", "abc", "--output", str(tmp_path)])

    assert result.exit_code == 2
    assert "no run 'abc'" in result.output


def test_from_run_takes_the_runs_config_but_not_how_it_showed_progress(tmp_path):
    """Regression: a rerun of a `--quiet` run was quiet too, whatever its own command said."""
    from flows.cli.runs import config_of_run

    config = {"input": {"paths": ["a.jsonl"]}, "run": {"shard_retries": 3, "progress": {"display": "off"}}}
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "abc123.json").write_text(json.dumps({"run_id": "abc123", "config": config}))

    assert config_of_run("abc", str(tmp_path)) == {"input": {"paths": ["a.jsonl"]}, "run": {"shard_retries": 3}}


def test_calibrate_names_its_stages_and_what_decontam_calibration_needs(tmp_path):
    (tmp_path / "pages.jsonl").write_text('{"text": "a page"}\n')
    common = ["calibrate", "--input", str(tmp_path / "pages.jsonl"), "--output", str(tmp_path / "out")]
    common += ["--to", str(tmp_path / "cal")]

    unknown = runner.invoke(app, [*common, "--stage", "dedup"])
    no_benchmark = runner.invoke(app, [*common, "--stage", "decontam"])

    assert unknown.exit_code == 2 and "--stage must be clean or decontam" in unknown.output
    assert no_benchmark.exit_code == 2 and "set decontam.benchmarks" in no_benchmark.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "cal").exists()
