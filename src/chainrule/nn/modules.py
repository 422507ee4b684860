"""Module, the activations and the dense layer, and the one rule that fuses a dense layer with
its ReLU. The classifiers of the track (built from these) are in ``models``.

Weights are stored [out x in] as the maths writes them, so a layer computes ``x @ W.T + b`` with
batches as rows: x (N, D) -> scores (N, K). Randomness only through an explicit ``rng``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.engine import backend
from chainrule.engine import tensor as T
from chainrule.engine.errors import ConfigError, ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.nn.parameter import decays, init_bias, init_weight


class Module:
    """Base of every layer and model: parameters, gradients and state by name.

    Parameters are the attributes that are Tensors with ``requires_grad``; sub-modules (attributes
    that are Modules, or lists of them) contribute theirs under a dotted prefix.
    """

    def __call__(self, x: Any) -> Tensor:
        """``forward`` on x (N, D), a Tensor or an array; returns the output (N, K). Rows on
        another device than a moved model's (NumPy rows for a model on the GPU) are moved to
        its device first (a Tensor so moved becomes a new leaf)."""
        data = x.data if isinstance(x, Tensor) else x
        if getattr(self, "_device", "cpu") != "cpu":  # (set by ``to``: one look on the CPU)
            data = self._on_my_device(data)
        if not isinstance(x, Tensor) or data is not x.data:
            x = Tensor(data)
        return self.forward(x)

    @property
    def device(self) -> str:
        """Where the parameters live: ``"cpu"`` or ``"cuda:N"``."""
        return backend.device_of(self.parameters()[0].data)

    def to(self, device: str) -> Module:
        """Move every parameter to ``device`` (``"cpu"``: NumPy, ``"cuda"``: CuPy on the GPU),
        in place (same Parameter objects, new arrays); returns self. Gradients are dropped.
        Build the optimizer after moving, or move it too (``Optimizer.to``). Raises
        DeviceError (backend) when CuPy or a GPU is missing."""
        for p in self.parameters():
            p.data, p.grad = backend.to_device(p.data, device), None
            p.mark_modified(f"{type(self).__name__}.to({device!r})")
        self._device = self.device
        return self

    def _on_my_device(self, x: Any) -> Any:
        """x in the parameters' array module (NumPy rows, for example, to a model on a GPU)."""
        if backend.is_numpy(x) == backend.is_numpy(self.parameters()[0].data):
            return x
        return backend.to_device(x, self.device) if backend.is_numpy(x) else backend.to_numpy(x)

    def forward(self, x: Tensor) -> Tensor:
        """The output for a batch x (N, D) (each model's docstring gives the shapes)."""
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
        """The parameters L2 regularization applies to: weights, not biases (see ``decays``)."""
        return [p for p in self.parameters() if decays(p)]

    def zero_grad(self) -> None:
        """Forget every parameter's gradient."""
        for p in self.parameters():
            p.grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's values, by name, as NumPy arrays whatever the device (a
        model file is the same safetensors from the CPU or the GPU)."""
        return {name: backend.to_numpy(p.data).copy() for name, p in self.named_parameters()}

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
            value = backend.to_numpy(state[name])
            if value.shape != p.shape:
                raise ShapeError(f"parameter {name}: expected shape {p.shape}, got {value.shape}")
        by = f"{type(self).__name__}.load_state_dict()"
        for name, p in params.items():
            p.data[...] = backend.like(
                state[name], p.data
            )  # in place: optimizers hold these arrays
            p.mark_modified(by)

    @property
    def input_size(self) -> int:
        """D, the number of features per example the model takes."""
        return self.parameters()[0].shape[1]

    def predict(self, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class labels (N,) int64 for the rows of X (N, D): the argmax of the scores."""
        return np.argmax(self.scores(X, batch_size), axis=1)

    def scores(self, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class scores (N, K) for the rows of X (N, D), in batches, without building a graph.

        X: NumPy rows, or rows on the model's device; a model on a GPU computes there, batch by
        batch, and the scores come back as a NumPy array either way."""
        X = X if backend.is_array(X) and not backend.is_numpy(X) else np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.input_size:
            raise ShapeError(
                f"the model takes rows of {self.input_size} features, got data of shape {X.shape}"
            )
        dtype = self.parameters()[0].dtype
        xp, n = backend.namespace(X), X.shape[0]
        with T.no_grad():
            parts = [
                backend.to_numpy(
                    self(xp.astype(X[i : min(i + batch_size, n), ...], dtype, copy=False)).data
                )
                for i in range(0, n, batch_size)
            ]
        return np.concatenate(parts) if parts else np.zeros((0, self.num_classes), dtype)

    @property
    def num_classes(self) -> int:
        """K, the number of scores per example."""
        return self.parameters()[-1].shape[0]

    def config(self) -> dict[str, Any]:
        """What it takes to build this model again (see ``models.build_model``)."""
        raise NotImplementedError


# --- activations ----------


class Identity(Module):
    """f(x) = x: no non-linearity (the network then collapses into one linear layer)."""

    name = "identity"

    def forward(self, x: Tensor) -> Tensor:
        """x itself, any shape."""
        return x


class ReLU(Module):
    """f(x) = max(x, 0), with f'(0) = 0."""

    name = "relu"

    def forward(self, x: Tensor) -> Tensor:
        """max(x, 0) elementwise, any shape."""
        return x.relu()


class Sigmoid(Module):
    """f(x) = 1 / (1 + e^-x)."""

    name = "sigmoid"

    def forward(self, x: Tensor) -> Tensor:
        """1 / (1 + e^-x) elementwise, any shape."""
        return x.sigmoid()


class Tanh(Module):
    """f(x) = tanh(x)."""

    name = "tanh"

    def forward(self, x: Tensor) -> Tensor:
        """tanh(x) elementwise, any shape."""
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


# --- the dense layer, and the one fusion rule ----------


def runs_fused(activation: Module | None) -> bool:
    """Whether a dense layer followed by ``activation`` runs as one fused affine+ReLU gate
    (``fused_forward``'s rule; the graph drawing asks it too, to draw the gates that run)."""
    return isinstance(activation, ReLU)


def fused_forward(x: Tensor, W: Tensor, b: Tensor, activation: Module | None) -> Tensor:
    """activation(x @ W.T + b), the one place that decides when a layer runs fused.

    x: (N, D), W: (M, D), b: (M,) -> (N, M). A ReLU runs in one gate with its affine
    (``affine_relu``: one (N, M) buffer for the hidden layer, not three; the same numbers); any
    other activation runs after the ``affine`` gate; None: the affine alone.
    """
    if runs_fused(activation):
        return T.affine_relu(x, W, b)
    out = T.affine(x, W, b)
    return out if activation is None else activation(out)


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
        self.b = init_bias(out_size, dtype)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, in_size) -> (N, out_size)."""
        return T.affine(x, self.W, self.b)


class Sequential(Module):
    """Layers applied in order. A Linear followed by an activation runs as ``fused_forward``
    says (a Linear and a ReLU: one fused affine+ReLU gate)."""

    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, D) through every layer in turn."""
        i, layers = 0, self.layers
        while i < len(layers):
            layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, Linear) and isinstance(after, tuple(ACTIVATIONS.values())):
                x, i = fused_forward(x, layer.W, layer.b, after), i + 2
            else:
                x, i = layer(x), i + 1
        return x
