"""The cases, and what each contender does in one child process: train (or multiply) and time it.

Every contender agrees on the work, so the seconds compare like with like:

- float32 throughout; weights stored [out x in]; scores = x @ W.T + b.
- initial weights: chainrule's own; torch copies them (scikit-learn cannot take them).
- loss: the mean softmax cross-entropy plus reg * sum(W**2) over the weights, not the biases.
- plain SGD at the case's learning rate; epoch e shuffles with ``epoch_rng(e)``, whose
  first draw is the permutation (as in ``chainrule.fit``), and gathers batches by fancy indexing.

The chainrule contender calls only the public API the README shows, as attributes of the
top-level package: ``chainrule.fit``, ``.evaluate``, ``.nn.TwoLayerNet``, ``.nn.LinearClassifier``,
``.optim.SGD``, ``.optim.Adam``, ``.losses.softmax_loss``. Never a module path (the layers moved
them), so one harness times two source trees of chainrule side by side, an old commit's and
today's (run.py --baseline).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Case:
    """One speed case. hidden_size None: the linear softmax classifier (D -> K)."""

    name: str
    dataset: str  # a name for chainrule.data.load
    input_size: int
    hidden_size: int | None
    num_classes: int
    batch_size: int
    learning_rate: float  # only needs to keep training stable: speed does not depend on it
    reg: float

    def to_json(self) -> dict[str, Any]:
        """The case with its title and architecture, as the results file records it."""
        sizes = (self.input_size, self.hidden_size, self.num_classes)
        kind = ", linear softmax" if self.hidden_size is None else ""
        title = f"{DATASETS[self.dataset]}{kind}, batch {self.batch_size}"
        arch = "-".join(str(s) for s in sizes if s is not None)
        return asdict(self) | {"title": title, "architecture": arch}


DATASETS = {"fashion-mnist": "Fashion-MNIST", "cifar10-jpeg": "CIFAR-10 (JPEG)"}
CASES = {
    c.name: c
    for c in (
        Case("fmnist-128", "fashion-mnist", 784, 512, 10, 128, 1e-2, 1e-4),
        Case("cifar-200", "cifar10-jpeg", 3072, 1000, 10, 200, 1e-3, 1e-4),
        Case("cifar-linear", "cifar10-jpeg", 3072, None, 10, 200, 1e-3, 1e-4),
    )
}
# One net and the linear classifier: both code paths of every contender.
QUICK_CASES = ("fmnist-128", "cifar-linear")

# Time to a test accuracy: one recipe that chainrule and torch both follow.
ACCURACY = Case("accuracy", "fashion-mnist", 784, 512, 10, 128, 1e-3, 0.0)
ACCURACY_TARGET = 0.89


def epoch_rng(epoch: int) -> np.random.Generator:
    """The generator that shuffles epoch ``epoch``: the same batches for every contender."""
    return np.random.default_rng([12345, epoch])


def subset(data: Any, rows: int) -> SimpleNamespace:
    """The first ``rows`` training rows (views) and a little validation data: for warming up."""
    X, y = data.X_train[:rows], data.y_train[:rows]
    return SimpleNamespace(X_train=X, y_train=y, X_val=data.X_val[:256], y_val=data.y_val[:256])


def chainrule_model(case: Case) -> Any:
    import chainrule

    rng = np.random.default_rng(0)
    if case.hidden_size is None:
        return chainrule.nn.LinearClassifier(
            input_size=case.input_size, num_classes=case.num_classes, rng=rng
        )
    return chainrule.nn.TwoLayerNet(
        input_size=case.input_size,
        hidden_size=case.hidden_size,
        num_classes=case.num_classes,
        rng=rng,
    )


def _chainrule_epochs(case: Case, data: Any, optimizer: Any, model: Any, epochs: range) -> Any:
    """``fit`` one epoch per call, epoch e shuffled by epoch_rng(e); yields each EpochRecord.
    (Epoch 0 is the warm-up's, on a subset; the timed epochs are 1, 2, ...)"""
    import chainrule

    for epoch in epochs:
        history = chainrule.fit(
            model,
            data,
            loss=chainrule.losses.softmax_loss,
            optimizer=optimizer,
            epochs=1,
            batch_size=case.batch_size,
            reg=case.reg,
            rng=epoch_rng(epoch),
            progress=False,
        )
        yield history.epochs[0]


def time_chainrule(case: Case, data: Any, warmup_steps: int, timed_epochs: int) -> dict[str, Any]:
    """chainrule's ``fit``; the time is EpochRecord.seconds (the steps, not the evaluation)."""
    import chainrule

    model = chainrule_model(case)
    optimizer = chainrule.optim.SGD(model.parameters(), learning_rate=case.learning_rate)
    warmup = subset(data, warmup_steps * case.batch_size)
    for _ in _chainrule_epochs(case, warmup, optimizer, model, range(1)):
        pass
    records = list(_chainrule_epochs(case, data, optimizer, model, range(1, timed_epochs + 1)))
    return {"seconds": [r.seconds for r in records], "loss": [r.loss for r in records]}


def torch_model(case: Case) -> tuple[Any, list[Any]]:
    """Linear-ReLU-Linear (or one Linear) with chainrule's initial weights; also its weights."""
    import torch

    source = chainrule_model(case)
    if case.hidden_size is None:
        model = torch.nn.Linear(case.input_size, case.num_classes)
        pairs = [(model, "W", "b")]
    else:
        model = torch.nn.Sequential(
            torch.nn.Linear(case.input_size, case.hidden_size),
            torch.nn.ReLU(),
            torch.nn.Linear(case.hidden_size, case.num_classes),
        )
        pairs = [(model[0], "W1", "b1"), (model[2], "W2", "b2")]
    with torch.no_grad():
        for layer, W, b in pairs:
            layer.weight.copy_(torch.from_numpy(np.asarray(getattr(source, W).data)))
            layer.bias.copy_(torch.from_numpy(np.asarray(getattr(source, b).data)))
    return model, [layer.weight for layer, _, _ in pairs]


def torch_optimizer(
    case: Case, model: Any, weights: list[Any], adam: bool = False, fused: bool = False
) -> Any:
    """torch.optim.SGD (or Adam), with L2 PyTorch's own (and quickest) way: ``weight_decay =
    2 * reg`` on the weights, none on the biases; the gradient of reg * sum(W**2) is 2 * reg * W."""
    import torch

    chosen = {id(W) for W in weights}
    others = [p for p in model.parameters() if id(p) not in chosen]
    groups = [
        {"params": weights, "weight_decay": 2 * case.reg},
        {"params": others, "weight_decay": 0.0},
    ]
    if adam:  # fused=None: PyTorch's default, a loop over the parameters, several kernels each
        return torch.optim.Adam(
            groups, lr=case.learning_rate, betas=(0.9, 0.999), eps=1e-8, fused=fused or None
        )
    return torch.optim.SGD(groups, lr=case.learning_rate)


def torch_epoch(
    case: Case, model: Any, weights: list[Any], optimizer: Any, X: Any, y: Any, epoch: int
) -> tuple[float, float]:
    """One epoch over X (N, D), y (N,) as torch tensors: (seconds, mean loss with the L2 term)."""
    import torch
    import torch.nn.functional as F

    start = time.perf_counter()
    order = torch.from_numpy(epoch_rng(epoch).permutation(len(X)))
    loss_sum = 0.0
    for i in range(0, len(X), case.batch_size):
        idx = order[i : i + case.batch_size]
        penalty = 0.0
        if case.reg > 0:  # its value only, before the forward pass, as chainrule's fit takes it
            with torch.no_grad():
                penalty = case.reg * sum(float(torch.dot(W.view(-1), W.view(-1))) for W in weights)
        loss = F.cross_entropy(model(X[idx]), y[idx])
        value = loss.item() + penalty  # chainrule reads every step's loss too
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += value * len(idx)
    return time.perf_counter() - start, loss_sum / len(X)


def time_torch(case: Case, data: Any, warmup_steps: int, timed_epochs: int) -> dict[str, Any]:
    """PyTorch (CPU, eager, float32): the same model, loss, SGD, batches and shuffling."""
    import torch

    model, weights = torch_model(case)
    optimizer = torch_optimizer(case, model, weights)
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)  # shared, not copied
    rows = warmup_steps * case.batch_size
    torch_epoch(case, model, weights, optimizer, X[:rows], y[:rows], 0)
    timed = [
        torch_epoch(case, model, weights, optimizer, X, y, e) for e in range(1, timed_epochs + 1)
    ]
    return {"seconds": [s for s, _ in timed], "loss": [loss for _, loss in timed]}


