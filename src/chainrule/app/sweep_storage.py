"""Where a sweep's study lives, and the bookkeeping that keeps its trial count exact.

With no ``--storage`` the study is an Optuna journal file in the sweep folder (``study.log``):
one machine, no server. ``--storage postgresql://USER@HOST/DB`` puts it in PostgreSQL
(Optuna's RDBStorage, psycopg 3), so that workers on any number of machines join one study.

The trial count: only COMPLETE and PRUNED trials count toward ``--trials``. A trial cut off
mid-way (kill -9, a machine lost) stays RUNNING in the storage until someone notices: a worker
fails the RUNNING trials of dead processes on its own host at once (each trial records
``host:pid``), and the trials of other hosts once their heartbeat is older than the grace period
(RDBStorage's heartbeat). So a sweep started again with the same command neither loses a trial
nor counts one twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chainrule.engine.errors import ChainruleError, ConfigError

JOURNAL_FILE = "study.log"
# Seconds between a trial's heartbeats in a database, and how long one may be silent before its
# trial is failed: long enough for a busy machine, short enough that a restart is not held up.
HEARTBEAT_SECONDS = 20
GRACE_SECONDS = 60
# A RUNNING trial without an owner was cut off between its creation and its first write.
UNOWNED_SECONDS = 30
STUDY_ATTR = "chainrule"  # the study's user attribute: the fixed settings of the sweep
COUNTED = ("COMPLETE", "PRUNED")


class StorageError(ChainruleError, ConnectionError):
    """A storage that cannot be reached or used (exit status 1: the server may be down)."""


def database_url(storage: str) -> str:
    """The SQLAlchemy URL for ``--storage``: postgresql://... gets psycopg 3 as its driver
    (``postgresql+psycopg://``) unless one is named. Raises ConfigError for a URL that is not
    one (no ``scheme://``)."""
    if "://" not in storage:
        raise ConfigError(
            f"--storage {storage!r} is not a database URL (e.g. "
            "postgresql://USER@HOST/DB); leave it out for a study file in the sweep folder"
        )
    scheme, rest = storage.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return storage


def shown_url(storage: str) -> str:
    """``storage`` with its password hidden, for messages and summaries."""
    from sqlalchemy.engine import make_url

    with contextlib.suppress(Exception):  # anything unparsable is shown by its scheme alone
        return make_url(storage).render_as_string(hide_password=True)
    return storage.split("://", 1)[0] + "://..."


class _FlockLock:
    """The journal file's lock as an fcntl lock, which the kernel drops when its process dies:
    a sweep killed while writing leaves no stale lock behind (Optuna's default lock file is only
    broken after a grace period). For one machine; not for NFS."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the lock
            self.fd = None


def open_storage(storage: str | None, folder: Path) -> Any:
    """The Optuna storage: a journal file ``folder/study.log`` when ``storage`` is None, else
    an RDBStorage for the database URL, with heartbeats. Raises ConfigError for a bad URL or a
    refused login (wrong user, password or database: exit status 2) and StorageError for a
    server that cannot be reached (exit status 1)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if storage is None:
        folder.mkdir(parents=True, exist_ok=True)
        # The backend only calls acquire and release (its lock base class is not public).
        lock: Any = _FlockLock(folder / "study.lock")
        return optuna.storages.JournalStorage(
            JournalFileBackend(str(folder / JOURNAL_FILE), lock_obj=lock)
        )
    url = database_url(storage)
    for attempt in range(5):
        try:
            with _quiet_optuna():
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"pool_pre_ping": True},
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=GRACE_SECONDS,
                )
        except ImportError as e:
            raise ConfigError(f"--storage {shown_url(storage)}: no driver for it ({e})") from None
        except Exception as e:  # SQLAlchemy's errors wrap the driver's; their text is common
            error, text = _storage_error(storage, e), str(e)
            # Two workers starting on an empty database both make Optuna's tables; the loser
            # of that race finds them made a moment later.
            race = "duplicate key" in text or "already exists" in text
            if not race or attempt == 4:
                raise error from None
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _storage_error(storage: str, error: Exception) -> ChainruleError:
    """One line for a database that refused us, could not be reached, or failed."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    detail = text[0] if text else type(error).__name__
    if "connection failed:" in detail:  # psycopg: 'connection failed: connection to server...'
        detail = detail.split("connection failed:", 1)[1].strip()
    where = shown_url(storage)
    refused = ("password authentication failed", "does not exist", "no password supplied")
    if any(r in detail for r in refused):
        return ConfigError(f"--storage {where}: the server refused the login: {detail}")
    if type(error).__name__ == "OperationalError":
        return StorageError(f"cannot reach the database at {where}: {detail}")
    return StorageError(f"the database at {where} failed: {detail}")


@contextlib.contextmanager
def _quiet_optuna() -> Any:
    """Optuna's experimental-feature warnings (the heartbeat) are ours to choose, not the
    user's to read on every start."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def check_study(study: Any, settings: dict[str, Any], name: str, where: str) -> None:
    """Record ``settings`` (dataset, model and the other fixed settings of the sweep) on a new
    study; refuse a study that holds another sweep's. Raises ConfigError (exit status 2), naming
    the first setting that differs, or saying that the study is not a chainrule sweep."""
    saved = study.user_attrs.get(STUDY_ATTR)
    if saved is None:
        if any(t.state.name in COUNTED for t in study.get_trials(deepcopy=False)):
            raise ConfigError(
                f"study {name!r} in {where} is not a chainrule sweep (it has trials but no "
                "settings of ours): use another --study"
            )
        study.set_user_attr(STUDY_ATTR, settings)
        return
    for key in ("dataset", "model", *sorted(settings)):
        if saved.get(key) != settings.get(key):
            raise ConfigError(
                f"study {name!r} in {where} is a sweep with {key} {saved.get(key)!r}, not "
                f"{settings.get(key)!r}: use another --study (its trials are kept as they are)"
            )


