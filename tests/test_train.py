"""fit(): every example once per epoch, the best weights kept, resume bit for bit, clear errors."""

from __future__ import annotations

import re
import signal
from types import SimpleNamespace

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.engine.tensor import Tensor
from chainrule.nn import optim
from chainrule.nn.losses import l2_penalty, softmax_loss, svm_loss
from chainrule.training.loop import TrainingInterrupted, evaluate, fit


def blobs(n=300, d=5, k=3, seed=0):
    """Three Gaussian blobs: learnable but not trivially."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 2
    y = rng.integers(0, k, size=n)
    X = (centres[y] + rng.standard_normal((n, d))).astype(np.float32)
    cut = int(n * 0.8)
    return SimpleNamespace(X_train=X[:cut], y_train=y[:cut], X_val=X[cut:], y_val=y[cut:])


class Spy(nn.LinearClassifier):
    """Records the rows it is shown (column 0 carries each example's id)."""

    seen: list

    def forward(self, x: Tensor) -> Tensor:
        if cr.is_grad_enabled():  # training steps only, not the evaluations
            self.seen.append(x.data[:, 0].copy())
        return super().forward(x)


def test_each_epoch_visits_every_example_once_in_a_fresh_order():
    data = blobs(n=250)
    n = len(data.X_train)
    data.X_train[:, 0] = np.arange(n)
    model = Spy(5, 3, np.random.default_rng(0))
    model.seen = []
    fit(
        model,
        data,
        epochs=3,
        batch_size=32,
        progress=False,
        optimizer=optim.SGD(model.parameters(), 1e-4),
    )
    per_epoch = int(np.ceil(n / 32))
    batches = model.seen
    assert len(batches) == 3 * per_epoch
    epochs = [np.concatenate(batches[i * per_epoch : (i + 1) * per_epoch]) for i in range(3)]
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.arange(n))
    assert not np.array_equal(epochs[0], epochs[1])


def test_fit_learns_and_keeps_the_best_validation_weights():
    data = blobs()
    model = nn.TwoLayerNet(5, 20, 3, np.random.default_rng(0))
    history = fit(
        model,
        data,
        loss=softmax_loss,
        optimizer=optim.SGD(model.parameters(), 0.1),
        epochs=8,
        batch_size=16,
        reg=1e-3,
        rng=np.random.default_rng(1),
        progress=False,
    )
    assert len(history) == 8
    assert history.loss[-1] < history.loss[0]
    assert history.best_val_accuracy == max(history.val_accuracy) > 0.8
    assert evaluate(model, data.X_val, data.y_val) == history.best_val_accuracy
    assert history.epoch == list(range(1, 9))
    assert all(r.seconds > 0 for r in history.epochs)
    assert history.learning_rate == [0.1] * 8


def test_schedule_sets_the_learning_rate_per_epoch():
    data = blobs()
    model = nn.LinearClassifier(5, 3, np.random.default_rng(0))
    history = fit(
        model,
        data,
        loss=svm_loss,
        optimizer=optim.SGD(model.parameters(), 0.1),
        epochs=3,
        schedule=optim.StepDecay(0.5),
        progress=False,
    )
    assert history.learning_rate == [0.1, 0.05, 0.025]


def test_the_same_seed_gives_the_same_weights_bit_for_bit():
    def run():
        data = blobs()
        model = nn.TwoLayerNet(5, 8, 3, np.random.default_rng(0))
        fit(
            model,
            data,
            optimizer=optim.Adam(model.parameters(), 1e-2),
            epochs=3,
            rng=np.random.default_rng(5),
            progress=False,
        )
        return model.state_dict()

    a, b = run(), run()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def _train(data, epochs, checkpoint=None, resume=False, interrupt_at=None, sgd=False):
    model = nn.TwoLayerNet(5, 8, 3, np.random.default_rng(0))
    if sgd:  # plain SGD, whose update goes into the product
        opt = optim.SGD(model.parameters(), 0.05)
    else:
        opt = optim.Momentum(model.parameters(), 0.05, nesterov=True)
    if interrupt_at is not None:
        calls = {"n": 0}
        forward = model.forward

        def forward_then_signal(x):
            calls["n"] += 1
            if calls["n"] == interrupt_at:
                signal.raise_signal(signal.SIGINT)
            return forward(x)

        model.forward = forward_then_signal
    history = fit(
        model,
        data,
        optimizer=opt,
        epochs=epochs,
        batch_size=16,
        reg=1e-3,
        rng=np.random.default_rng(3),
        schedule=optim.StepDecay(0.9),
        checkpoint=checkpoint,
        resume=resume,
        progress=False,
    )
    return model, history


