"""The one table of names and settings that a training run is checked against.

As scikit-learn's ``_parameter_constraints``: every setting has one rule in ``SETTINGS``, and the
command line (its choices and defaults), ``TrainConfig`` (a run's settings, from the command line,
the library or a config.json) and ``loop.fit`` (its numeric arguments) all check against it. The
names of activations, losses and optimizers live beside what they name (``nn.ACTIVATIONS``,
``nn.losses.LOSSES``, ``nn.optim.OPTIMIZERS``), augmentations beside theirs
(``augment.AUGMENTATIONS``); the model names are here (``MODELS``), and ``model_config`` turns one
into the dict that ``nn.build_model``, the one builder of models, takes.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.data import DATASETS
from chainrule.engine.errors import ConfigError, DataError
from chainrule.nn import ACTIVATIONS, optim
from chainrule.nn.losses import LOSSES
from chainrule.training.augment import AUGMENTATIONS

MODELS = ("linear-svm", "softmax", "two-layer", "mlp")
LINEAR_MODELS = ("linear-svm", "softmax")
# A run folder's config.json is what TrainConfig.to_json writes: its name, and the marker that
# makes a folder a run (see app.runfolders).
CONFIG_FILE = "config.json"
RUN_FORMAT = "chainrule-run-1"


@dataclass(frozen=True)
class Setting:
    """One setting's rule: what it must be, in words, and the check; optional ones may be None."""

    expected: str
    check: Callable[[Any], bool]
    optional: bool = False
    choices: tuple[str, ...] | None = None  # the names allowed, for a setting that is a name

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` keeps the rule (None only for an optional setting). Never raises."""
        return (value is None and self.optional) or (value is not None and self.check(value))


def _integer(v: Any, least: int) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= least


def _number(v: Any) -> bool:
    return (
        isinstance(v, int | float | np.integer | np.floating)
        and not isinstance(v, bool)
        and math.isfinite(v)
    )


def _one_of(names: Iterable[str], optional: bool = False) -> Setting:
    choices = tuple(names)
    return Setting(f"one of {', '.join(choices)}", lambda v: v in choices, optional, choices)


def _lr_decay(v: Any) -> bool:
    if v == "cosine":
        return True
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        return False
    try:
        gamma = float(v)
    except ValueError:
        return False
    return 0 < gamma <= 1  # False for NaN too


def _val_size(v: Any) -> bool:
    return _integer(v, 1) or (_number(v) and not isinstance(v, int | np.integer) and 0 < v < 1)


def _hidden(v: Any) -> bool:
    return isinstance(v, list | tuple) and len(v) > 0 and all(_integer(h, 1) for h in v)


# (kind, index) pairs --device takes: cpu, cuda, cuda:0 ... cuda:15
_DEVICES = {("cpu", ""), ("cuda", "")} | {("cuda", str(i)) for i in range(16)}

# One table for every setting (as scikit-learn's _parameter_constraints): TrainConfig checks its
# values against it, whether they come from the command line, the library or a config.json; the
# command line takes its choices from it, and fit checks its numeric arguments with its rules.
SETTINGS: dict[str, Setting] = {
    "dataset": _one_of(DATASETS),
    "data_dir": Setting("a folder", lambda v: isinstance(v, str) and v != "", optional=True),
    "root": Setting("a folder or archive", lambda v: isinstance(v, str) and v != "", True),
    "model": _one_of(MODELS),
    "hidden": Setting("a list of positive integers", _hidden),
    "activation": _one_of(ACTIVATIONS),
    "loss": _one_of(LOSSES, optional=True),
    "optimizer": _one_of(optim.OPTIMIZERS),
    "lr": Setting("a positive number", lambda v: _number(v) and v > 0),
    "lr_decay": Setting("a factor per epoch in (0, 1], or 'cosine'", _lr_decay),
    "reg": Setting("a number >= 0", lambda v: _number(v) and v >= 0),
    "epochs": Setting("a positive integer", lambda v: _integer(v, 1)),
    "batch_size": Setting("a positive integer", lambda v: _integer(v, 1)),
    "seed": Setting("an integer >= 0", lambda v: _integer(v, 0)),
    "val_size": Setting(
        "a fraction in (0, 1) or a count >= 1 of the training images held out for validation "
        "(training keeps the weights of the best validation epoch, so it needs at least one)",
        _val_size,
    ),
    "standardize": Setting("true or false", lambda v: isinstance(v, bool)),
    "max_train": Setting("a positive integer", lambda v: _integer(v, 1), optional=True),
    "max_test": Setting("a positive integer", lambda v: _integer(v, 1), optional=True),
    "augment": _one_of(AUGMENTATIONS),
    "patience": Setting("a positive integer (epochs)", lambda v: _integer(v, 1), optional=True),
    "device": Setting("cpu, cuda or cuda:N", lambda v: str(v).partition(":")[::2] in _DEVICES),
}
# Settings added after the first runs were saved: a config.json without them means this default.
ADDED_LATER = {"augment": "none", "patience": None, "device": "cpu"}


def check_setting(
    name: str, value: Any, label: str | None = None, expected: str | None = None
) -> None:
    """Refuse ``value`` unless it keeps the rule of ``SETTINGS[name]``.

    label: how the caller calls it in the message (default ``name``; the command line's
    ``--flag``); expected: the rule in the caller's words (default: the table's).
    Raises ConfigError: "<label> must be <expected>, got <value>".
    """
    rule = SETTINGS[name]
    if not rule.accepts(value):
        raise ConfigError(f"{label or name} must be {expected or rule.expected}, got {value!r}")


def default_loss(model: str) -> str:
    """The loss (a name in ``nn.losses.LOSSES``) a model trains with when none is named: the
    multiclass hinge for the linear SVM, softmax cross-entropy for every other model."""
    return "svm" if model == "linear-svm" else "softmax"


def model_config(
    model: str,
    input_size: int,
    num_classes: int,
    hidden: Sequence[int] = (),
    activation: str = "relu",
) -> dict[str, Any]:
    """The config dict ``nn.build_model`` takes for a model name (one of ``MODELS``).

    input_size: D; num_classes: K; hidden: the hidden sizes [H1, ...] (two-layer uses H1, linear
    models none); activation: one of ``nn.ACTIVATIONS``. Raises ConfigError for an unknown name.
    """
    if model in LINEAR_MODELS:
        return {"class": "LinearClassifier", "input_size": input_size, "num_classes": num_classes}
    if model == "two-layer":
        return {
            "class": "TwoLayerNet",
            "input_size": input_size,
            "hidden_size": hidden[0],
            "num_classes": num_classes,
            "activation": activation,
        }
    if model == "mlp":
        return {
            "class": "MLP",
            "sizes": [input_size, *hidden, num_classes],
            "activation": activation,
        }
    raise ConfigError(f"unknown model {model!r} (choose from {', '.join(MODELS)})")


@dataclass
class TrainConfig:
    """Every setting of a training run, as JSON-able values, checked against ``SETTINGS``.

    Raises ConfigError naming the first setting that breaks its rule. ``data_dir`` and ``root``
    are stored as absolute paths, so a run can be evaluated or resumed from any folder.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    root: str | None = None
    model: str = "two-layer"
    hidden: list[int] = field(default_factory=lambda: [100])
    activation: str = "relu"
    loss: str | None = None  # None: svm for linear-svm, softmax otherwise
    optimizer: str = "momentum"
    lr: float = 0.05
    lr_decay: str = "1.0"  # a factor per epoch, or "cosine"
    reg: float = 1e-3
    epochs: int = 50
    batch_size: int = 64
    seed: int = 0
    val_size: float = 0.1
    standardize: bool = False
    max_train: int | None = None
    max_test: int | None = None
    augment: str = "none"  # or "flip"
    patience: int | None = None  # stop after this many epochs without a better validation
    device: str = "cpu"  # or "cuda" (CuPy on the GPU; issue 24)

    def __post_init__(self) -> None:
        for name in SETTINGS:
            check_setting(name, getattr(self, name), "--" + name.replace("_", "-"))
        self.hidden = [int(h) for h in self.hidden]
        if self.model == "linear-svm" and self.loss not in (None, "svm"):
            raise ConfigError("linear-svm is trained with the svm loss; use --model softmax")
        if self.model == "softmax" and self.loss not in (None, "softmax"):
            raise ConfigError(
                "the softmax classifier uses the softmax loss; use --model linear-svm"
            )
        if self.model == "two-layer" and len(self.hidden) != 1:
            raise ConfigError(
                f"two-layer takes one hidden size, got {self.hidden}; use --model mlp"
            )
        if self.dataset == "image-folder" and self.root is None:
            raise ConfigError(
                "--dataset image-folder needs --root: a folder of train/<class>/ and "
                "test/<class>/ images, or a .tar.gz of one"
            )
        if self.dataset != "image-folder" and self.root is not None:
            raise ConfigError(f"--root is for --dataset image-folder, not {self.dataset}")
        self.data_dir = _absolute(self.data_dir)
        self.root = _absolute(self.root)

    @property
    def loss_name(self) -> str:
        """The loss this run trains with: the one named, or the model's default."""
        return self.loss or default_loss(self.model)

    def model_config(self, input_size: int, num_classes: int) -> dict[str, Any]:
        """The model this config names, as the dict ``nn.build_model`` takes, for rows of
        ``input_size`` features and ``num_classes`` classes."""
        return model_config(self.model, input_size, num_classes, self.hidden, self.activation)

    def weights_rng(self) -> np.random.Generator:
        """The generator of the initial weights: seeded by [seed, 1], apart from the one that
        shuffles the batches ([seed, 2]), so a run repeats to the bit."""
        return np.random.default_rng([self.seed, 1])

    def schedule(self) -> optim.Schedule:
        """The learning-rate schedule that ``lr_decay`` names."""
        if str(self.lr_decay) == "cosine":
            return optim.CosineDecay(self.epochs)
        gamma = float(self.lr_decay)
        return optim.Constant() if gamma == 1 else optim.StepDecay(gamma)

    def to_json(self) -> dict[str, Any]:
        """What config.json holds: chainrule's run marker, then every setting."""
        return {"format": RUN_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, obj: Any, source: str = CONFIG_FILE) -> TrainConfig:
        """The config ``to_json`` wrote. Anything else raises DataError naming ``source`` and the
        setting: not an object, another format, an unknown or missing setting, a bad value."""
        if not isinstance(obj, dict):
            raise DataError(
                f"{source} holds a JSON {type(obj).__name__}, not an object of settings"
            )
        obj = dict(obj)
        fmt = obj.pop("format", RUN_FORMAT)  # runs made before the marker have none
        if fmt != RUN_FORMAT:
            raise DataError(f"{source}: format {fmt!r} is not {RUN_FORMAT!r}")
        unknown = sorted(set(obj) - set(SETTINGS))
        if unknown:
            raise DataError(
                f"{source}: unknown setting {unknown[0]!r} (from a newer chainrule, or edited?)"
            )
        missing = [name for name in SETTINGS if name not in obj and name not in ADDED_LATER]
        if missing:
            raise DataError(f"{source}: the setting {missing[0]!r} is missing")
        for name, value in obj.items():
            rule = SETTINGS[name]
            if not rule.accepts(value):
                also = " or null" if rule.optional else ""
                raise DataError(f"{source}: {name} is {value!r}; expected {rule.expected}{also}")
        try:
            return cls(**obj)
        except ConfigError as e:
            raise DataError(f"{source}: {e}") from None


def _absolute(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(os.path.expanduser(path))