def sklearn_alpha(reg: float, batch_size: int) -> float:
    """scikit-learn's ``alpha`` for our ``reg``: it adds alpha / 2 * ||W||^2 / n_batch to each
    batch's loss (weight gradient alpha * W / n_batch), we add reg * ||W||^2 (gradient 2 reg W).
    Exact for full batches; an epoch's last, smaller batch gets a slightly stronger penalty."""
    return 2.0 * reg * batch_size


def time_sklearn(case: Case, data: Any, warmup_steps: int, timed_epochs: int) -> dict[str, Any]:
    """MLPClassifier(solver="sgd") without momentum; one ``partial_fit`` is one epoch. It draws
    its own (Glorot) initial weights and shuffles with its own generator: speed depends on
    neither. Timed: the whole call, its input validation included."""
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=() if case.hidden_size is None else (case.hidden_size,),
        solver="sgd",
        learning_rate_init=case.learning_rate,
        momentum=0.0,
        nesterovs_momentum=False,
        batch_size=case.batch_size,
        alpha=sklearn_alpha(case.reg, case.batch_size),
        random_state=0,
    )
    rows = warmup_steps * case.batch_size
    seconds, losses = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "stochastic optimizer: maximum iterations reached"
        clf.partial_fit(
            data.X_train[:rows], data.y_train[:rows], classes=np.arange(case.num_classes)
        )
        for _ in range(timed_epochs):
            start = time.perf_counter()
            clf.partial_fit(data.X_train, data.y_train)
            seconds.append(time.perf_counter() - start)
            losses.append(float(clf.loss_))
    if clf.coefs_[0].dtype != np.float32:
        raise TypeError(f"scikit-learn trained in {clf.coefs_[0].dtype}, not float32")
    return {"seconds": seconds, "loss": losses}


