"""The era table: raw pixels vs hand-designed features, linear classifiers vs a 2-layer net.

Before 2012 the recipe was: design features by hand (HOG, colour histograms), then train a
linear classifier on them. A net learns its features from the pixels instead. Six rows, each
trained with the settings written in the table (SGD with momentum 0.9, mini-batches, L2 on the
weights, the best-validation epoch kept) and scored once on the test split:

    linear SVM / softmax on pixels     (the images as preprocessed by ``data.load``)
    linear SVM / softmax on features   (HOG + hue histogram, standardized with train-only numbers)
    2-layer net on pixels / on features

Features are computed from the images (``preprocessing.invert`` gives the pixels back) and cached
in the cache folder, keyed by a hash of the data, so a second comparison skips the extraction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import nn
from chainrule.data import Dataset, Preprocessing, files
from chainrule.engine.errors import ConfigError, DataError
from chainrule.lessons import features
from chainrule.nn import optim
from chainrule.nn.losses import LOSSES
from chainrule.training import config
from chainrule.training.loop import Splits, evaluate, fit

FEATURES_VERSION = 1  # part of the cache key: bump it when the recipe in features.py changes
CHUNK_ROWS = 5000  # rows turned into images and features at a time (bounded memory)

# How results name the datasets (the JPEG re-encoding is not the official CIFAR-10).
DISPLAY_NAMES = {
    "cifar10-jpeg": "CIFAR-10 (JPEG)",
    "cifar10": "CIFAR-10",
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "digits": "8x8 digits",
}

# The CS231n reference (official CIFAR-10, their assignment 1), for the Markdown's note.
CS231N_REFERENCE = (
    "CS231n reference on official CIFAR-10: linear SVM about 0.39 on pixels and 0.44-0.50 on "
    "features; 2-layer net about 0.52 on pixels and 0.55-0.60 on features."
)


@dataclass(frozen=True)
class RowSpec:
    """One row of the table: a model, its inputs and its training settings.

    model: "linear-svm", "softmax" or "two-layer" (ReLU, softmax loss). inputs: "pixels" or
    "features". lr_decay: the learning rate is multiplied by it after every epoch.
    """

    label: str
    model: str
    inputs: str
    lr: float
    reg: float
    epochs: int
    batch_size: int = 128
    hidden: int = 0
    lr_decay: float = 1.0

    def settings(self) -> str:
        """The settings as one short line for the table."""
        parts = []
        if self.hidden:
            parts.append(f"{self.hidden} ReLU units")
        parts += [f"lr {self.lr:g}", f"reg {self.reg:g}", f"{self.epochs} epochs"]
        parts.append(f"batch {self.batch_size}")
        if self.lr_decay != 1.0:
            parts.append(f"lr ×{self.lr_decay:g}/epoch")
        return ", ".join(parts)


# The models of the era table: the one table's (config.MODELS) without the deeper MLP.
MODELS = tuple(m for m in config.MODELS if m != "mlp")

# Chosen on the validation split of CIFAR-10 (JPEG), a few values each (see docs/tour.md).
DEFAULT_ROWS: tuple[RowSpec, ...] = (
    RowSpec("linear SVM", "linear-svm", "pixels", lr=1e-3, reg=1e-3, epochs=10),
    RowSpec("softmax", "softmax", "pixels", lr=1e-3, reg=1e-3, epochs=10),
    RowSpec("linear SVM", "linear-svm", "features", lr=1e-3, reg=1e-3, epochs=10),
    RowSpec("softmax", "softmax", "features", lr=1e-3, reg=1e-3, epochs=10),
    RowSpec(
        "2-layer net", "two-layer", "pixels", lr=0.01, reg=1e-3, epochs=20, hidden=100, lr_decay=0.9
    ),
    RowSpec(
        "2-layer net",
        "two-layer",
        "features",
        lr=0.01,
        reg=1e-3,
        epochs=20,
        hidden=500,
        lr_decay=0.9,
    ),
)


@dataclass
class RowResult:
    """A trained row: its spec, accuracies and the training time (features not included)."""

    spec: RowSpec
    test_accuracy: float
    val_accuracy: float
    best_epoch: int
    seconds: float


COLUMNS = ("model", "input", "D", "settings", "test accuracy", "train time")


@dataclass
class Comparison:
    """The whole table, with what it was computed on."""

    dataset: str
    n_train: int
    n_val: int
    n_test: int
    pixel_dims: int
    feature_dims: dict[str, int]
    feature_seconds: float
    features_cached: bool
    rows: list[RowResult] = field(default_factory=list)

    def _cells(self) -> list[list[str]]:
        dims = {"pixels": self.pixel_dims, "features": sum(self.feature_dims.values())}
        return [
            [
                r.spec.label,
                r.spec.inputs,
                str(dims[r.spec.inputs]),
                r.spec.settings(),
                f"{r.test_accuracy:.4f}",
                f"{r.seconds:.1f} s",
            ]
            for r in self.rows
        ]

    def features_summary(self) -> str:
        """E.g. "HOG 324 + hue 10 = 334 numbers per image, computed in 9.1 s for all 60000
        images"."""
        if not self.feature_dims:
            return "none (no row uses them)"
        names = {"hog": "HOG"}
        parts = " + ".join(f"{names.get(k, k)} {n}" for k, n in self.feature_dims.items())
        how = "read from the cache" if self.features_cached else "computed"
        total = self.n_train + self.n_val + self.n_test
        return (
            f"{parts} = {sum(self.feature_dims.values())} numbers per image, "
            f"{how} in {self.feature_seconds:.1f} s for all {total} images"
        )

    def features_line(self) -> str:
        return f"features: {self.features_summary()}"

    def header_line(self) -> str:
        return (
            f"{self.dataset}: {self.n_train} training, {self.n_val} validation, "
            f"{self.n_test} test images"
        )

    def table(self) -> str:
        """A fixed-width text table for the terminal."""
        cells = self._cells()
        widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(COLUMNS)]
        right = {2, 4, 5}

        def line(values: Sequence[str]) -> str:
            return "  ".join(
                v.rjust(w) if i in right else v.ljust(w)
                for i, (v, w) in enumerate(zip(values, widths))
            ).rstrip()

        return "\n".join(
            [self.header_line(), self.features_line(), "", line(COLUMNS)]
            + [line(["-" * w for w in widths])]
            + [line(row) for row in cells]
        )

    def markdown(self) -> str:
        """The table as Markdown, with the setup above it."""
        name = DISPLAY_NAMES.get(self.dataset, self.dataset)
        lines = [
            f"# Pixels vs hand-designed features: {name}",
            "",
            f"{self.n_train} training, {self.n_val} validation and {self.n_test} test images. "
            "Every row: SGD with momentum 0.9, the hinge (SVM) or softmax loss, L2 on the "
            "weights, the best-validation epoch kept, scored once on the test split. Train time "
            "is the training alone (features are computed once, before).",
            "",
            "- **Pixels**: the rows as `chainrule.data.load` gives them (scaled to [0, 1], "
            "centred with the training mean).",
            "- **Features**: HOG of the grayscale image (4x4 cells, 9 orientations, 2x2 blocks, "
            "L2-Hys), plus for colour images a 10-bin hue histogram weighted by saturation; "
            "standardized with the training mean and std. " + self.features_summary() + ".",
            "",
            "| " + " | ".join(COLUMNS) + " |",
            "| --- | --- | ---: | --- | ---: | ---: |",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self._cells()]
        if self.dataset.startswith("cifar10"):
            lines += ["", CS231N_REFERENCE]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        obj = dataclasses.asdict(self)
        for row in obj["rows"]:
            row["settings"] = RowSpec(**row["spec"]).settings()
        return obj


