"""The bad-input battery: every mistake gets one line naming the problem and what was expected.

Library calls raise our own errors (ChainruleError subclasses, which are also ValueError etc.);
the command line prints `chainrule CMD: error: ...` on one line and exits 2 for a usage error,
1 for a failure at run time, with a traceback only under --debug.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import chainrule as cr
from chainrule import circuit, experiment, nn, optim
from chainrule.data import load, load_image
from chainrule.tensor import Tensor


def blobs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=100)
    return SimpleNamespace(X_train=X[:80], y_train=y[:80], X_val=X[80:], y_val=y[80:])


def fit_with(change=None, **kwargs):
    data = blobs()
    if change:
        change(data)
    model = nn.LinearClassifier(4, 3, np.random.default_rng(0))
    cr.fit(model, data, progress=False, epochs=kwargs.pop("epochs", 1), **kwargs)


def set_(attr, value):
    return lambda d: setattr(d, attr, value(d) if callable(value) else value)


def poke(attr, index, value):
    return lambda d: getattr(d, attr).__setitem__(index, value)


LIBRARY = [
    (
        "wrong feature count",
        lambda: fit_with(set_("X_train", lambda d: d.X_train[:, :3])),
        cr.ShapeError,
        "rows have 3 features but the model takes 4",
    ),
    (
        "1-D data",
        lambda: fit_with(set_("X_train", lambda d: d.X_train[0])),
        cr.ShapeError,
        "must be a 2-D array",
    ),
    (
        "integer pixels",
        lambda: fit_with(set_("X_train", lambda d: d.X_train.astype(int))),
        cr.DataError,
        "must be floating point",
    ),
    (
        "float64 data, float32 model",
        lambda: fit_with(set_("X_train", lambda d: d.X_train.astype(float))),
        cr.DataError,
        "float64 but the model is float32",
    ),
    (
        "NaN in training data",
        lambda: fit_with(poke("X_train", (3, 1), np.nan)),
        cr.DataError,
        "NaN or infinite",
    ),
    (
        "inf in validation data",
        lambda: fit_with(poke("X_val", (0, 0), np.inf)),
        cr.DataError,
        "validation data: X contains NaN or infinite",
    ),
    (
        "label too large",
        lambda: fit_with(poke("y_train", 0, 3)),
        cr.DataError,
        r"labels must lie in \[0, 2\]",
    ),
    (
        "negative label",
        lambda: fit_with(poke("y_val", 0, -1)),
        cr.DataError,
        r"labels must lie in \[0, 2\]",
    ),
    (
        "float labels",
        lambda: fit_with(set_("y_train", lambda d: d.y_train.astype(float))),
        cr.DataError,
        "labels must be integers",
    ),
    (
        "too few labels",
        lambda: fit_with(set_("y_train", lambda d: d.y_train[:10])),
        cr.ShapeError,
        "expected 80 labels",
    ),
    (
        "empty dataset",
        lambda: fit_with(set_("X_train", lambda d: d.X_train[:0])),
        cr.DataError,
        "the data set is empty",
    ),
    (
        "batch larger than the data",
        lambda: fit_with(batch_size=81),
        cr.ConfigError,
        "batch size 81 is larger than the 80 training examples",
    ),
    ("zero batch size", lambda: fit_with(batch_size=0), cr.ConfigError, "batch size must be"),
    ("zero epochs", lambda: fit_with(epochs=0), cr.ConfigError, "epochs must be"),
    ("negative reg", lambda: fit_with(reg=-1e-3), cr.ConfigError, "regularization strength"),
    ("NaN reg", lambda: fit_with(reg=float("nan")), cr.ConfigError, "regularization strength"),
    (
        "zero learning rate",
        lambda: optim.SGD([Tensor(1.0, requires_grad=True)], 0.0),
        cr.ConfigError,
        "learning rate must be a positive number",
    ),
    (
        "negative learning rate",
        lambda: optim.Adam([Tensor(1.0, requires_grad=True)], -1e-3),
        cr.ConfigError,
        "learning rate must be a positive number",
    ),
    (
        "NaN learning rate",
        lambda: optim.Momentum([Tensor(1.0, requires_grad=True)], float("nan")),
        cr.ConfigError,
        "learning rate must be a positive number",
    ),
    ("unknown dataset", lambda: load("imagenet"), cr.ConfigError, "unknown dataset 'imagenet'"),
    (
        "unknown model",
        lambda: experiment.TrainConfig(model="resnet"),
        cr.ConfigError,
        "--model must be one of linear-svm, softmax, two-layer, mlp, got 'resnet'",
    ),
    (
        "unknown optimizer",
        lambda: experiment.TrainConfig(optimizer="rmsprop"),
        cr.ConfigError,
        "--optimizer must be one of sgd, momentum, nesterov, adam, got 'rmsprop'",
    ),
    (
        "unknown activation",
        lambda: experiment.TrainConfig(activation="swish"),
        cr.ConfigError,
        "--activation must be one of .*, got 'swish'",
    ),
    (
        "unknown loss",
        lambda: experiment.TrainConfig(loss="hinge2"),
        cr.ConfigError,
        "--loss must be one of softmax, svm, got 'hinge2'",
    ),
    (
        "unknown augmentation",
        lambda: experiment.TrainConfig(augment="rotate"),
        cr.ConfigError,
        "--augment must be one of none, flip, got 'rotate'",
    ),
    (
        "predict on the wrong size",
        lambda: nn.TwoLayerNet(4, 5, 3, np.random.default_rng(0)).predict(
            np.zeros((2, 6), np.float32)
        ),
        cr.ShapeError,
        "takes rows of 4 features",
    ),
    (
        "loss labels out of range",
        lambda: cr.losses.softmax_loss(Tensor(np.zeros((2, 3))), [0, 5]),
        cr.DataError,
        r"labels must lie in \[0, 2\] for 3 classes",
    ),
    (
        "matmul shapes",
        lambda: Tensor(np.ones((2, 3))) @ np.ones((4, 5)),
        cr.ShapeError,
        r"matmul: shapes \(2, 3\) and \(4, 5\) do not fit",
    ),
    (
        "broadcast shapes",
        lambda: Tensor(np.ones((2, 3))) * np.ones((2, 4)),
        cr.ShapeError,
        "mul: shapes",
    ),
    (
        "backward of a vector",
        lambda: (Tensor(np.ones(3), requires_grad=True) * 2).backward(),
        cr.ShapeError,
        "needs a scalar",
    ),
    (
        "missing data folder",
        lambda: load("mnist", "/nonexistent/folder", download=False),
        cr.DataNotFoundError,
        "/nonexistent/folder",
    ),
    (
        "evaluate nothing",
        lambda: cr.evaluate(
            nn.LinearClassifier(4, 3, np.random.default_rng(0)),
            np.zeros((0, 4), np.float32),
            np.zeros(0, int),
        ),
        cr.DataError,
        "no examples",
    ),
    ("bad expression", lambda: circuit.run("x.y", {"x": 1}), cr.ExpressionError, "not allowed"),
]


@pytest.mark.parametrize(("what", "call", "error", "message"), LIBRARY, ids=[c[0] for c in LIBRARY])
def test_library_names_the_problem(what, call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_wrong_image_size_for_a_model(tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(path)
    with pytest.raises(cr.ShapeError, match=r"is 10x12 .* expected 8x8"):
        load_image(path, (8, 8))
    path.write_bytes(b"not an image")
    with pytest.raises(cr.DataError, match="cannot decode image"):
        load_image(path, (8, 8))
    with pytest.raises(cr.DataNotFoundError, match="does not exist"):
        load_image(tmp_path / "missing.png", (8, 8))


CLI = [
    (["train", "--dataset", "imagenet"], 2, "invalid choice: 'imagenet'"),
    (["train", "--model", "resnet"], 2, "invalid choice: 'resnet'"),
    (["train", "--optimizer", "rmsprop"], 2, "invalid choice: 'rmsprop'"),
    (["train", "--activation", "swish"], 2, "invalid choice: 'swish'"),
    (["train", "--epochs", "three"], 2, "invalid int value: 'three'"),
    (["train", "--lr", "0"], 2, "--lr must be a positive number"),
    (["train", "--reg", "-1"], 2, "--reg must be a number >= 0"),
    (["train", "--batch-size", "100000"], 2, "batch size 100000 is larger than"),
    (["train", "--epochs", "0"], 2, "--epochs must be a positive integer"),
    (["train", "--hidden", "0"], 2, "--hidden must be a list of positive integers"),
    (["train", "--dataset", "image-folder", "--root", "/nonexistent"], 1, "does not exist"),
    (["evaluate", "/nonexistent"], 1, "not a run folder"),
    (["predict", "/nonexistent", "x.png"], 1, "no such file"),
    (["circuit", "x+", "x=1"], 2, "cannot parse"),
    (["circuit", "x+y", "x=1"], 2, "no value for y"),
]


@pytest.mark.parametrize(("args", "code", "message"), CLI, ids=[" ".join(c[0]) for c in CLI])
def test_command_line_names_the_problem(args, code, message, tmp_path):
    if args[0] == "train":
        args = [*args, "--out", str(tmp_path / "run"), "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert message in lines[0]
    assert lines[0].startswith(f"chainrule {args[0]}: error: ")
    assert "Traceback" not in done.stderr and len(lines) <= 2
    assert not (tmp_path / "run" / "model.safetensors").exists()
