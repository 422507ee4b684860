"""The bad-input battery: every mistake gets one line naming the problem and what was expected.

Library calls raise our own errors (ChainruleError subclasses, which are also ValueError etc.);
the command line prints `chainrule CMD: error: ...` on one line and exits 2 for a usage error,
1 for a failure at run time, with a traceback only under --debug.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import chainrule as cr
from chainrule import nn
from chainrule.data import load, load_image
from chainrule.engine.tensor import Tensor
from chainrule.lessons import circuit
from chainrule.nn import optim
from chainrule.training.config import ADDED_LATER, TrainConfig


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
        lambda: TrainConfig(model="resnet"),
        cr.ConfigError,
        "--model must be one of linear-svm, softmax, two-layer, mlp, got 'resnet'",
    ),
    (
        "unknown optimizer",
        lambda: TrainConfig(optimizer="rmsprop"),
        cr.ConfigError,
        "--optimizer must be one of sgd, momentum, nesterov, adam, got 'rmsprop'",
    ),
    (
        "unknown activation",
        lambda: TrainConfig(activation="swish"),
        cr.ConfigError,
        "--activation must be one of .*, got 'swish'",
    ),
    (
        "unknown loss",
        lambda: TrainConfig(loss="hinge2"),
        cr.ConfigError,
        "--loss must be one of softmax, svm, got 'hinge2'",
    ),
    (
        "unknown augmentation",
        lambda: TrainConfig(augment="rotate"),
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


# --- every train option with bad values, and every field of a run's config.json -------------

BAD_VALUES = {  # option: values that must be refused before anything is written
    "--dataset": ["imagenet", ""],
    "--model": ["resnet", ""],
    "--hidden": ["-1", "0", "1.5", "nan", "inf", "x", "1000000000"],
    "--activation": ["swish", ""],
    "--loss": ["hinge", ""],
    "--optimizer": ["rmsprop", ""],
    "--lr": ["-1", "0", "nan", "inf", "-inf", "1e400", "x", ""],
    "--lr-decay": ["-1", "0", "1.5", "nan", "inf", "x", ""],
    "--reg": ["-1", "nan", "inf", "1e400", "x", ""],
    "--epochs": ["-1", "0", "1.5", "nan", "inf", "x", ""],
    "--batch-size": ["-1", "0", "1.5", "x", "100000", "99999999999999999999"],
    "--seed": ["-1", "1.5", "nan", "x", ""],
    "--val-size": ["-1", "0", "0.0", "1.5", "nan", "inf", "-inf", "x", "100000", ""],
    "--max-train": ["-1", "0", "1.5", "x", "5", "60", ""],
    "--max-test": ["-1", "0", "1.5", "x", ""],
    "--augment": ["rotate", ""],
    "--patience": ["-1", "0", "1.5", "nan", "x", ""],
    "--root": ["", "images"],  # with digits: --root is for image-folder only
    "--data-dir": ["", "data"],  # with digits: nothing to look for
}
CASES = [(flag, value) for flag, values in BAD_VALUES.items() for value in values]
MISMATCHED = [  # options that do not apply together
    ["--model", "softmax", "--hidden", "10"],
    ["--model", "linear-svm", "--activation", "tanh"],
    ["--model", "linear-svm", "--loss", "softmax"],
    ["--model", "two-layer", "--hidden", "10", "10"],
    ["--dataset", "image-folder"],
    ["--dataset", "mnist", "--data-dir", ""],
    ["--resume", "RUN", "--lr", "0.1"],
    ["--resume", "RUN", "--force"],
]


def run_main(args: list[str], capsys) -> tuple[int, list[str]]:
    """main(args) in this process: the exit status and the lines on stderr."""
    from chainrule.app.cli import main

    try:
        code = main(args)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    return code, capsys.readouterr().err.splitlines()


def assert_one_line(lines: list[str], code: int, expected: int) -> None:
    assert code == expected, lines
    assert lines and lines[0].startswith("chainrule train: error: "), lines
    # argparse's errors add where to find help; ours are one line
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].endswith("--help)")), lines
    assert not any("Traceback" in line or "Warning" in line for line in lines)


@pytest.mark.parametrize(("flag", "value"), CASES, ids=[f"{f}={v}" for f, v in CASES])
def test_every_train_option_refuses_bad_values_before_making_a_folder(
    flag, value, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--epochs", "1", "--quiet", flag, value]
    code, lines = run_main(args, capsys)
    expected = 1 if (flag, value) == ("--hidden", "1000000000") else 2  # too large: run time
    assert_one_line(lines, code, expected)
    assert not out.exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args", MISMATCHED, ids=[" ".join(a) for a in MISMATCHED])
def test_options_that_do_not_apply_are_refused(args, tmp_path, capsys):
    out = tmp_path / "run"
    args = [a if a != "RUN" else str(out) for a in args]
    if "--resume" in args:
        out.mkdir()
        (out / "config.json").write_text('{"format": "chainrule-run-1"}')
    code, lines = run_main(["train", *args, "--out", str(out), "--quiet"], capsys)
    assert_one_line(lines, code, 2)
    assert not (out / "model.safetensors").exists() and not (out / "metrics.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "1e300"], "the learning rate (1e+300) is likely too high"),
        (["--reg", "1e300"], "the regularization strength (1e+300) is likely too high"),
        (["--hidden", "300000000"], "the model is too large for this machine"),
        (["--hidden", "10", "99999999999999999999"], "the model is too large for this machine"),
    ],
)
def test_values_that_fail_at_run_time_are_one_line_and_leave_nothing(
    args, message, tmp_path, capsys
):
    out = tmp_path / "run"
    model = ["--model", "mlp"] if len(args) > 2 else []
    code, lines = run_main(["train", *args, *model, "--out", str(out), "--quiet"], capsys)
    assert_one_line(lines, code, 1)
    assert message in lines[0]
    assert not out.exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    from chainrule.app.cli import main

    out = tmp_path_factory.mktemp("config") / "run"
    assert main(["train", "--out", str(out), "--epochs", "2", "--hidden", "16", "--quiet"]) == 0
    return out


def wrong_type(value):
    """A JSON value of another type than ``value``'s."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return 5
    if isinstance(value, list):
        return "[100]"
    return []  # for null


