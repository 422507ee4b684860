"""What a sweep searches: the ranges of learning rate, regularization, hidden size, optimizer and
batch size, read from the command line (``--lr 1e-4:1e-1``, ``--hidden 64,128``) or a TOML/JSON
file, checked before anything runs, and turned into one ``TrainConfig`` per Optuna trial.

Learning rate and regularization are searched on a log scale (CS231n's advice: they act
multiplicatively, so 1e-4..1e-3 matters as much as 1e-2..1e-1); the other three are choices.
A range with one value (``--lr 0.01``, ``--optimizer adam``) fixes that setting.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainrule.engine.errors import ConfigError
from chainrule.nn import optim
from chainrule.training.config import LINEAR_MODELS, TrainConfig

# The searched settings: name -> (how the command line spells it, kind). "log": a float range
# LOW:HIGH sampled on a log scale; "int" / "name": a comma-separated list of choices.
SEARCHED = {
    "lr": ("--lr", "log"),
    "reg": ("--reg", "log"),
    "hidden": ("--hidden", "int"),
    "optimizer": ("--optimizer", "name"),
    "batch_size": ("--batch-size", "int"),
}
DEFAULTS = {
    "lr": "1e-4:1e-1",
    "reg": "1e-6:1e-1",
    "hidden": "64,128,256,512",
    "optimizer": "momentum,adam",
    "batch_size": "32,64,128,256",
}


@dataclass(frozen=True)
class Range:
    """One searched setting: a log-scale float range (low, high) or a tuple of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    def to_json(self) -> Any:
        return [self.low, self.high] if self.choices == () else list(self.choices)


@dataclass(frozen=True)
class SearchSpace:
    """The five ranges of a sweep; ``suggest`` draws one trial's values from an Optuna trial."""

    lr: Range
    reg: Range
    hidden: Range
    optimizer: Range
    batch_size: Range

    def ranges(self) -> list[Range]:
        return [getattr(self, name) for name in SEARCHED]

    def to_json(self) -> dict[str, Any]:
        """{name: [low, high] or [choice, ...]}: what the study records and --json prints."""
        return {r.name: r.to_json() for r in self.ranges()}

    def suggest(self, trial: Any, model: str) -> dict[str, Any]:
        """One trial's values, drawn through ``trial`` (an ``optuna.Trial``): lr and reg with
        ``suggest_float(log=True)``, the others with ``suggest_categorical``. A linear model has
        no hidden layer, so hidden is not drawn for it. Returns {name: value}."""
        values: dict[str, Any] = {}
        for r in self.ranges():
            if r.name == "hidden" and model in LINEAR_MODELS:
                continue
            if r.choices:
                values[r.name] = trial.suggest_categorical(r.name, list(r.choices))
            else:
                values[r.name] = trial.suggest_float(r.name, r.low, r.high, log=True)
        return values


def parse_range(name: str, text: str | list[Any] | tuple[Any, ...]) -> Range:
    """One setting's range, from the command line's text or a space file's value.

    name: a key of ``SEARCHED``. For lr and reg: "LOW:HIGH" (or [LOW, HIGH]), 0 < LOW <= HIGH,
    or one number; for hidden and batch_size: "64,128" (or [64, 128]) of positive integers; for
    optimizer: names of ``nn.optim.OPTIMIZERS``. Raises ConfigError (exit status 2) for an
    empty, inverted, non-positive or unknown range, naming the option and what would work.
    """
    flag, kind = SEARCHED[name]
    shown = text if isinstance(text, str) else json.dumps(list(text))
    if kind == "log":
        low, high = _bounds(flag, text, shown)
        return Range(name, low=low, high=high)
    items = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    if not items or any(item in ("", None) for item in items):
        raise ConfigError(
            f"{flag} {shown!r} is empty: give one or more values, separated by commas, e.g. "
            f"{flag} {DEFAULTS[name]}"
        )
    if kind == "name":
        unknown = [str(i) for i in items if i not in optim.OPTIMIZERS]
        if unknown:
            raise ConfigError(
                f"{flag}: unknown optimizer {unknown[0]!r} (choose from "
                f"{', '.join(optim.OPTIMIZERS)})"
            )
        return Range(name, choices=tuple(dict.fromkeys(items)))
    values = [_positive_int(flag, item, shown) for item in items]
    return Range(name, choices=tuple(dict.fromkeys(values)))


