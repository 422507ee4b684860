"""The classifiers of the track, built from ``modules``: the linear classifier (one template per
class), the 2-layer net and the MLP, and ``build_model``, the one builder from a config dict.

Parameters carry the cheat sheet's names: W1 [H x D], b1 [H], W2 [K x H], b2 [K] (stored
[out x in], batches as rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.engine import tensor as T
from chainrule.engine.backend import to_numpy
from chainrule.engine.errors import ConfigError
from chainrule.engine.tensor import Tensor
from chainrule.nn.modules import (
    Module,
    ReLU,
    activation_from_name,
    fused_forward,
    init_bias,
    init_weight,
)


class MLP(Module):
    """A multi-layer perceptron: sizes [D, H1, ..., K], the activation between layers.

    Parameters W1 [H1 x D], b1 [H1], W2 [H2 x H1], b2, ..., WL [K x H(L-1)], bL [K]:
    s = WL f(... f(W1 x + b1) ...) + bL.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        rng: np.random.Generator,
        activation: Module | None = None,
        weight_scale: float | None = None,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        if len(sizes) < 2:
            raise ConfigError(f"an MLP needs at least [input, output] sizes, got {list(sizes)}")
        self.sizes = [int(s) for s in sizes]
        self.activation = activation if activation is not None else ReLU()
        self.weight_scale = weight_scale
        gain = 2.0 if isinstance(self.activation, ReLU) else 1.0
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            last = i == len(self.sizes) - 1
            W = init_weight(rng, n_out, n_in, weight_scale, 1.0 if last else gain, dtype)
            setattr(self, f"W{i}", W)
            setattr(self, f"b{i}", init_bias(n_out, dtype))

    @property
    def num_layers(self) -> int:
        """L, the number of (W, b) layers: len(sizes) - 1."""
        return len(self.sizes) - 1

    def layer(self, i: int) -> tuple[Tensor, Tensor]:
        """(W_i, b_i), counting from 1 as the maths does."""
        return getattr(self, f"W{i}"), getattr(self, f"b{i}")

    def forward(self, x: Tensor) -> Tensor:
        """x (N, D) -> scores (N, K)."""
        for i in range(1, self.num_layers):
            x = fused_forward(x, *self.layer(i), self.activation)
        return T.affine(x, *self.layer(self.num_layers))

    def hidden_activations(self, X: np.ndarray) -> list[np.ndarray]:
        """The output of each hidden layer for rows X (N, D), without a graph: [(N, H1), ...],
        NumPy arrays (computed on the model's device)."""
        outs = []
        with T.no_grad():
            x = Tensor(self._on_my_device(np.asarray(X, dtype=self.W1.dtype)))
            for i in range(1, self.num_layers):
                x = fused_forward(x, *self.layer(i), self.activation)
                outs.append(to_numpy(x.data))
        return outs

    def config(self) -> dict[str, Any]:
        return {
            "class": "MLP",
            "sizes": self.sizes,
            "activation": self.activation.name,  # type: ignore[attr-defined]
        }


class TwoLayerNet(MLP):
    """s = W2 f(W1 x + b1) + b2, f = ReLU by default. W1 [H x D], b1 [H], W2 [K x H], b2 [K]."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_classes: int,
        rng: np.random.Generator,
        activation: Module | None = None,
        weight_scale: float | None = None,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        super().__init__(
            [input_size, hidden_size, num_classes], rng, activation, weight_scale, dtype
        )

    def config(self) -> dict[str, Any]:
        return {
            "class": "TwoLayerNet",
            "input_size": self.sizes[0],
            "hidden_size": self.sizes[1],
            "num_classes": self.sizes[2],
            "activation": self.activation.name,  # type: ignore[attr-defined]
        }


class LinearClassifier(Module):
    """s = W x + b: one template (a row of W) per class. W [K x D], b [K].

    Trained with the SVM loss it is a linear SVM, with the softmax loss a softmax classifier.
    Init: W ~ N(0, weight_scale^2), by default weight_scale = 0.001 (small scores at the start, so
    the first losses are the textbook ones: about K - 1 for the SVM, ln K for softmax).
    """

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        rng: np.random.Generator,
        weight_scale: float = 1e-3,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        self.W = init_weight(rng, num_classes, input_size, weight_scale, 1.0, dtype)
        self.b = init_bias(num_classes, dtype)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, D) -> scores (N, K)."""
        return T.affine(x, self.W, self.b)

    def config(self) -> dict[str, Any]:
        return {
            "class": "LinearClassifier",
            "input_size": self.W.shape[1],
            "num_classes": self.W.shape[0],
        }


def build_model(
    config: dict[str, Any], rng: np.random.Generator | None = None, dtype: Any = np.float32
) -> Module:
    """A model from its ``config()`` dict (weights random until a state is loaded), in ``dtype``.

    config: {"class": "LinearClassifier" | "TwoLayerNet" | "MLP", and that class's sizes and
    activation}. Raises ConfigError for an unknown class or activation or a missing key.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    kind = config.get("class")
    try:
        if kind == "LinearClassifier":
            return LinearClassifier(config["input_size"], config["num_classes"], rng, dtype=dtype)
        activation = activation_from_name(config.get("activation", "relu"))
        if kind == "TwoLayerNet":
            return TwoLayerNet(
                config["input_size"],
                config["hidden_size"],
                config["num_classes"],
                rng,
                activation,
                dtype=dtype,
            )
        if kind == "MLP":
            return MLP(config["sizes"], rng, activation, dtype=dtype)
    except KeyError as e:
        raise ConfigError(f"model config for {kind} lacks {e.args[0]!r}") from None
    raise ConfigError(f"unknown model class {kind!r} in the model config")