def config_cases():
    config = TrainConfig().to_json()
    cases = []
    for name, value in config.items():
        cases.append((f"{name} missing", name, None))
        cases.append((f"{name} of the wrong type", name, wrong_type(value)))
    cases += [
        ("an unknown setting", "learning_rate", 0.1),
        ("NaN", "lr", float("nan")),
        ("a negative seed", "seed", -1),
        ("true for an integer", "epochs", True),
        ("a hidden size of 0", "hidden", [0]),
        ("an unknown model", "model", "resnet"),
    ]
    return cases


CONFIG_CASES = config_cases()


@pytest.mark.parametrize("command", ["evaluate", "resume"])
@pytest.mark.parametrize(("what", "name", "value"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_a_bad_config_json_is_one_line(command, what, name, value, finished_run, tmp_path, capsys):
    import json
    import shutil

    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    config = json.loads((run / "config.json").read_text())
    if value is None:
        del config[name]
    else:
        config[name] = value
    (run / "config.json").write_text(json.dumps(config))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lock"}
    args = ["evaluate", str(run)] if command == "evaluate" else ["train", "--resume", str(run)]
    code, lines = run_main(args, capsys)
    if name in ("format", *ADDED_LATER) and value is None:  # an older run's
        assert code == 0, lines
    else:
        assert code == 1, lines
        assert len(lines) == 1 and f"{run / 'config.json'}" in lines[0], lines
        assert "Traceback" not in lines[0]
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lock"}
    assert after == before  # nothing changed


@pytest.mark.parametrize("command", ["evaluate", "resume"])
@pytest.mark.parametrize(
    "content", [b"", b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'"settings"', b'{"format": "v9"}']
)
def test_a_corrupt_config_json_is_one_line(command, content, finished_run, tmp_path, capsys):
    import shutil

    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    (run / "config.json").write_bytes(content)
    args = ["evaluate", str(run)] if command == "evaluate" else ["train", "--resume", str(run)]
    code, lines = run_main(args, capsys)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"chainrule {args[0]}: error: {run / 'config.json'}")


@pytest.mark.parametrize(
    ("name", "value"), [("hidden", [20]), ("optimizer", "adam"), ("model", "softmax")]
)
def test_settings_changed_under_a_checkpoint_are_one_line(
    name, value, finished_run, tmp_path, capsys
):
    import json
    import shutil

    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    config = json.loads((run / "config.json").read_text())
    config[name] = value
    (run / "config.json").write_text(json.dumps(config))
    code, lines = run_main(["train", "--resume", str(run), "--epochs", "3"], capsys)
    assert code == 1 and len(lines) == 1, lines
    assert f"the checkpoint {run / 'checkpoint.safetensors'}" in lines[0]
    assert lines[0].endswith("were the run's settings changed?)")


@pytest.mark.parametrize("damage", ["truncated", "foreign", "no history"])
def test_a_damaged_checkpoint_is_one_line(damage, finished_run, tmp_path, capsys):
    import shutil

    from safetensors.numpy import save_file

    from chainrule.data import files

    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    checkpoint = run / "checkpoint.safetensors"
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:-100])
    elif damage == "foreign":
        save_file({"w": np.zeros(3, np.float32)}, checkpoint)
    else:
        arrays, meta = files.load_arrays(checkpoint)
        del meta["history"]
        files.save_arrays(checkpoint, arrays, meta)
    code, lines = run_main(["train", "--resume", str(run), "--epochs", "3"], capsys)
    assert code == 1 and len(lines) == 1, lines
    assert str(checkpoint) in lines[0] and "Traceback" not in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--model", "softmax", "--hidden", "20"],
        ["train", "--model", "linear-svm", "--activation", "tanh"],
        ["gradcheck", "--model", "softmax", "--hidden", "5"],
        ["graph", "--model", "linear-svm", "--hidden", "5"],
        ["graph", "--model", "softmax", "--activation", "tanh"],
        ["sweep", "--dataset", "digits", "--model", "softmax", "--hidden", "32,64"],
    ],
    ids=lambda a: " ".join(a[:1] + a[-2:]),
)
def test_hidden_layer_options_with_a_linear_model_are_refused_by_every_command(args, capsys):
    """--hidden and --activation name a hidden layer, which a linear model lacks: every
    command that takes them refuses them in one line (exit status 2), none ignores them."""
    from chainrule.app.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not apply to --model" in err[0], err
