"""End to end: `chainrule train` on digits, the run folder, evaluate, predict, gradcheck, errors."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chainrule import runs
from chainrule.cli import main

ROOT = Path(__file__).resolve().parents[1]


def chainrule(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", *args], capture_output=True, text=True, timeout=600
    )
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}: {done.stderr}")
    return done


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("runs") / "digits-two-layer"
    done = chainrule("train", "--out", str(out), "--json")
    return out, json.loads(done.stdout)


def test_default_train_writes_a_complete_run_folder(digits_run):
    out, summary = digits_run
    for name in (
        "config.json",
        "metrics.csv",
        "model.safetensors",
        "checkpoint.safetensors",
        "curves.png",
        "weights.png",
        "confusion.png",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    assert summary["run_dir"] == str(out)
    assert summary["model"] == "two-layer" and summary["dataset"] == "digits"
    assert summary["test_accuracy"] >= 0.97
    assert 0 < summary["seconds"] < 60
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "two-layer" and config["hidden"] == [100]
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == config["epochs"]
    assert {"epoch", "loss", "train_accuracy", "val_accuracy", "learning_rate", "seconds"} <= set(
        rows[0]
    )
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    for png in summary["figures"]:
        assert Image.open(png).size[0] > 300


def test_saved_model_predicts_exactly_what_it_predicted_before(digits_run):
    from chainrule import experiment

    out, summary = digits_run
    config = experiment.TrainConfig.from_json(json.loads((out / "config.json").read_text()))
    data = experiment.load_data(config)
    saved = runs.load_model(out / "model.safetensors")
    assert saved.classes == [str(i) for i in range(10)] and saved.image_shape == (8, 8)
    pred = saved.model.predict(data.X_test)
    assert np.mean(pred == data.y_test) == summary["test_accuracy"]
    # and a model rebuilt from the file gives the same scores, bit for bit
    again = runs.load_model(out / "model.safetensors")
    np.testing.assert_array_equal(again.model.scores(data.X_test), saved.model.scores(data.X_test))


def test_evaluate_rescores_the_saved_model(digits_run):
    out, summary = digits_run
    result = json.loads(chainrule("evaluate", str(out), "--json").stdout)
    assert result["test_accuracy"] == summary["test_accuracy"]
    assert "test accuracy" in chainrule("evaluate", str(out)).stdout


def test_predict_classifies_image_files(digits_run, tmp_path):
    from sklearn.datasets import load_digits

    out, _ = digits_run
    digits = load_digits()
    paths = []
    for i in range(20):
        path = tmp_path / f"digit{i}.png"
        pixels = np.round(digits.images[i] * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(path)
        paths.append(str(path))
    results = json.loads(chainrule("predict", str(out), *paths, "--json").stdout)
    predicted = [int(r["class"]) for r in results]
    assert np.mean(np.array(predicted) == digits.target[:20]) >= 0.9
    assert all(0 < r["probability"] <= 1 for r in results)
    text = chainrule("predict", str(out), paths[0]).stdout
    assert text.startswith(paths[0] + ": ")


def test_predict_resizes_an_image_of_another_size_with_a_note(digits_run, tmp_path):
    out, _ = digits_run
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((28, 28), np.uint8), mode="L").save(path)
    done = chainrule("predict", str(out), str(path))
    assert done.stdout.startswith(f"{path}: ")
    assert done.stderr == f"chainrule predict: note: {path}: resized from 28x28 to 8x8 (HxW)\n"


def test_gradcheck_command_passes_for_every_model():
    for model in ("linear-svm", "softmax", "two-layer", "mlp"):
        done = chainrule("gradcheck", "--model", model, "--json")
        report = json.loads(done.stdout)
        assert report["ok"] and report["max_rel_error"] < 1e-7
        assert report["forward_passes"] == 2 * sum(p["checked"] for p in report["parameters"])
    table = chainrule("gradcheck", "--model", "two-layer").stdout
    assert re.search(r"W1\s+\(10, 64\)\s+640", table) and "overall: pass" in table


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["train", "--dataset", "imagenet"], 2, "invalid choice: 'imagenet'"),
        (["train", "--model", "resnet"], 2, "invalid choice: 'resnet'"),
        (["train", "--optimizer", "rmsprop"], 2, "invalid choice: 'rmsprop'"),
        (["train", "--activation", "swish"], 2, "invalid choice: 'swish'"),
        (["train", "--lr", "-1"], 2, "learning rate must be a positive number"),
        (["train", "--reg", "-0.5"], 2, "regularization strength must be >= 0"),
        (["train", "--batch-size", "5000"], 2, "batch size 5000 is larger than"),
        (["train", "--lr-decay", "fast"], 2, "--lr-decay takes a factor"),
        (["train", "--model", "two-layer", "--hidden", "10", "20"], 2, "use --model mlp"),
        (["train", "--dataset", "mnist", "--data-dir", "/nonexistent"], 1, "does not exist"),
        (["evaluate", "/nonexistent/run"], 1, "not a run folder"),
    ],
)
def test_bad_options_end_with_one_clear_line(args, code, message, tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CHAINRULE_MIRROR", "http://127.0.0.1:9/")  # nothing listens: no download
    if args[0] == "train":
        args = [*args, "--out", str(tmp_path / "run"), "--quiet", "--epochs", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2  # argparse adds a usage line


def test_a_run_folder_is_not_overwritten(digits_run):
    out, _ = digits_run
    before = (out / "model.safetensors").read_bytes()
    done = chainrule("train", "--out", str(out), "--quiet", check=False)
    assert done.returncode == 2 and "already holds a run" in done.stderr
    assert (out / "model.safetensors").read_bytes() == before


def test_readme_api_example_runs_as_written():
    text = (ROOT / "README.md").read_text()
    match = re.search(r"## The API.*?```python\n(.*?)```", text, re.S)
    assert match, "README has no API example"
    done = subprocess.run(
        [sys.executable, "-c", match.group(1)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert 0.9 < float(done.stdout.strip().splitlines()[-1]) <= 1.0


def test_main_returns_exit_codes(capsys):
    assert main(["circuit", "x*y", "x=2", "y=3", "--json"]) == 0
    assert main(["circuit", "x*y", "x=2"]) == 2


def test_resume_refuses_options_it_would_ignore(digits_run):
    out, _ = digits_run
    done = chainrule("train", "--resume", str(out), "--epochs", "99", "--lr", "0.5", check=False)
    assert done.returncode == 2
    assert "drop --lr, --epochs" in done.stderr or "drop --epochs, --lr" in done.stderr


def test_a_failed_first_start_can_be_started_again(tmp_path):
    out = tmp_path / "run"
    bad = chainrule("train", "--out", str(out), "--batch-size", "5000", "--quiet", check=False)
    assert bad.returncode == 2 and (out / "config.json").exists()
    good = chainrule("train", "--out", str(out), "--epochs", "2", "--quiet", "--json")
    assert json.loads(good.stdout)["epochs"] == 2


def test_val_size_takes_a_count(tmp_path):
    done = chainrule(
        "train",
        "--out",
        str(tmp_path / "r"),
        "--val-size",
        "300",
        "--epochs",
        "1",
        "--quiet",
        "--json",
    )
    assert json.loads(done.stdout)["n_val"] == 300


def test_an_unwritable_run_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = chainrule("train", "--out", str(blocker / "run"), "--quiet", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("chainrule train: error: ")
