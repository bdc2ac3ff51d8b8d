"""The run configuration: defaults, TOML round trip, unknown keys, types and ranges."""

from __future__ import annotations

import tomllib

import pytest

from neuronlab.config import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    load_config,
    save_config,
    to_toml,
)


def test_defaults_describe_the_default_run() -> None:
    cfg = RunConfig()
    assert cfg.data.source == "digits"
    assert cfg.data.test_size == 0.25
    assert cfg.model.hidden == [256]
    assert (cfg.model.activation, cfg.model.init) == ("relu", "he")
    assert cfg.optim.optimizer == "adam"
    assert cfg.data.preprocess == "standardize"
    assert cfg.train.seed == 0
    # Mutable defaults are per instance, not shared between configs.
    other = RunConfig()
    other.model.hidden.append(7)
    assert cfg.model.hidden == [256]


def test_toml_round_trip_preserves_every_value(tmp_path) -> None:
    cfg = RunConfig.from_dict(
        {
            "data": {"source": 'my "quoted" dir\\x.npz', "components": 10, "preprocess": "pca"},
            "model": {"hidden": [100, 50], "batchnorm": True, "dropout": 0.5},
            "optim": {"lr": 1e-5, "schedule": "step", "clip_norm": 5.0},
            "regularization": {"l2": 1e-4, "max_norm": 3.0},
            "train": {"epochs": 3, "batch_size": 16, "seed": 42},
        }
    )
    path = tmp_path / "config.toml"
    save_config(cfg, path)
    text = path.read_text()
    # The file is real TOML (read by the standard library parser, not only by us).
    assert tomllib.loads(text)["model"]["hidden"] == [100, 50]
    assert load_config(path) == cfg


def test_none_values_are_omitted_and_read_back_as_defaults(tmp_path) -> None:
    cfg = RunConfig()
    assert cfg.regularization.max_norm is None
    text = cfg.to_toml()
    assert "max_norm" not in text and "clip_norm" not in text and "components" not in text
    path = tmp_path / "c.toml"
    save_config(cfg, path)
    assert load_config(path) == cfg


def test_partial_file_keeps_the_other_defaults(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[optim]\nlr = 1\n[model]\nhidden = [32, 16]\n")
    cfg = load_config(path)
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)  # an int is a valid float
    assert cfg.model.hidden == [32, 16]
    assert cfg.optim.optimizer == "adam" and cfg.train == RunConfig().train


def test_unknown_key_lists_the_valid_keys_and_suggests(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[optim]\nlrr = 0.1\n")
    with pytest.raises(ValueError) as err:
        load_config(path)
    msg = str(err.value)
    assert "'lrr'" in msg and "[optim]" in msg and str(path) in msg
    assert "did you mean 'lr'" in msg
    for key in ("optimizer", "lr", "schedule", "decay_factor", "clip_norm"):
        assert key in msg


def test_unknown_section_lists_the_valid_sections() -> None:
    with pytest.raises(
        ValueError, match="valid sections: data, model, optim, regularization, train"
    ):
        RunConfig.from_dict({"optimizer": {"lr": 0.1}})
    # A key written at top level points to the section it belongs in.
    with pytest.raises(ValueError, match=r"'epochs' belongs in \[train\]"):
        RunConfig.from_dict({"epochs": 5})


@pytest.mark.parametrize(
    ("d", "exc", "match"),
    [
        ({"optim": {"lr": 0}}, ValueError, r"optim.lr must be > 0, got 0"),
        ({"optim": {"lr": "fast"}}, TypeError, r"optim.lr must be a number, got 'fast'"),
        ({"train": {"epochs": 2.5}}, TypeError, r"train.epochs must be an integer, got 2.5"),
        ({"train": {"epochs": 0}}, ValueError, r"train.epochs must be > 0, got 0"),
        ({"train": {"seed": -1}}, ValueError, r"train.seed must be an integer in \[0, 2\*\*63\), got -1"),
        ({"model": {"hidden": [64, 0]}}, ValueError, r"model.hidden\[1\] must be > 0, got 0"),
        ({"model": {"hidden": 64}}, TypeError, r"model.hidden must be a list, got 64"),
        ({"model": {"batchnorm": 1}}, TypeError, r"model.batchnorm must be true or false"),
        ({"model": {"dropout": 1.0}}, ValueError, r"model.dropout must be < 1"),
        ({"data": {"test_size": 1.5}}, ValueError, r"data.test_size must be < 1"),
        ({"regularization": {"l2": -1e-3}}, ValueError, r"regularization.l2 must be >= 0"),
        ({"regularization": {"max_norm": 0.0}}, ValueError, r"regularization.max_norm must be > 0"),
        ({"optim": {"decay_factor": 2.0}}, ValueError, r"optim.decay_factor must be <= 1"),
        ({"data": "digits"}, TypeError, r"\[data\] in config must be a table"),
    ],
)
def test_bad_values_name_the_key_and_value(d, exc, match) -> None:
    with pytest.raises(exc, match=match):
        RunConfig.from_dict(d)


def test_with_overrides_replaces_only_given_values() -> None:
    base = RunConfig.from_dict({"optim": {"lr": 0.01}, "train": {"epochs": 7}})
    cfg = base.with_overrides({"optim": {"optimizer": "sgd"}, "model": {"hidden": [8]}})
    assert (cfg.optim.optimizer, cfg.optim.lr, cfg.train.epochs) == ("sgd", 0.01, 7)
    assert cfg.model.hidden == [8]
    assert base.optim.optimizer == "adam"  # the original is untouched
    with pytest.raises(ValueError, match="optim.lr must be > 0"):
        base.with_overrides({"optim": {"lr": -1.0}})


def test_load_config_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim\nlr = 0.1\n")
    with pytest.raises(ValueError, match="is not valid TOML"):
        load_config(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError):
        load_config(binary)


def test_to_toml_writes_scalars_and_refuses_what_toml_cannot_hold() -> None:
    text = to_toml({"a": {"b": True, "i": 3, "f": 0.5, "s": "x\ny", "l": [1, 2], "n": None}})
    assert tomllib.loads(text) == {"a": {"b": True, "i": 3, "f": 0.5, "s": "x\ny", "l": [1, 2]}}
    with pytest.raises(ValueError, match="a.f must be finite"):
        to_toml({"a": {"f": float("nan")}})
    with pytest.raises(TypeError, match="a.o cannot be written as TOML"):
        to_toml({"a": {"o": object()}})


def test_section_validate_is_callable_directly() -> None:
    DataConfig().validate()
    ModelConfig(hidden=[]).validate()  # no hidden layer: a linear softmax classifier
    with pytest.raises(ValueError, match="optim.decay_epochs must be > 0"):
        OptimConfig(decay_epochs=0).validate()