# --- features of a dataset, cached ----------


def images_of(X: np.ndarray, data: Dataset) -> np.ndarray:
    """Preprocessed rows X (N, D) -> images (N, H, W[, C]) in [0, 1], float32."""
    return _images(X, data.preprocessing, data.image_shape)


def _images(X: np.ndarray, preprocessing: Preprocessing, shape: tuple[int, ...]) -> np.ndarray:
    raw = preprocessing.invert(X) / np.float32(preprocessing.scale)
    return np.clip(raw, 0, 1).reshape(-1, *shape)


def _extract_rows(
    X: np.ndarray, preprocessing: Preprocessing, shape: tuple[int, ...]
) -> np.ndarray:
    # Takes only what it needs: a worker process is sent these, not the whole Dataset.
    return features.extract(_images(X, preprocessing, shape)).X


def _cache_key(data: Dataset) -> str:
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"v{FEATURES_VERSION} {data.name} {data.image_shape}".encode())
    for X in (data.X_train, data.X_val, data.X_test):
        digest.update(str(X.shape).encode())
        digest.update(np.ascontiguousarray(X).data)
    return digest.hexdigest()


def feature_splits(
    data: Dataset,
    cache_dir: Path | None = None,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, int], float, bool]:
    """HOG (+ hue histogram) of every split: ({"train": (N, F), "val": ..., "test": ...},
    {block: columns}, seconds, read_from_cache). Unstandardized float32.

    cache_dir: where to keep them (``<cache_dir>/features/<dataset>-<hash>.npz``); None: no cache.
    workers: processes for the extraction (HOG runs one image at a time in scikit-image).
    log: gets a line when the extraction starts and ends, or where the features were read from.
    progress: draw a bar of images on stderr while extracting, when it is a terminal.
    SIGINT or SIGTERM during the extraction stops the workers at once (see ``extract_all``).
    """
    log = log or (lambda line: None)
    start = time.perf_counter()
    probe = features.extract(images_of(data.X_train[:1], data))
    parts = probe.parts
    width = sum(parts.values())
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "features" / f"{data.name}-{_cache_key(data)}.npz"
        splits = _read_cached(path, data, width)
        if splits is not None:
            log(f"features: {width} per image, read from the cache ({path})")
            return splits, parts, time.perf_counter() - start, True
    chunks = [
        (split, X[i : i + CHUNK_ROWS])
        for split, X in (("train", data.X_train), ("val", data.X_val), ("test", data.X_test))
        for i in range(0, len(X), CHUNK_ROWS)
    ]
    total = sum(len(c) for _, c in chunks)
    used = workers if workers > 1 and len(chunks) > 1 else 1
    log(
        f"extracting features of {total:,} images ({used} process{'es' if used > 1 else ''})"
        + (f"; they are then cached in {path.parent}" if path is not None else "")
    )
    results = extract_all(
        [c for _, c in chunks], data.preprocessing, data.image_shape, used, progress
    )
    splits = {}
    for split in ("train", "val", "test"):
        blocks = [r for (s, _), r in zip(chunks, results) if s == split]
        splits[split] = np.concatenate(blocks) if blocks else np.zeros((0, width), np.float32)
    seconds = time.perf_counter() - start
    done = f"features: {width} per image, computed in {seconds:.1f} s"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **splits)
        files.atomic_write_bytes(path, buffer.getvalue())
        done += f"; cached in {path} ({path.stat().st_size / 1e6:.0f} MB)"
    log(done)
    return splits, parts, seconds, False


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
    """Features of each chunk of preprocessed rows (n_i, D) -> [(n_i, F)], in order.

    workers > 1: a process pool whose workers ignore SIGINT and SIGTERM. Any exception here
    (KeyboardInterrupt from Ctrl-C, ``Interrupted`` from SIGTERM under ``signals_raise``, an
    error) kills the workers at once, with further signals ignored meanwhile, and propagates;
    a worker that dies on its own raises DataError instead of leaving the pool waiting.
    """
    from concurrent.futures.process import BrokenProcessPool

    bar = _bar(progress, sum(len(c) for c in chunks))
    try:
        if workers <= 1:
            results = []
            for chunk in chunks:
                results.append(_extract_rows(chunk, preprocessing, shape))
                bar.update(len(chunk))
            return results
        import multiprocessing

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
    finally:
        bar.close()


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


