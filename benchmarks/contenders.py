"""The contenders: one epoch of mini-batch SGD by chainrule, PyTorch, scikit-learn, and the floor.

Each ``time_*`` function trains (or, for the floor, multiplies) for a short warm-up and then for
``timed_epochs`` full epochs over ``data.X_train`` and returns the seconds of each timed epoch.
The conventions they share, so the numbers compare like with like:

- float32 throughout; weights stored [out x in]; scores = x @ W.T + b.
- initial weights: chainrule's own (He N(0, 2/fan_in) for the hidden layer, N(0, 1/fan_in) for
  the output layer, N(0, 1e-3^2) for the linear classifier; zero biases). torch copies them.
- loss: mean softmax cross-entropy + reg * sum(W**2) over the weights, not the biases.
- plain SGD at the case's learning rate; each epoch a fresh permutation, mini-batches gathered
  by fancy indexing.
"""

from __future__ import annotations

import math
import time
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np

from cases import AccuracyRecipe, Case


def _warmup_data(data: Any, rows: int) -> SimpleNamespace:
    """The first ``rows`` training rows (views, no copy) as a small data set for warming up."""
    rows = min(rows, len(data.X_train))
    return SimpleNamespace(
        X_train=data.X_train[:rows],
        y_train=data.y_train[:rows],
        X_val=data.X_val[:256],
        y_val=data.y_val[:256],
    )


def chainrule_model(case: Case | AccuracyRecipe, seed: int) -> Any:
    """The case's model with chainrule's initialization (torch copies these weights)."""
    from chainrule.nn import LinearClassifier, TwoLayerNet

    rng = np.random.default_rng(seed)
    if case.hidden_size is None:
        return LinearClassifier(case.input_size, case.num_classes, rng)
    return TwoLayerNet(case.input_size, case.hidden_size, case.num_classes, rng)


# --- chainrule ----------


def chainrule_setup(case: Case, seed: int, train_eval_size: int) -> tuple[Any, dict[str, Any]]:
    """The case's model and the ``fit`` keyword arguments every chainrule measurement uses:
    plain SGD at the case's rate, its batch size and reg, a generator seeded ``seed + 1``."""
    from chainrule.optim import SGD

    model = chainrule_model(case, seed)
    options = dict(
        optimizer=SGD(model.parameters(), case.learning_rate),
        batch_size=case.batch_size,
        reg=case.reg,
        rng=np.random.default_rng(seed + 1),
        progress=False,
        train_eval_size=train_eval_size,
    )
    return model, options


def time_chainrule(
    case: Case, data: Any, warmup_steps: int, timed_epochs: int, seed: int
) -> dict[str, Any]:
    """chainrule's own ``fit``, one epoch per call; EpochRecord.seconds covers the steps only."""
    from chainrule import fit

    # fit's accuracy checks are not timed; keep them short
    model, options = chainrule_setup(case, seed, train_eval_size=1000)
    fit(model, _warmup_data(data, warmup_steps * case.batch_size), epochs=1, **options)
    seconds, losses, walls = [], [], []
    for _ in range(timed_epochs):
        start = time.perf_counter()
        history = fit(model, data, epochs=1, **options)
        walls.append(time.perf_counter() - start)
        seconds.append(history.epochs[0].seconds)
        losses.append(history.epochs[0].loss)
    return {"epoch_seconds": seconds, "fit_call_seconds": walls, "loss": losses}


# --- PyTorch ----------


def torch_model(case: Case | AccuracyRecipe, seed: int) -> tuple[Any, list[Any]]:
    """Linear-ReLU-Linear (or one Linear) with chainrule's initial weights; also the weights."""
    import torch

    source = chainrule_model(case, seed)
    if case.hidden_size is None:
        model = torch.nn.Linear(case.input_size, case.num_classes)
        layers = [(model, source.W, source.b)]
    else:
        model = torch.nn.Sequential(
            torch.nn.Linear(case.input_size, case.hidden_size),
            torch.nn.ReLU(),
            torch.nn.Linear(case.hidden_size, case.num_classes),
        )
        layers = [(model[0], source.W1, source.b1), (model[2], source.W2, source.b2)]
    with torch.no_grad():
        for layer, W, b in layers:
            layer.weight.copy_(torch.from_numpy(W.data))
            layer.bias.copy_(torch.from_numpy(b.data))
    return model, [layer.weight for layer, _, _ in layers]


