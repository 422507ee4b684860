"""Run folders: what marks one, which folders a new run may take, unique names, the listing."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from chainrule import nn
from chainrule.app import runfolders
from chainrule.data import Preprocessing
from chainrule.engine.errors import ConfigError, DataNotFoundError
from chainrule.training import checkpoints


def make_run(path: Path, *, marker: bool = True, trained: bool = True, **summary) -> Path:
    """A run folder as train leaves it: config.json, and a model file when it trained."""
    path.mkdir(parents=True)
    config = {"dataset": "digits", "model": "softmax", "epochs": 5}
    if marker:
        config = {"format": runfolders.RUN_FORMAT, **config}
    (path / "config.json").write_text(json.dumps(config))
    if trained:
        model = nn.LinearClassifier(4, 3, np.random.default_rng(0))
        prep = Preprocessing(255.0, np.zeros(4, np.float32))
        checkpoints.save_model(path / checkpoints.MODEL_FILE, model, prep, ["a", "b", "c"], (2, 2))
        (path / "metrics.csv").write_text("epoch,loss\n1,0.5\n2,0.4\n")
    if summary:
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_check_output_parent_refuses_a_missing_or_file_parent(tmp_path):
    assert runfolders.check_output_parent(tmp_path / "new") == tmp_path / "new"
    with pytest.raises(ConfigError, match=r"the folder .*/missing does not exist"):
        runfolders.check_output_parent(tmp_path / "missing" / "run")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        runfolders.check_output_parent(tmp_path / "file" / "run")
    assert not (tmp_path / "missing").exists()


def test_what_marks_a_run_folder(tmp_path):
    assert runfolders.is_run_folder(make_run(tmp_path / "marked", trained=False))
    # made before the marker: a config.json beside a model file in chainrule's format
    assert runfolders.is_run_folder(make_run(tmp_path / "old", marker=False))
    # a damaged config.json in a run that trained is still a run (so evaluate can say so)
    damaged = make_run(tmp_path / "damaged")
    (damaged / "config.json").write_text("{not json")
    assert runfolders.is_run_folder(damaged)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"learning_rate": 3}')
    (mine / "model.safetensors").write_bytes(b"someone else's weights")
    assert not runfolders.is_run_folder(mine)
    assert not runfolders.is_run_folder(tmp_path / "absent")


def test_a_new_run_may_take_a_new_or_empty_folder_or_an_untrained_run(tmp_path):
    runfolders.check_new_run_folder(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    runfolders.check_new_run_folder(tmp_path / "empty")
    runfolders.check_new_run_folder(make_run(tmp_path / "untrained", trained=False))


def test_a_trained_run_needs_force(tmp_path):
    run = make_run(tmp_path / "run")
    with pytest.raises(ConfigError, match=r"already holds a run; use --resume .* --force"):
        runfolders.check_new_run_folder(run)
    runfolders.check_new_run_folder(run, force=True)


def test_a_folder_of_other_files_needs_force_and_no_name_the_run_writes(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    with pytest.raises(ConfigError, match=r"is not empty and is not a chainrule run .*notes\.txt"):
        runfolders.check_new_run_folder(folder)
    runfolders.check_new_run_folder(folder, force=True)
    (folder / "config.json").write_text('{"mine": true}')
    with pytest.raises(ConfigError, match=r"mine/config\.json was not written by chainrule"):
        runfolders.check_new_run_folder(folder, force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        runfolders.check_new_run_folder(tmp_path / "file", force=True)


def test_clear_run_files_deletes_only_the_runs_files(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    (run / "curves.png").write_bytes(b"png")
    removed = runfolders.clear_run_files(run)
    assert {p.name for p in removed} == {
        "config.json",
        "model.safetensors",
        "metrics.csv",
        "curves.png",
    }
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


def test_unique_folders_never_collide(tmp_path):
    base = tmp_path / "digits-two-layer-20261129-120000"
    made: list[Path] = []
    lock = threading.Lock()

    def claim() -> None:
        path = runfolders.create_unique_folder(base)
        with lock:
            made.append(path)

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 16
    names = {p.name for p in made}
    assert base.name in names and f"{base.name}-16" in names
    assert all(p.is_dir() for p in made)


def test_list_runs_finds_runs_at_any_depth_and_sorts_them(tmp_path):
    make_run(tmp_path / "a", test_accuracy=0.9, epochs=5, finished="2026-11-01T10:00:00")
    make_run(
        tmp_path / "deep" / "b",
        test_accuracy=0.95,
        epochs=3,
        stopped_early=True,
        finished="2026-11-02T10:00:00",
    )
    make_run(tmp_path / "c", trained=False)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("not a run")

    by_name = runfolders.list_runs(tmp_path, "name")
    assert [r.run for r in by_name] == ["a", "c", os.path.join("deep", "b")]
    a, c, b = by_name
    assert (a.dataset, a.model, a.test_accuracy, a.epochs_done, a.epochs, a.status) == (
        "digits",
        "softmax",
        0.9,
        5,
        5,
        "finished",
    )
    assert b.status == "stopped early" and b.epochs_done == 3
    assert c.status == "not started" and c.test_accuracy is None
    assert [r.run for r in runfolders.list_runs(tmp_path, "accuracy")] == [b.run, a.run, c.run]
    assert runfolders.list_runs(tmp_path, "date")[1:] == [b, a]  # newest first; c is dated today
    assert runfolders.list_runs(tmp_path / "a") == [
        runfolders.run_info(tmp_path / "a", tmp_path / "a")
    ]
    with pytest.raises(DataNotFoundError, match="is not a folder"):
        runfolders.list_runs(tmp_path / "nothing")
    with pytest.raises(ConfigError, match="unknown sort"):
        runfolders.list_runs(tmp_path, "size")
