"""The device API and the GPU's captured training step.

The first tests run everywhere: the device names, the one-line errors without CuPy or a GPU, and
``import chainrule`` never importing CuPy. The rest need CuPy and a GPU and are skipped, with the
reason, elsewhere (benchmarks/gpu_check.sh runs them on the GPU machine): moving a model there and
back, and training on the GPU (captured CUDA graph replays) against the same training on the CPU.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from chainrule.engine.backend import DeviceError, parse_device, to_device, to_numpy
from chainrule.nn import optim
from chainrule.nn.losses import softmax_loss
from chainrule.nn.models import TwoLayerNet
from chainrule.training.loop import Splits, fit


def _has_gpu() -> bool:
    try:
        cupy = importlib.import_module("cupy")
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, or CUDARuntimeError without a driver
        return False


HAS_GPU = _has_gpu()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs CuPy and a GPU")


def test_device_names() -> None:
    assert parse_device("cpu") == ("cpu", 0)
    assert parse_device("cuda:1") == ("cuda", 1)
    for bad in ("gpu", "cuda:x", "cpu:0", ""):
        with pytest.raises(DeviceError, match="unknown device"):
            parse_device(bad)
    x = np.arange(3.0)
    assert to_device(x, "cpu") is x and to_numpy(x) is x


@pytest.mark.skipif(HAS_GPU, reason="checks the error where CuPy or a GPU is missing")
def test_fit_on_cuda_without_a_gpu_is_one_clear_error() -> None:
    model = TwoLayerNet(4, 3, 2, np.random.default_rng(0))
    X = np.ones((8, 4), np.float32)
    y = np.array([0, 1] * 4)
    with pytest.raises(DeviceError, match=r"device 'cuda' needs CuPy|finds no usable GPU"):
        fit(model, Splits(X, y, X, y), epochs=1, batch_size=4, progress=False, device="cuda")
    assert model.device == "cpu"  # nothing was moved


@pytest.mark.skipif(HAS_GPU, reason="checks the error where CuPy or a GPU is missing")
def test_train_device_cuda_without_a_gpu_exits_1(tmp_path: Any) -> None:
    command = ["train", "--epochs", "1", "--device", "cuda", "--out", str(tmp_path / "run")]
    result = subprocess.run(
        [sys.executable, "-m", "chainrule", *command],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "device 'cuda'" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_importing_chainrule_never_imports_cupy() -> None:
    code = (
        "import sys, chainrule; chainrule.fit; "
        "import chainrule.training.captured, chainrule.app.cli; "
        "print('cupy' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0 - 0.3).astype(np.float32)
    return X[:600], y[:600]


@needs_gpu
def test_model_to_cuda_and_back_keeps_values_and_saves_numpy() -> None:
    model = TwoLayerNet(64, 32, 10, np.random.default_rng(3))
    before = model.state_dict()
    model.to("cuda")
    assert model.device == "cuda:0"
    state = model.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())  # safetensors takes these
    for k in before:
        np.testing.assert_array_equal(state[k], before[k])
    X, _ = _digits()
    scores = model.scores(X[:50])  # NumPy rows in, NumPy scores out
    model.to("cpu")
    np.testing.assert_allclose(scores, model.scores(X[:50]), rtol=1e-5, atol=1e-5)


OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, 0.1, weight_decay=1e-3),
    "momentum": lambda p: optim.Momentum(p, 0.05, weight_decay=1e-3),
    "adam": lambda p: optim.Adam(p, 1e-3, weight_decay=1e-3),
}


@needs_gpu
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_captured_steps_give_the_plain_steps_numbers(name: str) -> None:
    from chainrule.training.captured import CapturedSteps
    from chainrule.training.device import DeviceData

    X, y = _digits()
    batch = 50
    order = np.random.default_rng(5).permutation(len(X))
    host = TwoLayerNet(64, 32, 10, np.random.default_rng(4))
    host_opt = OPTIMIZERS[name](host.parameters())
    expected = 0.0
    for s in range(len(X) // batch):
        rows = order[s * batch : (s + 1) * batch]
        loss = softmax_loss(host(X[rows]), y[rows])
        host_opt.zero_grad()
        loss.backward()
        host_opt.step()
        expected += float(loss.data) * batch
    gpu = TwoLayerNet(64, 32, 10, np.random.default_rng(4)).to("cuda")
    gpu_opt = OPTIMIZERS[name](gpu.parameters())
    steps = CapturedSteps(gpu, softmax_loss, gpu_opt, DeviceData.move(X, y, "cuda"), batch)
    total = steps.run(order, 0, len(X) // batch)
    assert steps.fallback is None and steps.captures == 1  # one recording, replayed
    assert gpu_opt.steps == host_opt.steps == len(X) // batch
    np.testing.assert_allclose(total, expected, rtol=1e-4)
    for (k, a), b in zip(gpu.state_dict().items(), host.state_dict().values()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5, err_msg=k)


@needs_gpu
def test_fit_on_cuda_matches_fit_on_cpu() -> None:
    X, y = _digits()
    data = Splits(X[:500], y[:500], X[500:], y[500:])
    histories = []
    for device in ("cpu", "cuda"):
        model = TwoLayerNet(64, 32, 10, np.random.default_rng(6))
        opt = optim.Momentum(model.parameters(), 0.05)
        kw = dict(epochs=3, batch_size=64, reg=1e-3, rng=np.random.default_rng(7))
        histories.append(fit(model, data, optimizer=opt, progress=False, device=device, **kw))
    cpu, gpu = histories
    np.testing.assert_allclose(gpu.loss, cpu.loss, rtol=1e-4)
    assert abs(gpu.val_accuracy[-1] - cpu.val_accuracy[-1]) <= 0.01


@needs_gpu
def test_train_on_cuda_writes_the_same_kind_of_run(tmp_path: Any) -> None:
    from chainrule.training import checkpoints

    runs = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        command = ["train", "--epochs", "3", "--device", device, "--out", str(out), "--quiet"]
        result = subprocess.run(
            [sys.executable, "-m", "chainrule", *command], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        runs[device] = checkpoints.load_model(out / checkpoints.MODEL_FILE)
    cpu, gpu = runs["cpu"], runs["cuda"]
    for (name, a), b in zip(gpu.model.state_dict().items(), cpu.model.state_dict().values()):
        assert type(a) is np.ndarray and a.dtype == b.dtype, name  # NumPy arrays in the file
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4, err_msg=name)
