"""Experiment config: YAML + overrides into typed dataclasses; errors name the dotted field."""

from __future__ import annotations

from pathlib import Path

import pytest

from reward_search.config import ExperimentConfig, dump_config, load_config
from reward_search.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_defaults_live_in_one_place():
    config = load_config()
    assert config == ExperimentConfig()
    assert config.model.spec == "embedded"
    assert config.data.source == "sample"
    assert config.eval.max_new_tokens == 256


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_validate(path):
    config = load_config(path)
    assert isinstance(config, ExperimentConfig)


def test_yaml_and_overrides(tmp_path):
    path = write(tmp_path, "eval:\n  limit: 5\n  modes: [strict]\nmodel:\n  spec: random:tiny\n")
    config = load_config(path, ["eval.limit=7", "eval.batch_size=4", "data.dev_size=null", "run.name=x y"])
    assert config.eval.limit == 7
    assert config.eval.batch_size == 4
    assert config.eval.modes == ("strict",)
    assert config.model.spec == "random:tiny"
    assert config.data.dev_size is None
    assert config.run.name == "x y"


def test_dump_round_trips(tmp_path):
    config = load_config(None, ["eval.limit=3", "eval.modes=[strict, math-verify]"])
    path = write(tmp_path, dump_config(config))
    assert load_config(path) == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["eval.bach_size=3"], r"eval\.bach_size: unknown key; did you mean 'eval\.batch_size'"),
        (["evals.limit=3"], r"evals: unknown key; did you mean 'eval'"),
        (["eval.batch_size=many"], r"eval\.batch_size: expected an integer, got 'many'"),
        (["eval.batch_size=0"], r"eval\.batch_size: must be at least 1, got 0"),
        (["eval.batch_size=true"], r"eval\.batch_size: expected an integer"),
        (["eval.split=validation"], r"eval\.split: 'validation' is not one of 'train', 'dev', 'test'"),
        (["eval.modes=[strict, fuzzy]"], r"eval\.modes: 'fuzzy' is not one of"),
        (["eval.modes=strict"], r"eval\.modes: expected a list of"),
        (["data.source=s3"], r"data\.source: 's3' is not one of 'sample', 'local', 'hub'"),
        (["model=embedded"], r"model: expected a mapping of fields"),
        (["eval.limit"], r"expected KEY=VALUE"),
        (["eval.limit.x=1"], r"eval\.limit: expected int or null"),
    ],
)
def test_bad_values_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_file_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.yaml: experiment file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = write(tmp_path, "eval:\n  limit: 3\n  modes: [strict\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: line \d+"):
        load_config(bad)
    listed = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_config(listed)
    typo = write(tmp_path, "eval:\n  max_new_token: 3\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: eval\.max_new_token: unknown key"):
        load_config(typo)


def test_empty_file_is_an_error(tmp_path):  # it validated silently to demo-sized defaults (issue 27)
    with pytest.raises(ConfigError, match=r"exp\.yaml: the experiment file is empty"):
        load_config(write(tmp_path, ""))