def test_resume_after_an_epoch_boundary_is_bit_for_bit(tmp_path):
    data = blobs()
    straight, h1 = _train(data, 4)
    ckpt = tmp_path / "ckpt.safetensors"
    _train(data, 2, checkpoint=ckpt)
    resumed, h2 = _train(data, 4, checkpoint=ckpt, resume=True)
    for k, v in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v)
    assert h2.loss == h1.loss and h2.val_accuracy == h1.val_accuracy


@pytest.mark.parametrize("interrupt_at, sgd", [(3, False), (17, False), (31, False), (17, True)])
def test_sigint_mid_epoch_saves_and_resume_is_bit_for_bit(tmp_path, interrupt_at, sgd):
    data = blobs()
    straight, h1 = _train(data, 3, sgd=sgd)
    ckpt = tmp_path / "ckpt.safetensors"
    with pytest.raises(TrainingInterrupted, match="stopped by SIGINT"):
        _train(data, 3, checkpoint=ckpt, interrupt_at=interrupt_at, sgd=sgd)
    assert ckpt.exists()
    resumed, h2 = _train(data, 3, checkpoint=ckpt, resume=True, sgd=sgd)
    for k, v in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v)
    assert h2.loss == h1.loss
    assert [r.diagnostics for r in h2.epochs] == [r.diagnostics for r in h1.epochs]


def test_divergence_names_the_epoch_step_and_cause(tmp_path):
    data = blobs()
    data.X_train *= 1e3
    model = nn.TwoLayerNet(5, 8, 3, np.random.default_rng(0))
    ckpt = tmp_path / "ckpt.safetensors"
    with pytest.raises(
        cr.DivergenceError, match=r"at epoch \d+, step \d+: the learning rate .* too high"
    ):
        with np.errstate(all="ignore"):
            fit(
                model,
                data,
                optimizer=optim.SGD(model.parameters(), 1e6),
                epochs=5,
                checkpoint=ckpt,
                progress=False,
            )


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            lambda d: setattr(d, "y_train", d.y_train + 5),
            cr.DataError,
            r"labels must lie in \[0, 2\]",
        ),
        (
            lambda d: setattr(d, "y_train", d.y_train.astype(float)),
            cr.DataError,
            "labels must be integers",
        ),
        (
            lambda d: setattr(d, "X_train", d.X_train[:, :4]),
            cr.ShapeError,
            "rows have 4 features but the model takes 5",
        ),
        (
            lambda d: setattr(d, "X_train", d.X_train.astype(np.float64)),
            cr.DataError,
            "float64 but the model is float32",
        ),
        (lambda d: d.X_train.__setitem__((0, 0), np.nan), cr.DataError, "NaN or infinite"),
        (lambda d: setattr(d, "X_train", d.X_train[:0]), cr.DataError, "empty"),
        (lambda d: setattr(d, "y_val", d.y_val[:3]), cr.ShapeError, "expected 60 labels"),
        (lambda d: setattr(d, "X_train", d.X_train[0]), cr.ShapeError, "must be a 2-D array"),
    ],
)
def test_bad_data_is_named(change, error, message):
    data = blobs()
    change(data)
    model = nn.LinearClassifier(5, 3, np.random.default_rng(0))
    with pytest.raises(error, match=message):
        fit(model, data, epochs=1, progress=False)