def _torch_epoch(
    model: Any,
    weights: list[Any],
    optimizer: Any,
    X: Any,
    y: Any,
    batch_size: int,
    reg: float,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """One epoch over X (N, D), y (N,) as torch tensors; (seconds, mean loss)."""
    import torch
    import torch.nn.functional as F

    n = len(X)
    start = time.perf_counter()
    order = torch.from_numpy(rng.permutation(n))
    rng.integers(2**63)  # fit draws an augmentation key per epoch: keep the generators in step
    loss_sum = 0.0
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        penalty = 0.0
        if reg > 0:  # before the forward pass, where chainrule's fit takes it too (see fit)
            with torch.no_grad():
                penalty = reg * sum(float(torch.dot(W.view(-1), W.view(-1))) for W in weights)
        scores = model(X[idx])
        loss = F.cross_entropy(scores, y[idx])
        # chainrule reads every step's loss too, the L2 term's value included
        value = loss.item() + penalty
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()  # the L2 gradient: the optimizer's weight_decay (torch_param_groups)
        loss_sum += value * len(idx)
    return time.perf_counter() - start, loss_sum / n


def torch_param_groups(model: Any, weights: list[Any], reg: float) -> list[dict[str, Any]]:
    """The parameters for a torch optimizer, the L2 term PyTorch's own (and quickest) way:
    ``weight_decay = 2 * reg`` on the weights, none on the biases. The gradient of
    ``reg * sum(W**2)`` is ``2 * reg * W``: the same maths as chainrule's ``fit(reg=...)``."""
    chosen = {id(W) for W in weights}
    others = [p for p in model.parameters() if id(p) not in chosen]
    return [{"params": weights, "weight_decay": 2 * reg}, {"params": others, "weight_decay": 0.0}]


def time_torch(
    case: Case, data: Any, threads: int, warmup_steps: int, timed_epochs: int, seed: int
) -> dict[str, Any]:
    """PyTorch (CPU, eager, float32) with the same model, loss, SGD, batches and shuffling."""
    import torch

    torch.set_num_threads(threads)
    model, weights = torch_model(case, seed)
    optimizer = torch.optim.SGD(torch_param_groups(model, weights, case.reg), lr=case.learning_rate)
    rng = np.random.default_rng(seed + 1)
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)  # shared, not copied
    rows = min(warmup_steps * case.batch_size, len(X))
    args = (case.batch_size, case.reg, rng)
    _torch_epoch(model, weights, optimizer, X[:rows], y[:rows], *args)
    seconds, losses = [], []
    for _ in range(timed_epochs):
        s, loss = _torch_epoch(model, weights, optimizer, X, y, *args)
        seconds.append(s)
        losses.append(loss)
    return {"epoch_seconds": seconds, "loss": losses}


# --- scikit-learn ----------


def sklearn_alpha(reg: float, batch_size: int) -> float:
    """scikit-learn's ``alpha`` equal to our ``reg``.

    scikit-learn adds (alpha / 2) * ||W||^2 / n_batch to each batch's mean loss, so its weight
    gradient gets alpha * W / n_batch; ours is reg * ||W||^2 with gradient 2 * reg * W. Equal
    when alpha = 2 * reg * batch_size (exact for full batches; the last, smaller batch of an
    epoch gets a slightly stronger penalty in scikit-learn).
    """
    return 2.0 * reg * batch_size


def time_sklearn(
    case: Case, data: Any, warmup_steps: int, timed_epochs: int, seed: int
) -> dict[str, Any]:
    """MLPClassifier(solver="sgd", no momentum), one ``partial_fit`` (= one epoch) per timing."""
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=() if case.hidden_size is None else (case.hidden_size,),
        activation="relu",
        solver="sgd",
        learning_rate="constant",
        learning_rate_init=case.learning_rate,
        momentum=0.0,
        nesterovs_momentum=False,
        batch_size=case.batch_size,
        alpha=sklearn_alpha(case.reg, case.batch_size),
        shuffle=True,
        random_state=seed,
        early_stopping=False,
    )
    classes = np.arange(case.num_classes)
    rows = min(warmup_steps * case.batch_size, len(data.X_train))
    seconds, losses = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(data.X_train[:rows], data.y_train[:rows], classes=classes)
        for _ in range(timed_epochs):
            start = time.perf_counter()
            clf.partial_fit(data.X_train, data.y_train)
            seconds.append(time.perf_counter() - start)
            losses.append(float(clf.loss_))
    return {
        "epoch_seconds": seconds,
        "loss": losses,
        "coef_dtype": str(clf.coefs_[0].dtype),
        "alpha": clf.alpha,
    }


# --- the floor ----------


