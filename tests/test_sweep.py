"""``chainrule sweep`` with the embedded journal storage: the README's command, a kill -9 and a
Ctrl-C mid-trial followed by the same command, two worker processes, the best trial as a run
folder, and bad input refused in one line with nothing lost."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from chainrule.app import sweep_storage
from chainrule.app.cli import main
from chainrule.app.experiment import evaluate_run

ROOT = Path(__file__).resolve().parents[1]
# Small and quick: digits, tiny hidden layers, a few epochs.
FAST = ("--dataset", "digits", "--hidden", "8,16", "--batch-size", "64,128", "--epochs", "2")


def chainrule(*args: str) -> list[str]:
    return [sys.executable, "-m", "chainrule", *args]


def load(folder: Path, name: str = "digits-two-layer") -> optuna.Study:
    storage = sweep_storage.open_storage(None, folder)
    return optuna.load_study(study_name=name, storage=storage)


def states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def readme_section() -> str:
    """The README's "Sweeps" section."""
    text = (ROOT / "README.md").read_text()
    return text.split("\n## Sweeps", 1)[1].split("\n## ", 1)[0]


def readme_command() -> str:
    """The one-machine command of the README's "Sweeps" section."""
    block = re.search(r"```bash\n(.*?)```", readme_section(), re.S).group(1)
    return next(line for line in block.splitlines() if "sweep" in line).split("  #")[0].strip()


