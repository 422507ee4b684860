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

from chainrule.app import runfolders
from chainrule.app.cli import main
from chainrule.data import files
from chainrule.nn import optim
from chainrule.training import checkpoints
from chainrule.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = "checkpoint.safetensors"


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
    from chainrule.app import experiment

    out, summary = digits_run
    config = TrainConfig.from_json(json.loads((out / "config.json").read_text()))
    data = experiment.load_data(config)
    saved = checkpoints.load_model(out / "model.safetensors")
    assert saved.classes == [str(i) for i in range(10)] and saved.image_shape == (8, 8)
    pred = saved.model.predict(data.X_test)
    assert np.mean(pred == data.y_test) == summary["test_accuracy"]
    # and a model rebuilt from the file gives the same scores, bit for bit
    again = checkpoints.load_model(out / "model.safetensors")
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
        (["train", "--lr", "-1"], 2, "--lr must be a positive number, got -1.0"),
        (["train", "--reg", "-0.5"], 2, "--reg must be a number >= 0"),
        (["train", "--batch-size", "5000"], 2, "batch size 5000 is larger than"),
        (["train", "--lr-decay", "fast"], 2, "--lr-decay must be a factor"),
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


def test_every_python_block_of_the_readme_runs_as_written():
    """The API example above, the engine in five lines, and any block added later."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) >= 2
    for code in blocks:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{code}\n{done.stderr}"


def test_the_readme_gpu_block_runs_as_written_on_a_gpu():
    """The block fenced ```python gpu needs CuPy and a GPU: run where both are present."""
    from chainrule.engine.backend import cupy_module
    from chainrule.engine.errors import ChainruleError

    blocks = re.findall(r"```python gpu\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 1
    try:
        cupy_module("cuda")
    except ChainruleError as err:
        pytest.skip(str(err))
    done = subprocess.run(
        [sys.executable, "-c", blocks[0]], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert 0.3 < float(done.stdout.strip().splitlines()[-1]) <= 1.0


def test_main_returns_exit_codes(capsys):
    assert main(["circuit", "x*y", "x=2", "y=3", "--json"]) == 0
    assert main(["circuit", "x*y", "x=2"]) == 2


def test_resume_refuses_options_it_would_ignore(digits_run):
    out, _ = digits_run
    done = chainrule("train", "--resume", str(out), "--epochs", "99", "--lr", "0.05", check=False)
    assert done.returncode == 2  # --lr 0.05 is the default, but given: it would be ignored
    assert "drop --lr (only --epochs and --patience can change)" in done.stderr


def test_a_failed_first_start_leaves_nothing_and_can_be_started_again(tmp_path):
    out = tmp_path / "run"
    bad = chainrule("train", "--out", str(out), "--batch-size", "5000", "--quiet", check=False)
    assert bad.returncode == 2 and not out.exists()
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
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("chainrule train: error: ")


# --- run folders: what a new run may write to, resuming, extending ---------------------------


def train(*args: str) -> tuple[int, str, str]:
    """``chainrule train`` in this process (quiet); returns (status, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", "--quiet", *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    """A finished 3-epoch run (constant learning rate), to copy and resume."""
    out = tmp_path_factory.mktemp("short") / "run"
    code, _, err = train("--out", str(out), "--epochs", "3", "--hidden", "32")
    assert code == 0, err
    return out


def copy_run(run: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, tmp_path / run.name))


def params(run: Path) -> dict[str, np.ndarray]:
    arrays, _ = files.load_arrays(run / "model.safetensors")
    return {k: v for k, v in arrays.items() if k.startswith("param.")}


def test_a_folder_of_the_users_files_is_refused_and_left_as_it_was(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"my": "settings"}')
    (folder / "notes.txt").write_text("my notes")
    code, _, err = train("--out", str(folder), "--epochs", "1")
    assert code == 2 and "is not empty and is not a chainrule run" in err and "--force" in err
    code, _, err = train("--out", str(folder), "--epochs", "1", "--force")
    assert code == 2 and "config.json was not written by chainrule" in err
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "notes.txt"]
    assert (folder / "config.json").read_text() == '{"my": "settings"}'


def test_force_writes_beside_the_users_files_and_replaces_a_run(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    code, _, err = train("--out", str(folder), "--epochs", "1", "--force", "--json")
    assert code == 0, err
    assert runfolders.is_run_folder(folder) and (folder / "notes.txt").read_text() == "my notes"
    code, _, err = train("--out", str(folder), "--epochs", "2")
    assert code == 2 and "already holds a run" in err
    code, out, err = train("--out", str(folder), "--epochs", "2", "--force", "--json")
    assert code == 0 and json.loads(out)["epochs"] == 2
    assert (folder / "notes.txt").read_text() == "my notes"
    assert len((folder / "metrics.csv").read_text().splitlines()) == 1 + 2


def test_out_under_a_missing_folder_is_an_error(tmp_path):
    code, _, err = train("--out", str(tmp_path / "typo" / "run"), "--epochs", "1")
    assert code == 2
    assert (
        err == f"chainrule train: error: --out {tmp_path}/typo/run: the folder "
        f"{tmp_path}/typo does not exist; expected an existing folder (create it first)\n"
    )
    assert not (tmp_path / "typo").exists()


def test_default_run_folders_go_under_runs_with_unique_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = []
    for _ in range(2):
        code, out, err = train("--epochs", "1", "--model", "softmax", "--json")
        assert code == 0, err
        made.append(Path(json.loads(out)["run_dir"]))
    assert made[0] != made[1]
    for run in made:
        assert run.parent == Path("runs") and runfolders.is_run_folder(run)
        assert re.fullmatch(r"digits-softmax-\d{8}-\d{6}(-\d+)?", run.name)


def test_a_failure_before_the_first_epoch_removes_only_what_the_run_wrote(tmp_path):
    # diverges in its first epoch: nothing was saved, so nothing of the run is left
    code, _, err = train("--out", str(tmp_path / "new"), "--lr", "1e4", "--epochs", "3")
    assert code == 1
    assert err.endswith("no epoch had finished, so no checkpoint was saved\n")
    assert err.count("\n") == 1 and "RuntimeWarning" not in err
    assert not (tmp_path / "new").exists()
    # in a folder of the user's (with --force): the user's file stays, and so does the folder
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    code, _, _ = train("--out", str(folder), "--lr", "1e4", "--epochs", "3", "--force")
    assert code == 1
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_a_divergence_after_an_epoch_keeps_the_run_and_names_its_files(tmp_path):
    # the L2 step alone scales the weights by 1 - 2 lr reg = -1.5: they grow until epoch 6
    out = tmp_path / "run"
    code, _, err = train(
        "--out", str(out), "--optimizer", "sgd", "--reg", "25", "--epochs", "30", "--hidden", "10"
    )
    assert code == 1 and "Traceback" not in err
    assert err.splitlines()[-1] + "\n" == (
        "chainrule train: error: the loss became inf at epoch 6, step 1: the regularization "
        "strength (25) is likely too high: with the learning rate 0.05, the L2 step alone scales "
        f"the weights by 1 - 2 lr reg = -1.5; the last good checkpoint is {out / CHECKPOINT}\n"
    )
    assert (out / "checkpoint.safetensors").exists() and (out / "model.safetensors").exists()
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 5


def test_resume_with_more_epochs_extends_a_finished_run_bit_for_bit(short_run, tmp_path):
    run = copy_run(short_run, tmp_path)
    code, out, err = train("--resume", str(run), "--epochs", "5", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["epochs"] == 5 and summary["planned_epochs"] == 5
    assert json.loads((run / "config.json").read_text())["epochs"] == 5
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 5
    # a constant learning rate: 3 epochs then 2 more are the same as 5 at once
    straight = tmp_path / "straight"
    code, _, err = train("--out", str(straight), "--epochs", "5", "--hidden", "32")
    assert code == 0, err
    for k, v in params(straight).items():
        np.testing.assert_array_equal(params(run)[k], v)


def test_extending_a_cosine_run_stretches_its_schedule_and_says_so(tmp_path):
    run = tmp_path / "cosine"
    code, _, err = train("--out", str(run), "--epochs", "4", "--lr-decay", "cosine")
    assert code == 0, err
    code, _, err = train("--resume", str(run), "--epochs", "6")
    assert code == 0, err
    factor = optim.CosineDecay(6).factor(4)
    assert err.startswith(
        f"note: cosine decay now spans 6 epochs, not 4: epoch 5 trains at {factor:.3g} x the "
        "base learning rate"
    )
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    rates = [float(r["learning_rate"]) for r in rows]
    assert rates[:4] == pytest.approx([0.05 * optim.CosineDecay(4).factor(e) for e in range(4)])
    assert rates[4:] == pytest.approx([0.05 * optim.CosineDecay(6).factor(e) for e in (4, 5)])


def test_resuming_a_finished_run_trains_nothing_and_says_so(short_run, tmp_path):
    run = copy_run(short_run, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    code, out, err = train("--resume", str(run))
    assert code == 0
    assert err == (
        f"{run} has finished its 3 epochs; nothing to resume (--epochs N, more than 3, trains "
        "it further)\n"
    )
    assert out.startswith("two-layer on digits: test accuracy")
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before
    code, _, err = train("--resume", str(run), "--epochs", "2")
    assert code == 2 and "has already trained 3 epochs" in err


def test_resuming_a_run_with_no_checkpoint_is_an_error(short_run, tmp_path):
    run = tmp_path / "started"
    run.mkdir()
    (run / "config.json").write_text((short_run / "config.json").read_text())
    code, _, err = train("--resume", str(run))
    assert code == 1 and err.startswith("chainrule train: error: nothing to resume: no epoch of")
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.json"]
    code, _, err = train("--resume", str(tmp_path))
    assert code == 1 and "is not a run folder" in err


def test_an_evaluation_needs_a_model_and_says_when_there_is_none(short_run, tmp_path, capsys):
    run = tmp_path / "started"
    run.mkdir()
    (run / "config.json").write_text((short_run / "config.json").read_text())
    assert main(["evaluate", str(run)]) == 1
    assert capsys.readouterr().err == (
        f"chainrule evaluate: error: {run} has no model yet: no epoch has finished (start it "
        f"again with chainrule train --out {run})\n"
    )


def test_relative_data_paths_are_stored_absolute(tmp_path, monkeypatch):

    images = tmp_path / "work" / "images"
    for split, count in (("train", 12), ("test", 4)):
        for label, value in (("dark", 30), ("light", 220)):
            folder = images / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.full((6, 6), value + i, np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{i}.png")
    monkeypatch.chdir(tmp_path / "work")
    code, _, err = train(
        "--dataset",
        "image-folder",
        "--root",
        "images",
        "--out",
        "run",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--val-size",
        "4",
        "--model",
        "softmax",
        "--lr",
        "0.5",
    )
    assert code == 0, err
    config = json.loads(Path("run/config.json").read_text())
    assert config["root"] == str(images)
    assert TrainConfig(data_dir="~/data").data_dir == str(Path.home() / "data")
    monkeypatch.chdir(tmp_path)  # elsewhere: evaluate and resume still find the images
    assert main(["evaluate", "work/run"]) == 0
    code, _, err = train("--resume", "work/run", "--epochs", "3")
    assert code == 0, err


def test_early_stopping_is_in_the_summary_and_resume_respects_it(tmp_path):
    run = tmp_path / "patient"
    code, out, err = train("--out", str(run), "--patience", "2", "--epochs", "200", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["stopped_early"] and summary["patience"] == 2
    assert summary["epochs"] == summary["best_epoch"] + 2 < 200
    text = train("--resume", str(run))
    assert text[0] == 0 and "stopped early after epoch" in text[2]
    assert "stopped early, no better validation in its last 2 epochs" in text[1]


def test_evaluate_gives_precision_and_recall_per_class(digits_run, capsys):
    from sklearn.metrics import classification_report

    out, summary = digits_run
    assert main(["evaluate", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_accuracy"] == summary["test_accuracy"]
    per_class = result["per_class"]
    assert [c["class"] for c in per_class] == [str(d) for d in range(10)]
    assert sum(c["support"] for c in per_class) == result["n_test"] == summary["n_test"]
    # the same numbers as scikit-learn's report on the saved model's predictions
    from chainrule.app import experiment

    config = experiment.read_config(out)
    data = experiment.load_data(config)
    pred = checkpoints.load_model(out / "model.safetensors").model.predict(data.X_test)
    report = classification_report(data.y_test, pred, output_dict=True, zero_division=0)
    for c in per_class:
        assert c["precision"] == pytest.approx(report[c["class"]]["precision"])
        assert c["recall"] == pytest.approx(report[c["class"]]["recall"])
    assert main(["evaluate", str(out)]) == 0
    text = capsys.readouterr().out
    assert "precision  recall" in text and len(text.strip().splitlines()) == 1 + 1 + 1 + 10


def test_runs_lists_runs_with_their_numbers(digits_run, short_run, capsys):
    out, summary = digits_run
    assert main(["runs", str(out.parent), "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["run"] == out.name and listed["test_accuracy"] == summary["test_accuracy"]
    assert (listed["dataset"], listed["model"], listed["status"]) == (
        "digits",
        "two-layer",
        "finished",
    )
    assert listed["epochs_done"] == listed["epochs"] == 50
    assert main(["runs", str(out.parent)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["run", "dataset", "model", "test", "acc", "epochs", "status", "date"]
    assert row.split()[:6] == [
        out.name,
        "digits",
        "two-layer",
        f"{summary['test_accuracy']:.4f}",
        "50/50",
        "finished",
    ]


def test_a_run_without_a_terminal_logs_one_line_per_epoch_and_no_numpy_warnings(tmp_path):
    done = chainrule(
        "train",
        "--out",
        str(tmp_path / "r"),
        "--epochs",
        "4",
        "--lr",
        "2",
        "--optimizer",
        "sgd",
        "--hidden",
        "10",
    )
    assert "\r" not in done.stderr and "RuntimeWarning" not in done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")] == [
        f"epoch {i}/4" for i in range(1, 5)
    ]
    warnings = [line for line in lines if line.startswith("warning: ")]
    kinds = {re.sub(r"\b\d+(\.\d+)?(e[-+]\d+)?%?", "#", w.split(": ", 2)[2]) for w in warnings}
    assert len(warnings) == len(kinds)  # each kind once
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert len(summary["warnings"]) == len(warnings)