def this_worker() -> str:
    """``host:pid``: what a trial records of the process that runs it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def fail_dead_trials(study: Any) -> list[int]:
    """Mark FAIL the RUNNING trials that no process will finish: those of dead processes on this
    host, those that never recorded an owner, and (through the heartbeat of a database) those
    of silent workers elsewhere. Returns their numbers."""
    import optuna
    from optuna.trial import TrialState

    with _quiet_optuna():
        optuna.storages.fail_stale_trials(study)  # no-op without a heartbeat (the journal)
    host = socket.gethostname()
    now = datetime.now()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("worker")
        if owner is None:
            started = trial.datetime_start or now
            dead = now - started > timedelta(seconds=UNOWNED_SECONDS)
        else:
            owner_host, _, pid = owner.rpartition(":")
            dead = owner_host == host and pid.isdigit() and not _alive(int(pid))
        if dead:
            with contextlib.suppress(RuntimeError, ValueError):  # another worker did it first
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
                failed.append(trial.number)
    return failed


class Counts(Counter):
    """How many trials of a study are in each state: "complete", "pruned", "running", "failed"
    and "surplus" (failed on purpose: started after the count was reached elsewhere); 0 for
    a state no trial is in. ``done`` is what counts toward --trials."""

    @property
    def done(self) -> int:
        return self["complete"] + self["pruned"]


def count_trials(trials: list[Any]) -> Counts:
    """The counts of a study's trials (``FrozenTrial``s); WAITING ones (enqueued, not yet
    started) count nowhere."""
    counts = Counts()
    for t in trials:
        name = {"FAIL": "failed"}.get(t.state.name, t.state.name.lower())
        if name == "failed" and t.user_attrs.get("surplus"):
            name = "surplus"
        if name != "waiting":
            counts[name] += 1
    return counts


def is_surplus(trials: list[Any], number: int, wanted: int) -> bool:
    """Whether trial ``number``, just created, would take the study past ``wanted`` counted
    trials: the finished trials plus the RUNNING ones created before it already make
    ``wanted``. Two workers that ask at once both see each other's trial: the later one
    (higher number) is the surplus, so the count ends exact."""
    ahead = sum(
        1
        for t in trials
        if t.state.name in COUNTED or (t.state.name == "RUNNING" and t.number < number)
    )
    return ahead >= wanted