def _read_cached(path: Path, data: Dataset, width: int) -> dict[str, np.ndarray] | None:
    """The cached features, or None when there are none or the file does not fit (then they
    are computed again and the file replaced)."""
    import zipfile

    if not path.is_file():
        return None
    expected = {"train": len(data.X_train), "val": len(data.X_val), "test": len(data.X_test)}
    try:
        with np.load(path) as saved:
            splits = {k: saved[k] for k in expected}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    if any(splits[k].shape != (n, width) for k, n in expected.items()):
        return None
    return splits


# --- training the rows ----------


def train_row(
    spec: RowSpec,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    num_classes: int,
    seed: int,
) -> tuple[nn.Module, Any, float]:
    """Train one row's model on float32 rows; returns (model, History, seconds)."""
    rng = np.random.default_rng([seed, 1])
    D = X_train.shape[1]
    if spec.model not in MODELS:
        raise ConfigError(f"a row's model is one of {', '.join(MODELS)}, got {spec.model!r}")
    model = nn.build_model(config.model_config(spec.model, D, num_classes, [spec.hidden]), rng)
    schedule = optim.StepDecay(spec.lr_decay) if spec.lr_decay != 1.0 else None
    start = time.perf_counter()
    history = fit(
        model,
        Splits(X_train, y_train, X_val, y_val),
        loss=LOSSES[config.default_loss(spec.model)],
        optimizer=optim.Momentum(model.parameters(), spec.lr),
        epochs=spec.epochs,
        batch_size=min(spec.batch_size, len(X_train)),
        reg=spec.reg,
        rng=np.random.default_rng([seed, 2]),
        schedule=schedule,
        progress=False,
    )
    return model, history, time.perf_counter() - start


