"""Extracting the features of many images in worker processes that a signal stops at once.

The era table's features (HOG runs one image at a time in scikit-image) are extracted chunk by
chunk, in a process pool when there are workers to spare. Ctrl-C reaches every process of the
terminal's group: the workers ignore SIGINT and SIGTERM and leave them to the parent, which
kills the workers at once (they hold nothing to save) and lets the exception propagate, so the
command ends with one line instead of a traceback per worker or a hang on a dead worker's pipe.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from chainrule.data import Preprocessing
from chainrule.engine.errors import DataError
from chainrule.lessons import features


def to_images(X: np.ndarray, preprocessing: Preprocessing, shape: tuple[int, ...]) -> np.ndarray:
    """Preprocessed rows X (N, D) -> the images they came from, (N, *shape) float32 in [0, 1].

    preprocessing: what made the rows (``Preprocessing.invert`` undoes it, to 0..scale);
    shape: one image's (H, W[, C]), with H * W * C = D."""
    raw = preprocessing.invert(X) / np.float32(preprocessing.scale)
    return np.clip(raw, 0, 1).reshape(-1, *shape)


def _extract_rows(
    X: np.ndarray, preprocessing: Preprocessing, shape: tuple[int, ...]
) -> np.ndarray:
    # Takes only what it needs: a worker process is sent these, not the whole Dataset.
    return features.extract(to_images(X, preprocessing, shape)).X


def _ignore_signals() -> None:
    """A worker's first act: leave SIGINT and SIGTERM to the parent, which stops the workers.
    (Ctrl-C reaches every process of the terminal's group: without this, each worker would die
    with its own traceback, and a dead worker can leave the parent waiting on a pipe.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextlib.contextmanager
def _signal_handlers(handler: Any) -> Iterator[None]:
    """SIGINT and SIGTERM go to ``handler`` inside the block, and back to their handlers after.
    Only the main thread can set them: elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


def signals_ignored() -> contextlib.AbstractContextManager[None]:
    """SIGINT and SIGTERM ignored inside the block: a second Ctrl-C must not interrupt the
    stopping of the workers after the first."""
    return _signal_handlers(signal.SIG_IGN)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM only noted inside the block, and raised again as it ends.

    The workers are forked inside it. An exception from a signal handler must not arrive
    between a fork and the pool's note of the new process (that worker would be missed by the
    clean-up and outlive us), nor inside Python's at-fork hooks (where it is swallowed). A
    signal that arrived just before the block has its Python handler run inside it, so the
    handlers themselves are swapped for a note (blocking the signal would not stop that).
    """
    noted: list[int] = []
    with _signal_handlers(lambda signum, frame: noted.append(signum)):
        yield
    if noted:
        signal.raise_signal(noted[0])  # now to the handler from before


def extract_all(
    chunks: Sequence[np.ndarray],
    preprocessing: Preprocessing,
    shape: tuple[int, ...],
    workers: int = 1,
    progress: bool = False,
) -> list[np.ndarray]:
    """Features of each chunk of preprocessed rows (n_i, D) -> [(n_i, F)] float32, in order.

    preprocessing: what made the rows (inverted to get the images back); shape: one image's
    (H, W[, C]). workers > 1: a process pool whose workers ignore SIGINT and SIGTERM. Any
    exception here (KeyboardInterrupt from Ctrl-C, ``Interrupted`` from SIGTERM under
    ``signals_raise``, an error) kills the workers at once, with further signals ignored
    meanwhile, and propagates; a worker that dies on its own raises DataError instead of
    leaving the pool waiting. progress: a bar of images on stderr, when it is a terminal.
    """
    bar = _bar(progress, sum(len(c) for c in chunks))
    try:
        if workers <= 1:
            results = []
            for chunk in chunks:
                results.append(_extract_rows(chunk, preprocessing, shape))
                bar.update(len(chunk))
            return results
        return _extract_in_pool(chunks, preprocessing, shape, workers, bar)
    finally:
        bar.close()


def _extract_in_pool(
    chunks: Sequence[np.ndarray],
    preprocessing: Preprocessing,
    shape: tuple[int, ...],
    workers: int,
    bar: Any,
) -> list[np.ndarray]:
    """``extract_all`` with ``workers`` processes; ``bar`` is updated as chunks finish."""
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    # fork starts workers at once and shares the parent's imports; spawn where it is missing
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_signals)
    try:
        with _signals_deferred():  # the workers are forked here
            futures = [pool.submit(_extract_rows, c, preprocessing, shape) for c in chunks]
        for future, chunk in zip(futures, chunks):
            future.result()
            bar.update(len(chunk))
        with _signals_deferred():  # a signal now stops what follows, not the shutdown
            pool.shutdown(wait=True)
        return [f.result() for f in futures]
    except BaseException as err:
        with signals_ignored():
            pool.shutdown(wait=False, cancel_futures=True)
            for child in multiprocessing.active_children():  # the pool's workers
                child.kill()  # SIGKILL: they ignore SIGTERM, and hold nothing to save
            for child in multiprocessing.active_children():
                child.join(5)
            pool.shutdown(wait=True)  # its thread ends once the workers are gone
        if isinstance(err, BrokenProcessPool):
            raise DataError(
                f"feature extraction failed: a worker process died ({err}); out of memory? "
                "try --workers 1"
            ) from None
        raise


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(enabled: bool, total: int) -> Any:
    """A tqdm bar of images on stderr when enabled and stderr is a terminal, else a stand-in."""
    if not (enabled and sys.stderr.isatty()):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="features", unit="image", file=sys.stderr, leave=False)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM under ``signals_raise``; signum says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def signals_raise() -> contextlib.AbstractContextManager[None]:
    """Inside the block SIGINT and SIGTERM raise ``Interrupted`` (in the main thread), so that
    SIGTERM too unwinds the stack and stops the worker processes, like Ctrl-C does."""

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    return _signal_handlers(handler)
