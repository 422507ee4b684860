"""Run folders: what marks a folder as a run, what chainrule writes there, the one-writer lock,
and the list of runs.

A run folder is one whose ``config.json`` carries ``"format": "chainrule-run-1"`` (runs made
before that marker: a ``config.json`` beside a model or checkpoint file in chainrule's format).
chainrule writes only the names in ``RUN_FILES`` there, and never over a file it did not write.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from chainrule.data.files import is_chainrule_file
from chainrule.engine.errors import ConfigError, DataNotFoundError, RunLockedError
from chainrule.training.checkpoints import CHECKPOINT_FILE, MODEL_FILE
from chainrule.training.config import CONFIG_FILE, RUN_FORMAT

# config.json (CONFIG_FILE) is what TrainConfig writes, and its "format" (RUN_FORMAT) is what
# marks a folder as a run: both are defined beside TrainConfig, in training.config.

SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.csv"
LOCK_FILE = ".lock"
# Every name chainrule writes in a run folder (train, and show's pictures).
RUN_FILES = (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    CHECKPOINT_FILE,
    SUMMARY_FILE,
    LOCK_FILE,
    "curves.png",
    "diagnostics.png",
    "weights.png",
    "confusion.png",
    "templates.png",
    "features.png",
)
DEFAULT_RUNS_DIR = Path("runs")


def check_output_parent(path: str | Path, option: str = "--out") -> Path:
    """The rule for every path a user names for output (a file or a run folder): the folder it
    goes in must exist already. A typo must not become a tree of new folders somewhere.

    option: how the command line calls the path, for the message. Returns ``Path(path)``.
    Raises ConfigError (a usage error) naming the option, the path and the missing folder.
    """
    path = Path(path)
    parent = path.parent  # "." for a bare name: the current folder
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise ConfigError(
            f"{option} {path}: the folder {parent} {what}; expected an existing folder "
            "(create it first)"
        )
    return path


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` (an existing folder) while writing to it; a second
    writer is refused at once, not made to wait.

    An OS-level lock (flock), so it is released when the process dies, even by ``kill -9``; the
    lock file (``LOCK_FILE``) holds the owner's process id, for the message.
    Raises RunLockedError naming the process that holds it, OSError when the folder cannot be
    written.
    """
    import fcntl

    lock_path = Path(run_dir) / LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise RunLockedError(
                f"{run_dir} is being written by process {owner}; wait for it or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def is_run_folder(path: str | Path) -> bool:
    """Whether ``path`` is a run folder: its config.json carries chainrule's run marker, or (a
    run made before the marker, or one whose config.json was damaged) it holds a model or
    checkpoint file in chainrule's format beside a config.json. Never raises: a file that
    cannot be read is taken for what it cannot prove."""
    path = Path(path)
    config = path / CONFIG_FILE
    if not config.is_file():
        return False
    try:
        obj = json.loads(config.read_text())
    except (OSError, ValueError):
        obj = None
    if isinstance(obj, dict) and obj.get("format") == RUN_FORMAT:
        return True
    return any(is_chainrule_file(path / name) for name in (MODEL_FILE, CHECKPOINT_FILE))


def has_trained(path: str | Path) -> bool:
    """Whether a run folder holds anything trained (a checkpoint or a model file); never
    raises."""
    return (Path(path) / CHECKPOINT_FILE).exists() or (Path(path) / MODEL_FILE).exists()


def check_new_run_folder(path: str | Path, force: bool = False) -> None:
    """Refuse a folder a new run must not write to; return quietly when it may.

    A new run may use a folder that does not exist, an empty one, or a run that never finished
    its first epoch. force=True also allows a run that trained (its files will be replaced) and
    a folder of other files, as long as none of them has a name the run writes (``RUN_FILES``):
    chainrule never writes over a file it did not write. Raises ConfigError naming the reason.
    """
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise ConfigError(f"{path} is a file; a run needs a folder (choose another --out)")
    if is_run_folder(path):
        if has_trained(path) and not force:
            raise ConfigError(
                f"{path} already holds a run; use --resume {path} to continue it, --force to "
                "replace it, or another --out"
            )
        return
    entries = sorted(p.name for p in path.iterdir() if p.name != LOCK_FILE)
    if not entries:
        return
    if not force:
        shown = ", ".join(entries[:3]) + (
            f" and {len(entries) - 3} more" if len(entries) > 3 else ""
        )
        raise ConfigError(
            f"{path} is not empty and is not a chainrule run (it holds {shown}); choose a new or "
            "empty folder, or add --force to write the run beside those files"
        )
    clashes = [name for name in entries if name in RUN_FILES]
    if clashes:
        raise ConfigError(
            f"{path / clashes[0]} was not written by chainrule; not overwriting it, even with "
            "--force (choose another --out)"
        )


def clear_run_files(path: str | Path) -> list[Path]:
    """Delete a previous run's files from a run folder (the names in ``RUN_FILES`` except the
    lock); any other file stays. Returns the paths deleted. Raises OSError when one cannot be
    deleted."""
    removed = []
    for name in RUN_FILES:
        target = Path(path) / name
        if name != LOCK_FILE and target.is_file():
            target.unlink()
            removed.append(target)
    return removed


def create_unique_folder(path: str | Path) -> Path:
    """Create the folder ``path``, or ``path-2``, ``path-3``... when it is taken; returns the one
    made. mkdir either creates a folder or fails, so two processes never get the same one.
    Raises OSError (FileNotFoundError when the folder above is missing) for any failure but
    a taken name."""
    path = Path(path)
    for i in itertools.count(1):
        candidate = path if i == 1 else path.with_name(f"{path.name}-{i}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")  # itertools.count never ends; for type checkers


@dataclass
class RunInfo:
    """One line of ``chainrule runs``: what a run folder says about itself."""

    run: str
    dataset: str | None
    model: str | None
    test_accuracy: float | None
    epochs_done: int
    epochs: int | None
    status: str  # finished, stopped early, incomplete, not started, unreadable
    date: str  # ISO 8601, to the second

    def to_json(self) -> dict[str, Any]:
        """The fields as a JSON-able dict (what ``chainrule runs --json`` lists)."""
        return dict(self.__dict__)


def _read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _epochs_in_metrics(path: Path) -> int:
    """The rows of a metrics.csv under its header: the epochs it records (0 without a file)."""
    try:
        with path.open(newline="") as f:
            return max(0, sum(1 for _ in csv.reader(f)) - 1)
    except OSError:
        return 0


def run_info(path: Path, root: Path) -> RunInfo:
    """What the run folder ``path`` (one for which ``is_run_folder`` holds) says about itself;
    ``run`` is its path relative to ``root``. A damaged config.json or summary.json gives a
    status, not an error. Raises OSError when config.json vanished meanwhile."""
    config = _read_json_object(path / CONFIG_FILE)
    summary = _read_json_object(path / SUMMARY_FILE)
    name = str(path.relative_to(root)) if path != root else str(path)
    stamp = datetime.fromtimestamp((path / CONFIG_FILE).stat().st_mtime).isoformat("T", "seconds")
    if config is None:
        return RunInfo(name, None, None, None, 0, None, "unreadable config.json", stamp)
    planned = config.get("epochs") if isinstance(config.get("epochs"), int) else None
    if summary is not None:
        status = "stopped early" if summary.get("stopped_early") else "finished"
        done = int(summary.get("epochs", 0))
        accuracy = summary.get("test_accuracy")
        stamp = str(summary.get("finished", stamp))
    else:
        done = _epochs_in_metrics(path / METRICS_FILE)
        status = "incomplete" if (path / CHECKPOINT_FILE).exists() else "not started"
        accuracy = None
    return RunInfo(
        run=name,
        dataset=config.get("dataset"),
        model=config.get("model"),
        test_accuracy=accuracy if isinstance(accuracy, float | int) else None,
        epochs_done=done,
        epochs=planned,
        status=status,
        date=stamp,
    )


RUN_SORTS = ("date", "accuracy", "name")


def list_runs(root: str | Path, sort: str = "date") -> list[RunInfo]:
    """Every run folder under ``root`` (``root`` itself when it is one), sorted by ``sort``:
    date (newest first), accuracy (highest first; runs without one last) or name.
    Raises DataNotFoundError when ``root`` is not a folder, ConfigError for an unknown sort."""
    root = Path(root)
    if sort not in RUN_SORTS:
        raise ConfigError(f"unknown sort {sort!r} (choose from {', '.join(RUN_SORTS)})")
    if not root.is_dir():
        raise DataNotFoundError(f"{root} is not a folder")
    found = []
    for folder, subfolders, _ in os.walk(root):
        here = Path(folder)
        if is_run_folder(here):
            found.append(run_info(here, root))
            subfolders.clear()
        else:
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
    if sort == "date":
        found.sort(key=lambda r: r.date, reverse=True)
    elif sort == "accuracy":
        found.sort(key=lambda r: (r.test_accuracy is None, -(r.test_accuracy or 0.0)))
    else:
        found.sort(key=lambda r: r.run)
    return found
