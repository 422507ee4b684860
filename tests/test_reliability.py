"""Faults lose nothing: kill -9 at random moments, SIGINT/SIGTERM, divergence, two writers,
tampered model files. Every check runs a real `chainrule train` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from chainrule import nn
from chainrule.data import Preprocessing, files
from chainrule.engine.errors import DataError, DataNotFoundError
from chainrule.training import checkpoints

# A run long enough to be killed in the middle (about 2-4 s here), short enough to repeat.
TRAIN = [
    "train",
    "--quiet",
    "--epochs",
    "40",
    "--hidden",
    "64",
    "--batch-size",
    "32",
    "--optimizer",
    "adam",
    "--lr",
    "0.001",
    "--seed",
    "3",
]


def start(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "chainrule", *TRAIN, "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *TRAIN, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )


def weights(out: Path) -> dict[str, np.ndarray]:
    return {k: v for k, v in load_file(out / "model.safetensors").items() if k.startswith("param.")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("ref") / "run"
    begin = time.perf_counter()
    done = run(out)
    assert done.returncode == 0, done.stderr
    return out, time.perf_counter() - begin


def finish(out: Path) -> None:
    """Resume (or start again, if the kill came before anything was saved) until done."""
    for _ in range(3):
        args = ["--resume", str(out)] if (out / "checkpoint.safetensors").exists() else []
        done = subprocess.run(
            [sys.executable, "-m", "chainrule", *TRAIN[:1], *args]
            if args
            else [sys.executable, "-m", "chainrule", *TRAIN, "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode == 0:
            return
    raise AssertionError(done.stderr)


def test_kill_9_at_random_moments_then_resume_gives_identical_weights(reference, tmp_path):
    ref_dir, seconds = reference
    expected = weights(ref_dir)
    rng = np.random.default_rng(2026)
    moments = sorted(rng.uniform(0.2, max(seconds, 1.0), size=4))
    survived = 0
    for i, delay in enumerate(moments):
        out = tmp_path / f"killed{i}"
        proc = start(out)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (out / "checkpoint.safetensors").exists():
            files.load_arrays(out / "checkpoint.safetensors")  # intact, whatever the moment
        finish(out)
        got = weights(out)
        assert got.keys() == expected.keys()
        for k in expected:
            np.testing.assert_array_equal(got[k], expected[k], err_msg=f"kill at {delay:.2f}s: {k}")
        rows = (out / "metrics.csv").read_text().splitlines()
        assert len(rows) == 1 + 40  # every epoch once: none lost, none repeated
        survived += 1
    assert survived == len(moments)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_save_a_checkpoint_and_exit_cleanly(reference, tmp_path, sig):
    ref_dir, _ = reference
    out = tmp_path / "run"
    proc = start(out)
    deadline = time.time() + 60
    while not (out / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:  # finished before the signal arrived: nothing to check
        pytest.skip("the run finished before the signal")
    assert proc.returncode == 128 + sig, stderr
    assert f"stopped by {signal.Signals(sig).name}" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    # the interrupted run's model is the best of the epochs done, and usable as it is
    scored = subprocess.run(
        [sys.executable, "-m", "chainrule", "evaluate", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert scored.returncode == 0, scored.stderr
    _, meta = files.load_arrays(out / "model.safetensors")
    history = files.load_arrays(out / "checkpoint.safetensors")[1]["history"]
    assert meta["best_epoch"] == history["best_epoch"] >= 1
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", "train", "--resume", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for k, v in weights(ref_dir).items():
        np.testing.assert_array_equal(weights(out)[k], v)


def test_a_second_writer_is_refused(tmp_path):
    out = tmp_path / "run"
    first = start(out)
    deadline = time.time() + 60
    while not (out / ".lock").exists() and time.time() < deadline:
        time.sleep(0.01)
    second = subprocess.run(
        [sys.executable, "-m", "chainrule", "train", "--resume", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    first.wait(timeout=600)
    assert first.returncode == 0
    if second.returncode == 0:
        pytest.skip("the first run had finished before the second started")
    assert second.returncode == 1
    assert "is being written by process" in second.stderr


def test_divergence_stops_with_a_clear_message_and_keeps_the_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chainrule",
            "train",
            "--quiet",
            "--out",
            str(out),
            "--epochs",
            "20",
            "--optimizer",
            "sgd",
            "--lr",
            "1e4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert (
        "the loss became" in done.stderr
        and "learning rate (10000) is likely too high" in done.stderr
    )
    assert "Traceback" not in done.stderr
    if (out / "checkpoint.safetensors").exists():
        files.load_arrays(out / "checkpoint.safetensors")
    assert not (out / "model.safetensors").exists()


def test_debug_shows_the_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", "--debug", "evaluate", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "Traceback" in done.stderr


# --- model files that were tampered with ---------------------------------------------------


@pytest.fixture
def model_file(tmp_path) -> Path:
    model = nn.TwoLayerNet(4, 5, 3, np.random.default_rng(0))
    prep = Preprocessing(255.0, np.zeros(4, np.float32))
    path = tmp_path / "model.safetensors"
    checkpoints.save_model(path, model, prep, ["a", "b", "c"], (2, 2))
    assert checkpoints.load_model(path).classes == ["a", "b", "c"]
    return path


def test_flipped_bytes_in_the_header_are_refused(model_file):
    payload = bytearray(model_file.read_bytes())
    payload[12] ^= 0xFF
    model_file.write_bytes(bytes(payload))
    with pytest.raises(DataError, match=r"not a valid safetensors file|unreadable metadata"):
        checkpoints.load_model(model_file)


def test_a_truncated_file_is_refused(model_file):
    model_file.write_bytes(model_file.read_bytes()[:-20])
    with pytest.raises(DataError, match="not a valid safetensors file"):
        checkpoints.load_model(model_file)


def test_metadata_that_does_not_match_the_tensors_is_refused(model_file, tmp_path):
    tensors = load_file(model_file)
    arrays, meta = files.load_arrays(model_file)
    meta["model"]["hidden_size"] = 7
    files.save_arrays(model_file, arrays, meta)
    with pytest.raises(DataError, match="tensors do not match the model metadata"):
        checkpoints.load_model(model_file)
    meta["model"]["hidden_size"] = 5
    meta["classes"] = ["a", "b"]
    files.save_arrays(model_file, arrays, meta)
    with pytest.raises(DataError, match="2 class names for a model with 3 outputs"):
        checkpoints.load_model(model_file)
    # a foreign safetensors file, without our metadata
    save_file(tensors, tmp_path / "foreign.safetensors")
    with pytest.raises(DataError, match="was not written by chainrule"):
        checkpoints.load_model(tmp_path / "foreign.safetensors")
    with pytest.raises(DataNotFoundError, match="no such file"):
        checkpoints.load_model(tmp_path / "missing.safetensors")


def test_nan_weights_are_refused(model_file):
    arrays, meta = files.load_arrays(model_file)
    arrays["param.W1"] = arrays["param.W1"].copy()
    arrays["param.W1"][0, 0] = np.nan
    files.save_arrays(model_file, arrays, meta)
    with pytest.raises(DataError, match="W1 holds NaN"):
        checkpoints.load_model(model_file)


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    files.atomic_write_bytes(path, b"old good")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old good"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def test_config_json_is_what_resume_reads(reference):
    ref_dir, _ = reference
    config = json.loads((ref_dir / "config.json").read_text())
    assert config["epochs"] == 40 and config["seed"] == 3


def test_atomic_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        files.atomic_write_bytes(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644