def test_float16_training_is_refused_in_one_line():
    # float16 data with the default float32 model, and a float16 model: each one clear line
    data = blobs()
    half = SimpleNamespace(
        **{k: v.astype(np.float16) if k[0] == "X" else v for k, v in vars(data).items()}
    )
    model = nn.LinearClassifier(5, 3, np.random.default_rng(0))
    with pytest.raises(cr.DataError, match="training data is float16 but the model is float32"):
        fit(model, half, epochs=1, progress=False)
    model16 = nn.LinearClassifier(5, 3, np.random.default_rng(0), dtype=np.float16)
    for optimizer in (None, optim.Adam):
        with pytest.raises(cr.ConfigError, match="is float16, which cannot be trained") as info:
            opt = optimizer(model16.parameters()) if optimizer else None
            fit(model16, half, optimizer=opt, epochs=1, progress=False)
        assert "\n" not in str(info.value)
    # the trained float32 model cast to float16 scores as well as it did
    fit(model, data, epochs=3, progress=False)
    model16.load_state_dict(model.state_dict())
    assert evaluate(model16, half.X_val, half.y_val) == evaluate(model, data.X_val, data.y_val)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 1000}, "batch size 1000 is larger than the 240 training examples"),
        ({"batch_size": 0}, "batch size must be a positive integer"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"reg": -1.0}, "regularization strength must be >= 0"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    model = nn.LinearClassifier(5, 3, np.random.default_rng(0))
    with pytest.raises(cr.ConfigError, match=message):
        fit(model, blobs(), progress=False, **kwargs)


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: optim.SGD(ps, 0.05),
        lambda ps: optim.Momentum(ps, 0.05, nesterov=True),
        lambda ps: optim.Adam(ps, 0.01),
    ],
)
def test_fits_l2_as_decay_is_the_penalty_through_the_graph(make_opt):
    # fit hands reg's gradient to the optimizer as decay; the textbook loop sends reg * sum(W^2)
    # through gates. Same batches, same maths: the same weights and losses, in float64.
    data = blobs(n=200, d=6)
    data.X_train, data.X_val = data.X_train.astype(np.float64), data.X_val.astype(np.float64)
    reg, batch = 0.05, 32

    def net():
        return nn.TwoLayerNet(6, 8, 3, np.random.default_rng(3), dtype=np.float64)

    model, snapshots = net(), []
    history = fit(
        model,
        data,
        optimizer=make_opt(model.parameters()),
        epochs=2,
        batch_size=batch,
        reg=reg,
        rng=np.random.default_rng(9),
        progress=False,
        on_epoch=lambda r: snapshots.append([p.data.copy() for p in model.parameters()]),
    )

    hand = net()
    opt, rng, n = make_opt(hand.parameters()), np.random.default_rng(9), len(data.X_train)
    for epoch in range(2):
        order, losses = rng.permutation(n), []
        rng.integers(2**63)  # fit draws the epoch's augmentation key
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            total = softmax_loss(hand(Tensor(data.X_train[idx])), data.y_train[idx])
            total = total + l2_penalty(hand.weights(), reg)
            losses.append(total.item() * len(idx))
            opt.zero_grad()
            total.backward()
            opt.step()
        assert history.epochs[epoch].loss == pytest.approx(sum(losses) / n, rel=1e-12)
        for a, b in zip(snapshots[epoch], hand.parameters()):
            np.testing.assert_allclose(a, b.data, rtol=1e-10, atol=1e-12)


def test_patience_stops_once_validation_has_not_improved_for_n_epochs():
    data = blobs()
    model = nn.TwoLayerNet(5, 8, 3, np.random.default_rng(0))
    history = fit(
        model,
        data,
        optimizer=optim.SGD(model.parameters(), 0.05),
        epochs=200,
        batch_size=16,
        rng=np.random.default_rng(3),
        progress=False,
        patience=3,
    )
    assert history.stopped_early and len(history) < 200
    assert len(history) - history.best_epoch == 3
    # the 3 epochs after the best did not beat it; the best is the first of its value
    best = history.best_val_accuracy
    assert max(history.val_accuracy) == best
    assert history.val_accuracy.index(best) == history.best_epoch - 1
    assert evaluate(model, data.X_val, data.y_val) == best  # its weights were kept


def test_patience_keeps_resume_bit_for_bit(tmp_path):
    data = blobs()

    def run(epochs, patience, checkpoint=None, resume=False):
        model = nn.TwoLayerNet(5, 8, 3, np.random.default_rng(0))
        history = fit(
            model,
            data,
            optimizer=optim.Adam(model.parameters(), 0.01),
            epochs=epochs,
            batch_size=16,
            rng=np.random.default_rng(3),
            progress=False,
            patience=patience,
            checkpoint=checkpoint,
            resume=resume,
        )
        return model.state_dict(), history

    straight, h1 = run(200, 4)
    ckpt = tmp_path / "ckpt.safetensors"
    run(3, 4, ckpt)  # the first 3 epochs, then stopped
    resumed, h2 = run(200, 4, ckpt, resume=True)
    assert h1.stopped_early and h2.stopped_early and len(h2) == len(h1)
    for k, v in straight.items():
        np.testing.assert_array_equal(resumed[k], v)
    # resumed after the stop, with the same patience: it stops again at once
    _, h3 = run(200, 4, ckpt, resume=True)
    assert len(h3) == len(h1) and h3.stopped_early


@pytest.mark.parametrize("patience", [0, -1, 1.5, "3"])
def test_a_bad_patience_is_named(patience):
    model = nn.LinearClassifier(5, 3, np.random.default_rng(0))
    with pytest.raises(cr.ConfigError, match="patience must be a positive integer"):
        fit(model, blobs(), progress=False, patience=patience)