def compare(
    data: Dataset,
    rows: Sequence[RowSpec] = DEFAULT_ROWS,
    epochs: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> Comparison:
    """Train every row on ``data`` and score it on the test split.

    epochs: override every row's epochs (e.g. for a quick look). log: gets a line per step.
    progress: a bar while the features are extracted (on a terminal).
    """
    log = log or (lambda line: None)
    if not rows:
        raise ConfigError("a comparison needs at least one row")
    if epochs is not None:
        if epochs < 1:
            raise ConfigError(f"epochs must be a positive integer, got {epochs}")
        rows = [dataclasses.replace(r, epochs=epochs) for r in rows]
    for r in rows:  # all checked before the (slow) features and the first training
        if r.inputs not in ("pixels", "features"):
            raise ConfigError(f"a row's inputs are 'pixels' or 'features', got {r.inputs!r}")
        if r.model not in MODELS:
            raise ConfigError(f"a row's model is one of {', '.join(MODELS)}, got {r.model!r}")
    need_features = any(r.inputs == "features" for r in rows)
    feats: dict[str, np.ndarray] = {}
    parts: dict[str, int] = {}
    seconds, cached = 0.0, False
    if need_features:
        raw, parts, seconds, cached = feature_splits(data, cache_dir, workers, log, progress)
        train, (val, test) = features.standardize(raw["train"], raw["val"], raw["test"])
        feats = {"train": train, "val": val, "test": test}
    result = Comparison(
        dataset=data.name,
        n_train=len(data.X_train),
        n_val=len(data.X_val),
        n_test=len(data.X_test),
        pixel_dims=data.num_features,
        feature_dims=parts,
        feature_seconds=seconds,
        features_cached=cached,
    )
    for spec in rows:
        if spec.inputs == "pixels":
            X_train, X_val, X_test = data.X_train, data.X_val, data.X_test
        else:
            X_train, X_val, X_test = feats["train"], feats["val"], feats["test"]
        model, history, took = train_row(
            spec, X_train, data.y_train, X_val, data.y_val, data.num_classes, seed
        )
        row = RowResult(
            spec,
            test_accuracy=evaluate(model, X_test, data.y_test),
            val_accuracy=history.best_val_accuracy,
            best_epoch=history.best_epoch,
            seconds=took,
        )
        result.rows.append(row)
        log(f"{spec.label} on {spec.inputs}: test accuracy {row.test_accuracy:.4f} ({took:.1f} s)")
    return result
