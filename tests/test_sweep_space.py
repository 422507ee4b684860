"""The sweep's search space: ranges from the command line and from files, their refusals, and the
config each trial trains with."""

from __future__ import annotations

import json

import optuna
import pytest

from chainrule.app.sweep_space import DEFAULTS, parse_range, search_space, trial_config
from chainrule.engine.errors import ConfigError
from chainrule.training.config import TrainConfig


def test_ranges_from_text():
    lr = parse_range("lr", "1e-4:1e-1")
    assert (lr.low, lr.high, lr.choices) == (1e-4, 1e-1, ())
    assert parse_range("reg", "0.01").to_json() == [0.01, 0.01]  # one number fixes it
    assert parse_range("hidden", "64, 128,64").choices == (64, 128)  # duplicates dropped
    assert parse_range("optimizer", "adam").choices == ("adam",)
    assert parse_range("batch_size", [32, 64]).choices == (32, 64)


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("lr", "1e-1:1e-4", "is inverted"),
        ("lr", ":", "not a range"),
        ("reg", "0:1e-2", "above 0"),
        ("reg", "a:b", "must be numbers"),
        ("lr", "1e-3:inf", "finite"),
    ],
)
def test_bad_log_ranges_are_refused_in_one_line(name, text, words):
    with pytest.raises(ConfigError) as e:
        parse_range(name, text)
    assert words in str(e.value)
    assert "\n" not in str(e.value)


# a setting and its text -> what the refusal says
BAD_CHOICES = {
    ("hidden", ""): "is empty",
    ("hidden", "64,,128"): "is empty",
    ("hidden", "64,0"): "not a positive integer",
    ("batch_size", "32,6.5"): "not a positive integer",
    ("optimizer", "adam,rmsprop"): "unknown optimizer 'rmsprop'",
}


def test_bad_choices_are_refused_in_one_line():
    for (name, text), words in BAD_CHOICES.items():
        with pytest.raises(ConfigError, match=words) as e:
            parse_range(name, text)
        assert "\n" not in str(e.value)


def test_inverted_range_suggests_the_fix():
    with pytest.raises(ConfigError, match=r"did you mean --lr 1e-4:1e-1\?"):
        parse_range("lr", "1e-1:1e-4")


def test_space_file_toml_and_json_and_options_win(tmp_path):
    toml = tmp_path / "space.toml"
    toml.write_text("lr = [1e-3, 1e-2]\nhidden = [16, 32]\nbatch-size = [8]\n")
    space = search_space({"hidden": "64"}, toml)
    assert space.to_json() == {
        "lr": [1e-3, 1e-2],
        "reg": [1e-6, 1e-1],  # the default
        "hidden": [64],  # the option wins over the file
        "optimizer": DEFAULTS["optimizer"].split(","),
        "batch_size": [8],
    }
    js = tmp_path / "space.json"
    js.write_text(json.dumps({"optimizer": ["sgd"], "reg": [1e-5, 1e-3]}))
    assert search_space({}, js).to_json()["optimizer"] == ["sgd"]
    toml.write_text("lr = [1e-2, 1e-4]\n")
    with pytest.raises(ConfigError, match="inverted"):
        search_space({}, toml)


# file name -> (its text, what the refusal says)
BAD_FILES = {
    "cut.toml": ("lr = [", "not valid TOML"),
    "cut.json": ("{", "not valid JSON"),
    "list.json": ("[1, 2]", "must hold an object"),
    "unknown.toml": ("momentum = [0.9]", "unknown setting 'momentum'"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_space_files(tmp_path, name):
    text, words = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        search_space({}, path)
    with pytest.raises(ConfigError, match="cannot read it"):
        search_space({}, tmp_path / "missing.toml")


def test_suggest_draws_inside_the_ranges_on_a_log_scale():
    space = search_space({"lr": "1e-4:1e-1", "hidden": "16,32", "optimizer": "adam,sgd"})
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    lrs = []
    for _ in range(200):
        trial = study.ask()
        values = space.suggest(trial, "two-layer")
        assert 1e-4 <= values["lr"] <= 1e-1
        assert values["hidden"] in (16, 32) and values["optimizer"] in ("adam", "sgd")
        study.tell(trial, 0.5)
        lrs.append(values["lr"])
    # log scale: about a third of the draws in each decade
    decade = sum(1e-4 <= lr < 1e-3 for lr in lrs) / len(lrs)
    assert 0.2 < decade < 0.47
    assert study.trials[0].distributions["lr"].log


def test_linear_models_draw_no_hidden_size():
    space = search_space({})
    trial = optuna.create_study().ask()
    assert "hidden" not in space.suggest(trial, "softmax")


def test_trial_config_puts_the_values_in():
    base = TrainConfig(dataset="digits", model="mlp", epochs=3)
    config = trial_config(base, {"lr": 0.01, "hidden": 32, "batch_size": 16}, depth=3)
    assert (config.lr, config.hidden, config.batch_size, config.epochs) == (0.01, [32] * 3, 16, 3)
    two = trial_config(TrainConfig(model="two-layer"), {"hidden": 8})
    assert two.hidden == [8]
