"""The one table of names and settings (training.config): what it holds, and that the command
line, TrainConfig and fit all check against it."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.app import predict, runfolders
from chainrule.app.cli import build_parser
from chainrule.data import DATASETS
from chainrule.lessons import compare
from chainrule.nn.losses import LOSSES
from chainrule.nn.optim import OPTIMIZERS
from chainrule.training.augment import AUGMENTATIONS
from chainrule.training.config import (
    LINEAR_MODELS,
    MODELS,
    SETTINGS,
    TrainConfig,
    check_setting,
    model_config,
)
from chainrule.training.loop import fit


def test_the_name_settings_take_their_names_from_what_they_name():
    assert SETTINGS["activation"].choices == tuple(nn.ACTIVATIONS)
    assert SETTINGS["loss"].choices == tuple(LOSSES) == ("softmax", "svm")
    assert SETTINGS["optimizer"].choices == OPTIMIZERS
    assert SETTINGS["augment"].choices == AUGMENTATIONS
    assert SETTINGS["dataset"].choices == DATASETS
    assert SETTINGS["model"].choices == MODELS
    assert set(LINEAR_MODELS) < set(MODELS)
    assert set(compare.MODELS) < set(MODELS) and "mlp" not in compare.MODELS
    # a setting that is not a name has no choices
    assert SETTINGS["lr"].choices is None and SETTINGS["hidden"].choices is None


def parser_choices() -> dict[tuple[str, str], tuple]:
    """(command, option) -> its choices, for every option of every command that has some."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        (command, action.dest): tuple(action.choices)
        for command, p in sub.choices.items()
        for action in p._actions
        if action.choices is not None
    }


def test_every_choice_on_the_command_line_comes_from_a_table():
    tables = {s.choices for s in SETTINGS.values() if s.choices is not None}
    tables |= {runfolders.RUN_SORTS, predict.INVERT_CHOICES}
    found = parser_choices()
    assert found, "no option with choices"
    for (command, option), choices in found.items():
        assert choices in tables, f"{command} --{option}: {choices} is typed, not from a table"
    for command in ("train", "gradcheck", "graph"):
        for name in ("model", "activation", "loss"):
            assert found[(command, name)] == SETTINGS[name].choices
    assert found[("train", "optimizer")] == SETTINGS["optimizer"].choices
    assert found[("compare", "dataset")] == SETTINGS["dataset"].choices


@pytest.mark.parametrize("name", MODELS)
def test_model_config_builds_the_model_it_names(name):
    config = TrainConfig(model=name, hidden=[7, 5] if name == "mlp" else [7])
    built = nn.build_model(config.model_config(12, 4), config.weights_rng())
    assert built.config() == config.model_config(12, 4)
    assert (built.input_size, built.num_classes) == (12, 4)
    expected = {"linear-svm": nn.LinearClassifier, "softmax": nn.LinearClassifier}
    assert type(built) is expected.get(name, nn.TwoLayerNet if name == "two-layer" else nn.MLP)
    # the initial weights come from [seed, 1], as a run draws them
    again = nn.build_model(config.model_config(12, 4), np.random.default_rng([config.seed, 1]))
    state, again_state = built.state_dict(), again.state_dict()
    assert all(np.array_equal(state[k], again_state[k]) for k in state)


def test_model_config_refuses_an_unknown_name():
    with pytest.raises(cr.ConfigError, match="unknown model 'resnet' \\(choose from linear-svm"):
        model_config("resnet", 4, 2)


def test_check_setting_names_the_setting_and_its_rule():
    check_setting("epochs", 3)
    check_setting("patience", None)  # optional
    with pytest.raises(cr.ConfigError, match=r"^--epochs must be a positive integer, got 0$"):
        check_setting("epochs", 0, "--epochs")
    with pytest.raises(cr.ConfigError, match=r"^reg must be >= 0, got -1$"):
        check_setting("reg", -1, expected=">= 0")


def blobs() -> SimpleNamespace:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = rng.integers(0, 2, 40)
    return SimpleNamespace(X_train=X[:30], y_train=y[:30], X_val=X[30:], y_val=y[30:])


# fit's numeric arguments: values both fit and TrainConfig refuse, and values both take
FIT_ARGUMENTS = {
    "epochs": ([0, -1, 1.5, True, None, "3"], [1, np.int64(2)]),
    "batch_size": ([0, 2.0, False, None], [1, 8]),
    "reg": (
        [-1e-3, float("nan"), float("inf"), True, "0.1", None],
        [0, 0.0, 1e-3, np.float32(0.5)],
    ),
    "patience": ([0, -2, 1.0, True], [None, 1, 3]),
}


@pytest.mark.parametrize("name", FIT_ARGUMENTS)
def test_fit_and_train_config_check_one_rule(name):
    """fit's epochs, batch_size, reg and patience follow the rules of SETTINGS, as a run's
    settings do: what one refuses the other refuses, what one takes the other takes."""
    bad, good = FIT_ARGUMENTS[name]
    for value in bad:
        with pytest.raises(cr.ConfigError):
            TrainConfig(**{name: value})
        model = nn.LinearClassifier(3, 2, np.random.default_rng(0))
        with pytest.raises(cr.ConfigError):
            fit(model, blobs(), progress=False, **{name: value})
    for value in good:
        TrainConfig(**{name: value})
        model = nn.LinearClassifier(3, 2, np.random.default_rng(0))
        settings = {"epochs": 1, "batch_size": 8, name: value}
        fit(model, blobs(), progress=False, **settings)
