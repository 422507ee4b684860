"""Models built from the gates: Module, layers, and the classifiers of the track.

Weights are stored [out x in] as the maths writes them, so a layer computes ``x @ W.T + b`` with
batches as rows: x (N, D) -> scores (N, K). Randomness only through an explicit ``rng``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from chainrule.engine import tensor as T
from chainrule.engine.errors import ConfigError, ShapeError
from chainrule.engine.tensor import Tensor


class Module:
    """Base of every layer and model: parameters, gradients and state by name.

    Parameters are the attributes that are Tensors with ``requires_grad``; sub-modules (attributes
    that are Modules, or lists of them) contribute theirs under a dotted prefix.
    """

    def __call__(self, x: Any) -> Tensor:
        return self.forward(x if isinstance(x, Tensor) else Tensor(x))

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(name, tensor) for every parameter, in the order they were assigned."""
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(f"{prefix}{name}.")
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield from item.named_parameters(f"{prefix}{name}.{i}.")

    def parameters(self) -> list[Tensor]:
        """Every parameter tensor (what an optimizer updates)."""
        return [p for _, p in self.named_parameters()]

    def weights(self) -> list[Tensor]:
        """The parameters that L2 regularization applies to: weight matrices, not biases."""
        return [p for p in self.parameters() if p.ndim >= 2]

    def zero_grad(self) -> None:
        """Forget every parameter's gradient."""
        for p in self.parameters():
            p.grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's values, by name."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Set every parameter from ``state``: names and shapes must match exactly; values are
        cast to each parameter's dtype. The change is in place and recorded on each parameter
        (``Tensor.mark_modified``): a graph recorded before it refuses ``backward()``."""
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise ShapeError(
                f"state does not match the model: missing {missing or 'nothing'}, "
                f"unexpected {unexpected or 'nothing'}"
            )
        for name, p in params.items():  # every shape first: a mismatch changes nothing
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise ShapeError(f"parameter {name}: expected shape {p.shape}, got {value.shape}")
        by = f"{type(self).__name__}.load_state_dict()"
        for name, p in params.items():
            p.data[...] = state[name]  # in place: optimizers hold references to these arrays
            p.mark_modified(by)

    @property
    def input_size(self) -> int:
        """D, the number of features per example the model takes."""
        return self.parameters()[0].shape[1]

    def predict(self, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class labels (N,) int64 for the rows of X (N, D): the argmax of the scores."""
        return np.argmax(self.scores(X, batch_size), axis=1)

    def scores(self, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class scores (N, K) for the rows of X (N, D), in batches, without building a graph."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.input_size:
            raise ShapeError(
                f"the model takes rows of {self.input_size} features, got data of shape {X.shape}"
            )
        dtype = self.parameters()[0].dtype
        with T.no_grad():
            parts = [
                self(Tensor(X[i : i + batch_size].astype(dtype, copy=False))).data
                for i in range(0, len(X), batch_size)
            ]
        return np.concatenate(parts) if parts else np.zeros((0, self.num_classes), dtype)

    @property
    def num_classes(self) -> int:
        """K, the number of scores per example."""
        return self.parameters()[-1].shape[0]

    def config(self) -> dict[str, Any]:
        """What it takes to build this model again (see ``build_model``)."""
        raise NotImplementedError


# --- activations ----------


class Identity(Module):
    """f(x) = x: no non-linearity (the network then collapses into one linear layer)."""

    name = "identity"

    def forward(self, x: Tensor) -> Tensor:
        return x


class ReLU(Module):
    """f(x) = max(x, 0), with f'(0) = 0."""

    name = "relu"

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Sigmoid(Module):
    """f(x) = 1 / (1 + e^-x)."""

    name = "sigmoid"

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Tanh(Module):
    """f(x) = tanh(x)."""

    name = "tanh"

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "identity": Identity,
}


def activation_from_name(name: str) -> Module:
    """The activation module for ``name`` (one of ACTIVATIONS), or a ConfigError."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r} (choose from {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]()


# --- layers ----------


def init_weight(
    rng: np.random.Generator,
    out_size: int,
    in_size: int,
    scale: float | None,
    gain: float,
    dtype: np.dtype | type,
) -> Tensor:
    """A weight (out_size, in_size) drawn from N(0, std^2), std = scale or sqrt(gain / in_size).

    gain 2 is He's choice for ReLU (it keeps the variance of activations steady through layers),
    gain 1 LeCun's for tanh, sigmoid and linear outputs.
    """
    if out_size < 1 or in_size < 1:
        raise ConfigError(f"layer sizes must be positive, got {out_size} x {in_size}")
    std = scale if scale is not None else np.sqrt(gain / in_size)
    W = rng.standard_normal((out_size, in_size), dtype=np.float64) * std
    return Tensor(W.astype(dtype), requires_grad=True)


class Linear(Module):
    """scores = x @ W.T + b. W: (out_size, in_size), b: (out_size,), x: (N, in_size).

    Init: W ~ N(0, gain / in_size) (He for gain 2, LeCun for 1), or N(0, weight_scale^2) when
    weight_scale is given; b = 0.
    """

    def __init__(
        self,
        in_size: int,
        out_size: int,
        rng: np.random.Generator,
        gain: float = 2.0,
        weight_scale: float | None = None,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        self.W = init_weight(rng, out_size, in_size, weight_scale, gain, dtype)
        self.b = Tensor(np.zeros(out_size, dtype=dtype), requires_grad=True)

    def forward(self, x: Tensor) -> Tensor:
        return T.affine(x, self.W, self.b)


class Sequential(Module):
    """Layers applied in order. A Linear followed by a ReLU runs as one fused affine+ReLU gate."""

    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)

    def forward(self, x: Tensor) -> Tensor:
        i, layers = 0, self.layers
        while i < len(layers):
            layer = layers[i]
            if (
                isinstance(layer, Linear)
                and i + 1 < len(layers)
                and isinstance(layers[i + 1], ReLU)
            ):
                x = T.affine_relu(x, layer.W, layer.b)
                i += 2
            else:
                x = layer(x)
                i += 1
        return x


# --- the classifiers of the track ----------


def _hidden(x: Tensor, W: Tensor, b: Tensor, activation: Module) -> Tensor:
    if isinstance(activation, ReLU):
        return T.affine_relu(x, W, b)  # fused: one buffer for the hidden layer, not three
    return activation(T.affine(x, W, b))


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
            setattr(self, f"b{i}", Tensor(np.zeros(n_out, dtype=dtype), requires_grad=True))

    @property
    def num_layers(self) -> int:
        return len(self.sizes) - 1

    def layer(self, i: int) -> tuple[Tensor, Tensor]:
        """(W_i, b_i), counting from 1 as the maths does."""
        return getattr(self, f"W{i}"), getattr(self, f"b{i}")

    def forward(self, x: Tensor) -> Tensor:
        for i in range(1, self.num_layers):
            x = _hidden(x, *self.layer(i), self.activation)
        return T.affine(x, *self.layer(self.num_layers))

    def hidden_activations(self, X: np.ndarray) -> list[np.ndarray]:
        """The output of each hidden layer for rows X (N, D), without a graph: [(N, H1), ...]."""
        outs = []
        with T.no_grad():
            x = Tensor(X.astype(self.W1.dtype, copy=False))
            for i in range(1, self.num_layers):
                x = _hidden(x, *self.layer(i), self.activation)
                outs.append(x.data)
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
        self.b = Tensor(np.zeros(num_classes, dtype=dtype), requires_grad=True)

    def forward(self, x: Tensor) -> Tensor:
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
    """A model from its ``config()`` dict (weights random until a state is loaded)."""
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