def test_without_a_terminal_progress_is_one_plain_line_per_epoch(capsys):
    model = nn.LinearClassifier(5, 3, np.random.default_rng(0))
    fit(model, blobs(), epochs=3, progress=True)  # capsys's stderr is not a terminal
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines, start=1):
        assert re.fullmatch(
            rf"epoch {i}/3: loss \d\.\d{{4}}, train \d\.\d{{3}}, val \d\.\d{{3}} \(\d+\.\d s\)",
            line,
        ), line


def test_a_divergence_before_any_checkpoint_says_none_was_saved(tmp_path):
    data = blobs()
    data.X_train *= 1e3
    model = nn.TwoLayerNet(5, 8, 3, np.random.default_rng(0))
    ckpt = tmp_path / "ckpt.safetensors"
    with pytest.raises(cr.DivergenceError) as info:
        fit(
            model,
            data,
            optimizer=optim.SGD(model.parameters(), 1e6),
            epochs=3,
            checkpoint=ckpt,
            progress=False,
        )
    assert str(info.value).endswith("no epoch had finished, so no checkpoint was saved")
    assert not ckpt.exists()


def test_a_divergence_after_a_checkpoint_names_it(tmp_path):
    data = blobs()
    ckpt = tmp_path / "ckpt.safetensors"
    model = nn.TwoLayerNet(5, 8, 3, np.random.default_rng(0))
    fit(
        model,
        data,
        optimizer=optim.SGD(model.parameters(), 0.05),
        epochs=1,
        checkpoint=ckpt,
        progress=False,
    )
    data.X_train *= 1e30  # the same run, resumed on data that overflows the scores
    model = nn.TwoLayerNet(5, 8, 3, np.random.default_rng(0))
    with pytest.raises(cr.DivergenceError) as info:
        fit(
            model,
            data,
            optimizer=optim.SGD(model.parameters(), 0.05),
            epochs=3,
            checkpoint=ckpt,
            resume=True,
            progress=False,
        )
    assert str(info.value).endswith(f"the last good checkpoint is {ckpt}")
    assert re.search(r"at epoch 2, step \d+", str(info.value)) and ckpt.exists()


def test_a_divergence_from_the_l2_step_blames_reg(recwarn):
    model = nn.TwoLayerNet(5, 8, 3, np.random.default_rng(0))
    with pytest.raises(cr.DivergenceError, match=r"regularization strength \(1e\+300\)"):
        fit(
            model,
            blobs(),
            optimizer=optim.SGD(model.parameters(), 0.05),
            reg=1e300,
            progress=False,
        )
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_one_route_for_l2_the_penalty_gates_and_the_optimizers_weight_decay_agree():
    # fit(reg) sets weight_decay = 2 * reg; losses.l2_penalty is the same term as gates. Both
    # the gradient and one SGD step must agree, in float64, weights decayed and biases not.
    rng = np.random.default_rng(11)
    X, y, reg = rng.standard_normal((40, 6)), rng.integers(0, 3, 40), 0.05

    def net():
        return nn.TwoLayerNet(6, 7, 3, np.random.default_rng(2), dtype=np.float64)

    gated, decayed = net(), net()
    total = softmax_loss(gated(Tensor(X)), y) + l2_penalty(gated.weights(), reg)
    total.backward()
    opt = optim.SGD(decayed.parameters(), 0.1, weight_decay=2 * reg)
    softmax_loss(decayed(Tensor(X)), y).backward()
    applied = opt.gradients()  # what the update follows: data gradient + weight_decay * W
    for (name, p), g, q in zip(gated.named_parameters(), applied, decayed.parameters()):
        np.testing.assert_allclose(g, p.grad, rtol=1e-13, atol=1e-15, err_msg=name)
        expected = q.grad + 2 * reg * q.data if name.startswith("W") else q.grad
        np.testing.assert_array_equal(g, expected)
    assert [name for name, _ in gated.named_parameters()] == ["W1", "b1", "W2", "b2"]

    # One SGD step by fit (one batch of all 40 rows) against one step on the gated loss.
    data = SimpleNamespace(X_train=X, y_train=y, X_val=X[:10], y_val=y[:10])
    by_fit = net()
    one_step = {"epochs": 1, "batch_size": 40, "reg": reg, "progress": False}
    history = fit(by_fit, data, optimizer=optim.SGD(by_fit.parameters(), 0.1), **one_step)
    optim.SGD(gated.parameters(), 0.1).step()
    for (name, a), b in zip(by_fit.named_parameters(), gated.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-13, atol=1e-15, err_msg=name)
    assert history.loss[0] == pytest.approx(total.item(), rel=1e-13)
    assert history.loss[0] > softmax_loss(net()(Tensor(X)), y).item() + 1e-3  # the penalty counts