def _bounds(flag: str, text: Any, shown: str) -> tuple[float, float]:
    """LOW, HIGH of a log-scale range; refuses what a log scale cannot take."""
    parts = text.split(":") if isinstance(text, str) else list(text)
    if isinstance(text, str) and len(parts) == 1:
        parts = parts * 2  # one number: the setting is fixed
    example = f"e.g. {flag} 1e-4:1e-1"
    if len(parts) != 2 or any(str(p).strip() == "" for p in parts):
        raise ConfigError(f"{flag} {shown!r} is not a range LOW:HIGH ({example})")
    try:
        low, high = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} {shown!r}: LOW and HIGH must be numbers ({example})") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0:
        raise ConfigError(
            f"{flag} {shown!r}: both ends must be finite and above 0 (the range is searched on "
            f"a log scale; {example})"
        )
    if low > high:
        raise ConfigError(
            f"{flag} {shown!r} is inverted: LOW must not exceed HIGH (did you mean "
            f"{flag} {parts[1]}:{parts[0]}?)"
        )
    return low, high


def _positive_int(flag: str, item: Any, shown: str) -> int:
    try:
        value = int(item)
    except (TypeError, ValueError):
        value = 0
    if isinstance(item, bool) or value < 1 or str(value) != str(item).strip():
        raise ConfigError(f"{flag} {shown!r}: {item!r} is not a positive integer")
    return value


def read_space_file(path: str | Path) -> dict[str, Any]:
    """The ranges a TOML or JSON search-space file gives, e.g. ``lr = [1e-4, 1e-1]`` and
    ``hidden = [64, 128]`` (JSON: the same as an object). Keys are those of ``SEARCHED``
    (``batch-size`` may be spelled with a dash). Raises ConfigError for a missing or malformed
    file and an unknown key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"--space {path}: cannot read it ({e.strerror})") from None
    try:
        obj = json.loads(text) if path.suffix == ".json" else _toml().loads(text)
    except ValueError as e:  # JSONDecodeError and TOMLDecodeError are both ValueErrors
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ConfigError(f"--space {path} is not valid {kind} ({e})") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"--space {path} must hold an object of ranges")
    ranges = {str(k).replace("-", "_"): v for k, v in obj.items()}
    unknown = sorted(set(ranges) - set(SEARCHED))
    if unknown:
        raise ConfigError(
            f"--space {path}: unknown setting {unknown[0]!r} (the searched ones: "
            f"{', '.join(SEARCHED)})"
        )
    return ranges


def _toml() -> Any:
    """The standard library's TOML reader (Python 3.11+), else tomli where installed."""
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(
                "--space: reading TOML needs Python 3.11 or the tomli package; or give a .json file"
            ) from None
    return tomllib


def search_space(given: dict[str, Any], space_file: str | Path | None = None) -> SearchSpace:
    """The search space: each setting's range from ``given`` (the command line's text or a
    list; None: not given), else from ``space_file``, else ``DEFAULTS``. Raises ConfigError."""
    from_file = read_space_file(space_file) if space_file else {}
    ranges = {}
    for name in SEARCHED:
        value = given.get(name)
        if value is None:
            value = from_file.get(name, DEFAULTS[name])
        ranges[name] = parse_range(name, value)
    return SearchSpace(**ranges)


def trial_config(base: TrainConfig, values: dict[str, Any], depth: int = 2) -> TrainConfig:
    """``base`` (the sweep's fixed settings) with one trial's values put in. hidden: one size,
    for the one hidden layer of two-layer, or ``depth`` layers of that size for mlp."""
    changes = {k: v for k, v in values.items() if k != "hidden"}
    if "hidden" in values:
        layers = 1 if base.model == "two-layer" else depth
        changes["hidden"] = [int(values["hidden"])] * layers
    return dataclasses.replace(base, **changes)