def time_floor(case: Case, data: Any, warmup_steps: int, timed_epochs: int) -> dict[str, Any]:
    """The matrix products of a training step in NumPy float32, and nothing else.

    Two-layer net, five per batch: S1 = X W1^T, S2 = H W2^T; dW2 = dS^T H, dH = dS W2,
    dW1 = dH^T X (no dX: the input needs no gradient). Linear classifier, two: S = X W^T,
    dW = dS^T X. Contiguous slices of X_train, every product into a buffer allocated once: nothing
    training on this BLAS can be faster. Also times, apart, gathering one epoch's shuffled batches.
    """
    rng = np.random.default_rng(0)
    X, B, K = np.ascontiguousarray(data.X_train), case.batch_size, case.num_classes
    H = case.hidden_size or K  # the linear classifier: its "hidden layer" is the scores
    # math.sqrt, a Python float: a NumPy float64 scalar would make the weights float64
    W1 = rng.standard_normal((H, X.shape[1]), dtype=np.float32) * math.sqrt(2 / X.shape[1])
    W2 = rng.standard_normal((K, H), dtype=np.float32) * math.sqrt(1 / H)
    dS = rng.standard_normal((B, K), dtype=np.float32)
    hidden, dhidden = np.empty((B, H), np.float32), np.empty((B, H), np.float32)
    S, dW1, dW2 = np.empty((B, K), np.float32), np.empty_like(W1), np.empty_like(W2)

    def epoch(rows: int) -> float:
        start = time.perf_counter()
        for i in range(0, rows, B):
            x = X[i : i + B]
            h, b = hidden[: len(x)], len(x)
            np.matmul(x, W1.T, out=h)
            if case.hidden_size is None:
                np.matmul(dS[:b].T, x, out=dW1)
                continue
            np.matmul(h, W2.T, out=S[:b])
            np.matmul(dS[:b].T, h, out=dW2)
            np.matmul(dS[:b], W2, out=dhidden[:b])
            np.matmul(dhidden[:b].T, x, out=dW1)
        return time.perf_counter() - start

    if any(a.dtype != np.float32 for a in (X, W1, W2, dS)):  # float64 products are no floor
        raise TypeError("the floor must run in float32")
    epoch(min(warmup_steps * B, len(X)))
    seconds = [epoch(len(X)) for _ in range(timed_epochs)]
    order, start = epoch_rng(1).permutation(len(X)), time.perf_counter()
    for i in range(0, len(X), B):
        _ = X[order[i : i + B]], data.y_train[order[i : i + B]]
    return {"seconds": seconds, "gather_seconds": time.perf_counter() - start}


def accuracy_chainrule(data: Any, max_epochs: int) -> dict[str, Any]:
    """The ACCURACY recipe with ``fit`` and Adam, an epoch at a time, until the target."""
    import chainrule

    model = chainrule_model(ACCURACY)
    optimizer = chainrule.optim.Adam(model.parameters(), learning_rate=ACCURACY.learning_rate)
    seconds, accuracy = [], []
    for record in _chainrule_epochs(ACCURACY, data, optimizer, model, range(max_epochs)):
        seconds.append(record.seconds)
        accuracy.append(chainrule.evaluate(model, data.X_test, data.y_test))
        if accuracy[-1] >= ACCURACY_TARGET:
            break
    return {"seconds": seconds, "accuracy": accuracy}


def accuracy_torch(data: Any, max_epochs: int, fused: bool) -> dict[str, Any]:
    """The same recipe in PyTorch: the same initial weights and batches, torch.optim.Adam
    (``fused``: PyTorch's opt-in single kernel)."""
    import torch

    model, weights = torch_model(ACCURACY)
    optimizer = torch_optimizer(ACCURACY, model, weights, adam=True, fused=fused)
    X, y, X_test = (torch.from_numpy(a) for a in (data.X_train, data.y_train, data.X_test))
    seconds, accuracy = [], []
    for epoch in range(max_epochs):
        seconds.append(torch_epoch(ACCURACY, model, weights, optimizer, X, y, epoch)[0])
        with torch.no_grad():
            predicted = torch.cat([model(x).argmax(1) for x in X_test.split(1024)])
        accuracy.append(float((predicted.numpy() == data.y_test).mean()))
        if accuracy[-1] >= ACCURACY_TARGET:
            break
    return {"seconds": seconds, "accuracy": accuracy}