def test_readme_one_machine_command_finds_a_model_above_095(tmp_path):
    command = readme_command()
    assert command.startswith("./dev run sweep ")
    args = command.removeprefix("./dev run ").split()
    done = subprocess.run(chainrule(*args), cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    trials = int(args[args.index("--trials") + 1])
    folder = tmp_path / "sweeps" / "digits-two-layer"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] + summary["pruned"] == trials
    best = summary["best"]
    assert best["test_accuracy"] > 0.95
    # the best trial's run folder is an ordinary run: evaluate reads the same test accuracy,
    # and retraining it gave the validation accuracy the trial had
    run_dir = tmp_path / best["run_dir"]
    again = evaluate_run(run_dir)
    assert again["test_accuracy"] == pytest.approx(best["test_accuracy"])
    assert again["val_accuracy"] == pytest.approx(best["run_val_accuracy"])
    assert best["run_val_accuracy"] == pytest.approx(best["val_accuracy"], abs=0.02)
    assert f"best: trial {best['number']}" in done.stdout
    for name in ("history.png", "importances.png", "lr_reg.png", "trials.csv"):
        assert (folder / name).stat().st_size > 1000 or name == "trials.csv"
    rows = (folder / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + trials and rows[0].startswith("number,lr,reg,hidden")


def _wait_for_a_trial_mid_training(folder: Path, process: subprocess.Popen) -> int:
    """The number of a RUNNING trial that has reported an epoch, once one has (polled)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            trials = load(folder).get_trials(deepcopy=False)
        except KeyError:  # the study is not made yet
            trials = []
        running = [
            t
            for t in trials
            if t.state.name == "RUNNING" and t.intermediate_values and t.number >= 1
        ]
        if running:
            return running[0].number
        time.sleep(0.05)
    raise AssertionError("no trial started training")


def test_sigkill_mid_trial_then_the_same_command_loses_and_repeats_nothing(tmp_path):
    args = (*FAST, "--epochs", "30", "--trials", "3", "--out", "sw", "--quiet")
    process = subprocess.Popen(chainrule("sweep", *args), cwd=tmp_path, stderr=subprocess.PIPE)
    killed = _wait_for_a_trial_mid_training(tmp_path / "sw", process)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    before = {t.number: t.state.name for t in load(tmp_path / "sw").get_trials()}
    assert before[killed] == "RUNNING"  # cut off: nobody told Optuna
    done = subprocess.run(chainrule("sweep", *args, "--json"), cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    study = load(tmp_path / "sw")
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))  # distinct, none skipped
    assert study.trials[killed].state.name == "FAIL"  # marked failed, not counted
    counted = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 3 and states(study).get("RUNNING", 0) == 0
    # what finished before the kill is kept as it was
    assert all(trials[n].state.name == s for n, s in before.items() if s != "RUNNING")
    assert json.loads(done.stdout)["failed"] == 1


def test_two_workers_split_the_cores_and_the_count_is_exact(tmp_path):
    # Trials long enough (200 epochs, over a second each; Optuna's pruner leaves the first five
    # alone) that the second worker, which needs a few seconds to start, finds trials left to
    # take on a fast machine too: with FAST's 2 epochs the first worker can take all six.
    slower = (*FAST[:-1], "200")
    done = subprocess.run(
        chainrule("sweep", *slower, "--trials", "6", "--jobs", "2", "--out", "sw"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    cores = len(os.sched_getaffinity(0))
    threads = max(1, cores // 2)
    assert f"{cores} cores: 2 workers x {threads} BLAS thread" in done.stderr
    study = load(tmp_path / "sw")
    counted = [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 6
    surplus = [t for t in study.get_trials() if t.user_attrs.get("surplus")]
    assert len(study.get_trials()) == 6 + len(surplus)
    workers = {t.user_attrs["worker"] for t in counted}
    assert len(workers) == 2  # both processes trained
    assert json.loads((tmp_path / "sw" / "summary.json").read_text())["threads_per_job"] == threads
    assert re.search(r"^trial \d+: (complete|pruned), val 0\.\d{4}, \d+ epochs", done.stderr, re.M)


def test_ctrl_c_stops_the_workers_marks_their_trials_failed_and_exits_130(tmp_path):
    args = (*FAST, "--epochs", "200", "--trials", "3", "--jobs", "2", "--out", "sw", "--quiet")
    process = subprocess.Popen(
        chainrule("sweep", *args), cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    _wait_for_a_trial_mid_training(tmp_path / "sw", process)
    process.send_signal(signal.SIGINT)  # to the parent alone: it stops its workers
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule sweep: interrupted by SIGINT")
    assert "none lost" in lines[0]
    study = load(tmp_path / "sw")
    trials = study.get_trials()
    assert not [t for t in trials if t.state.name == "RUNNING"]
    cut = [t for t in trials if t.state.name == "FAIL"]
    assert cut, states(study)
    for t in cut:  # the worker processes are gone
        pid = int(t.user_attrs["worker"].rpartition(":")[2])
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")


def test_the_python_api(tmp_path):
    import chainrule as cr

    summary = cr.sweep(
        "digits",
        "softmax",
        3,
        out=tmp_path / "sw",
        ranges={"lr": "1e-2:1e-1", "optimizer": "adam", "batch_size": "64"},
        epochs=3,
        final={"epochs": 4},
        progress=False,
    )
    assert summary["complete"] + summary["pruned"] == 3
    assert "hidden" not in summary["best"]["params"]  # a linear model has none
    assert summary["best"]["test_accuracy"] > 0.8
    assert Path(summary["best"]["run_dir"], "model.safetensors").exists()
    # the same call again: nothing to run, the run folder reused
    ranges = {"lr": "1e-2:1e-1", "optimizer": "adam", "batch_size": "64"}
    assert json.loads(Path(summary["best"]["run_dir"], "config.json").read_text())["epochs"] == 4
    made = Path(summary["best"]["run_dir"], "model.safetensors").stat().st_mtime_ns
    again = cr.sweep("digits", "softmax", 3, out=tmp_path / "sw", epochs=3, progress=False,
                     ranges=ranges, final={"epochs": 4})  # fmt: skip
    assert again["best"] == summary["best"]
    assert Path(summary["best"]["run_dir"], "model.safetensors").stat().st_mtime_ns == made


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 2-trial sweep of digits/two-layer."""
    out = tmp_path_factory.mktemp("finished") / "sw"
    assert main(["sweep", *FAST, "--trials", "2", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def journal(finished, tmp_path) -> Path:
    """A copy of the finished sweep's folder; its journal file."""
    shutil.copytree(finished, tmp_path / "sw")
    return tmp_path / "sw" / sweep_storage.JOURNAL_FILE


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (("--trials", "0"), 2, "--trials must be a positive integer, got 0"),
        (("--jobs", "0"), 2, "--jobs must be a positive integer, got 0"),
        (("--lr", "1e-1:1e-4"), 2, "--lr '1e-1:1e-4' is inverted"),
        (("--reg", "1e-3:"), 2, "--reg '1e-3:' is not a range"),
        (("--hidden", ""), 2, "--hidden '' is empty"),
        (("--batch-size", "0"), 2, "is not a positive integer"),
        (("--dataset", "mnist"), 2, "is a sweep with dataset 'digits', not 'mnist'"),
        (("--model", "mlp", "--study", "digits-two-layer"), 2, "with model 'two-layer', not 'mlp'"),
        (("--epochs", "3"), 2, "with epochs 2, not 3"),
        (("--storage", "localhost/db"), 2, "is not a database URL"),
        (("--final-epochs", "0"), 2, "--final-epochs must be a positive integer, got 0"),
    ],
)
def test_bad_input_one_line_and_nothing_lost(journal, capsys, args, status, words):
    before = journal.read_bytes()
    capsys.readouterr()
    base = ["sweep", *FAST, "--trials", "2", "--out", str(journal.parent), "--study"]
    base += ["digits-two-layer", "--quiet"]
    assert main([*base, *args]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert journal.read_bytes() == before


def test_every_sweep_command_of_the_readme_parses_and_its_ranges_are_valid():
    from chainrule.app.cli import build_parser
    from chainrule.app.sweep_space import SEARCHED, search_space

    lines = [ln for ln in readme_section().splitlines() if ln.startswith("./dev run sweep ")]
    assert len(lines) >= 3  # one machine, CIFAR-10, many machines
    for line in lines:
        args = build_parser().parse_args(line.split("  #")[0].split()[2:])
        space = search_space({name: getattr(args, name) for name in SEARCHED}, args.space)
        assert space.lr.low <= space.lr.high


def test_without_optuna_one_line_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    assert main(["sweep", "--trials", "1"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "chainrule sweep: error: sweep needs the sweep extra (optuna is missing): "
        "pip install 'chainrule[sweep]'\n"
    )


@pytest.mark.parametrize(
    ("low", "high"),
    [(3e-3, 3e-2), (1e-4, 6e-3), (1.5e-2, 6e-2), (0.021, 0.045), (2e-5, 1e-3), (1e-6, 1e-1)],
)
def test_lr_reg_log_axis_labels_do_not_overlap(low: float, high: float) -> None:
    # On a span under a decade matplotlib labels some minor marks (on the CIFAR-10 sweep's lr
    # axis 3x10^-3 and 4x10^-3 were written over each other), or leaves one label in all.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from chainrule.app.sweep_figures import log_ticks

    fig = Figure(figsize=(6.5, 5))
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    values = list(np.geomspace(low, high, 9))
    ax.scatter(values, values)
    ax.set_xscale("log")
    ax.set_yscale("log")
    log_ticks(ax.xaxis, values)
    log_ticks(ax.yaxis, values)
    renderer = canvas.get_renderer()
    fig.draw(renderer)
    for axis, position in ((ax.xaxis, 0), (ax.yaxis, 1)):
        start, end = sorted(axis.get_view_interval())
        shown = [  # the labels drawn: inside the axis's view, not empty
            t
            for t in axis.get_ticklabels(which="both")
            if t.get_text() and start <= t.get_position()[position] <= end
        ]
        texts = [t.get_text() for t in shown]
        assert len(shown) >= 2, f"{low}-{high}: fewer than two labels drawn: {texts}"
        majors = axis.get_majorticklabels()
        drawn = [t for t in majors if start <= t.get_position()[position] <= end]
        assert all(t.get_text() for t in drawn), f"{low}-{high}: a major mark without a label"
        boxes = [t.get_window_extent(renderer) for t in shown]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert not a.overlaps(b), f"{low}-{high}: {texts} overlap"
        if high / low < 100:  # one notation on the axis
            assert len({"e" in text for text in texts}) == 1, texts