def time_floor(
    case: Case, data: Any, warmup_steps: int, timed_epochs: int, seed: int
) -> dict[str, Any]:
    """The matrix products of a training step in NumPy float32, and nothing else.

    Two-layer net, five products per batch: S1 = X W1^T, S2 = H W2^T; dW2 = dS^T H, dH = dS W2,
    dW1 = dH^T X (no dX: the input needs no gradient). Linear classifier, two: S = X W^T,
    dW = dS^T X. Batches are contiguous slices of X_train; every product writes into a buffer
    allocated once. Also measures, apart, what gathering one epoch's shuffled batches costs.
    """
    rng = np.random.default_rng(seed)
    X = np.ascontiguousarray(data.X_train)
    n, D = X.shape
    B, K = case.batch_size, case.num_classes

    def randn(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    if case.hidden_size is None:
        W, dS, S, dW = randn(K, D) * 1e-3, randn(B, K), np.empty((B, K), np.float32), randn(K, D)
        arrays = [X, W, dS, S, dW]

        def epoch(rows: int) -> float:
            start = time.perf_counter()
            for i in range(0, rows, B):
                x = X[i : i + B]
                b = len(x)
                np.matmul(x, W.T, out=S[:b])
                np.matmul(dS[:b].T, x, out=dW)
            return time.perf_counter() - start
    else:
        H = case.hidden_size
        # math.sqrt, a Python float: a NumPy float64 scalar would make the weights float64.
        W1, W2 = randn(H, D) * math.sqrt(2 / D), randn(K, H) * math.sqrt(1 / H)
        dS = randn(B, K)
        hidden, dhidden, S = (np.empty(s, np.float32) for s in ((B, H), (B, H), (B, K)))
        dW1, dW2 = np.empty_like(W1), np.empty_like(W2)
        arrays = [X, W1, W2, dS, hidden, dhidden, S, dW1, dW2]

        def epoch(rows: int) -> float:
            start = time.perf_counter()
            for i in range(0, rows, B):
                x = X[i : i + B]
                b = len(x)
                h = hidden[:b]
                np.matmul(x, W1.T, out=h)
                np.matmul(h, W2.T, out=S[:b])
                np.matmul(dS[:b].T, h, out=dW2)
                np.matmul(dS[:b], W2, out=dhidden[:b])
                np.matmul(dhidden[:b].T, x, out=dW1)
            return time.perf_counter() - start

    if any(a.dtype != np.float32 for a in arrays):  # float64 products would be no floor
        raise TypeError(f"the floor must run in float32, got {[str(a.dtype) for a in arrays]}")
    epoch(min(warmup_steps * B, n))
    seconds = [epoch(n) for _ in range(timed_epochs)]
    # Not part of the floor: the cost every real contender pays to gather shuffled batches.
    order = np.random.default_rng(seed + 1).permutation(n)
    start = time.perf_counter()
    for i in range(0, n, B):
        idx = order[i : i + B]
        _ = X[idx], data.y_train[idx]
    gather = time.perf_counter() - start
    return {"epoch_seconds": seconds, "gather_seconds": gather}


# --- time to reach a test accuracy ----------


def accuracy_chainrule(recipe: AccuracyRecipe, data: Any, seed: int) -> dict[str, Any]:
    """Train with ``fit`` one epoch at a time until the test accuracy reaches the target."""
    from chainrule import evaluate, fit
    from chainrule.optim import Adam

    model = chainrule_model(recipe, seed)
    optimizer = Adam(model.parameters(), recipe.learning_rate)
    rng = np.random.default_rng(seed + 1)
    seconds, accuracy = [], []
    for _ in range(recipe.max_epochs):
        history = fit(
            model,
            data,
            optimizer=optimizer,
            epochs=1,
            batch_size=recipe.batch_size,
            reg=recipe.reg,
            rng=rng,
            progress=False,
            train_eval_size=1000,
        )
        seconds.append(history.epochs[0].seconds)
        accuracy.append(evaluate(model, data.X_test, data.y_test))
        if accuracy[-1] >= recipe.target:
            break
    return _accuracy_result(recipe, seconds, accuracy)


def accuracy_torch(
    recipe: AccuracyRecipe, data: Any, threads: int, seed: int, fused: bool = False
) -> dict[str, Any]:
    """The same recipe in PyTorch: same initial weights, same batches, torch.optim.Adam.

    ``fused=False`` is what ``torch.optim.Adam(params, lr)`` runs on the CPU (a loop over the
    parameters, several kernels each); ``fused=True`` is PyTorch's opt-in single kernel.
    """
    import torch

    torch.set_num_threads(threads)
    model, weights = torch_model(recipe, seed)
    optimizer = torch.optim.Adam(
        torch_param_groups(model, weights, recipe.reg),
        lr=recipe.learning_rate,
        betas=(0.9, 0.999),
        eps=1e-8,
        fused=fused or None,  # None: PyTorch's own default
    )
    rng = np.random.default_rng(seed + 1)
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    X_test = torch.from_numpy(data.X_test)
    seconds, accuracy = [], []
    for _ in range(recipe.max_epochs):
        s, _ = _torch_epoch(model, weights, optimizer, X, y, recipe.batch_size, recipe.reg, rng)
        seconds.append(s)
        with torch.no_grad():
            predicted = torch.cat(
                [model(X_test[i : i + 1024]).argmax(1) for i in range(0, len(X_test), 1024)]
            )
        accuracy.append(float((predicted.numpy() == data.y_test).mean()))
        if accuracy[-1] >= recipe.target:
            break
    return _accuracy_result(recipe, seconds, accuracy)


def _accuracy_result(
    recipe: AccuracyRecipe, seconds: list[float], accuracy: list[float]
) -> dict[str, Any]:
    reached = bool(accuracy) and accuracy[-1] >= recipe.target
    return {
        "reached": reached,
        "epochs": len(seconds) if reached else None,
        "train_seconds": float(sum(seconds)) if reached else None,
        "epochs_run": len(seconds),
        "epoch_seconds": seconds,
        "test_accuracy": accuracy,
    }
