"""The array module a computation runs in, and moving arrays between devices.

Gates, losses, optimizers and preprocessing take their array functions from the arrays they are
given (the Python array API standard's ``array_namespace``): NumPy arrays compute with NumPy,
CuPy arrays with CuPy on the GPU, ``array_api_strict`` arrays (the tests' proof that only
portable operations are used) with that. NumPy is the default and its fast path costs one type
check: ``namespace`` answers ``numpy`` itself for plain ndarrays without asking array-api-compat.

Devices are named as users write them: ``"cpu"`` (NumPy) and ``"cuda"`` (CuPy, the current GPU;
``"cuda:1"`` picks one). CuPy is imported only when a device other than the CPU is asked for, so
``import chainrule`` never needs it; a missing CuPy or GPU is a DeviceError with one clear line.
"""

from __future__ import annotations

import contextlib
import importlib
from types import ModuleType
from typing import Any

import numpy as np

from chainrule.engine.errors import ChainruleError

try:  # a core dependency; the GPU machine's bare environment may lack it (see _fallback)
    import array_api_compat as _compat
except ImportError:  # pragma: no cover - exercised only where array-api-compat is missing
    _compat = None


class DeviceError(ChainruleError):
    """A device that cannot be used here: CuPy not installed, no GPU, or an unknown name."""


DEVICES = ("cpu", "cuda")


def namespace(*arrays: Any) -> ModuleType:
    """The array module of ``arrays`` (NumPy for NumPy arrays and Python numbers).

    arrays: arrays of one module (numbers and None are skipped). Returns ``numpy`` itself for
    ndarrays (the CPU's fast path), else what ``array_api_compat.array_namespace`` gives (CuPy
    and array_api_strict, wrapped to the standard where they differ from it). Raises TypeError
    for arrays of different modules.
    """
    first = None
    for x in arrays:
        if x is None or isinstance(x, (int, float, bool, complex)):
            continue
        if type(x) is not np.ndarray and not isinstance(x, np.generic):
            first = x
            break
    if first is None:
        return np
    if _compat is not None:
        return _compat.array_namespace(*[x for x in arrays if not _is_plain(x)])
    return _fallback(first)


def _is_plain(x: Any) -> bool:
    return x is None or isinstance(x, (int, float, bool, complex))


def _fallback(x: Any) -> ModuleType:
    """Without array-api-compat: CuPy for CuPy arrays (its own namespace follows the standard
    closely enough for the functions chainrule uses), else the array's ``__array_namespace__``."""
    if type(x).__module__.startswith("cupy"):
        return importlib.import_module("cupy")
    if hasattr(x, "__array_namespace__"):
        return x.__array_namespace__()
    raise TypeError(f"not an array chainrule can compute with: {type(x).__name__}")


def is_array(x: Any) -> bool:
    """Whether ``x`` is an array chainrule computes with: NumPy's, CuPy's (whose arrays do not
    all carry ``__array_namespace__``), or any array API module's."""
    return isinstance(x, np.ndarray) or on_gpu(x) or hasattr(x, "__array_namespace__")


def is_numpy(x: Any) -> bool:
    """Whether ``x`` is a NumPy array (the CPU path)."""
    return isinstance(x, np.ndarray)


def on_gpu(x: Any) -> bool:
    """Whether ``x`` is a CuPy array: reading one of its values waits for the GPU (a host sync,
    which a captured CUDA graph must not contain), so value checks are made on the host."""
    return type(x).__module__.startswith("cupy")


def parse_device(device: str) -> tuple[str, int]:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` -> (kind, index). Raises DeviceError otherwise."""
    kind, _, index = str(device).partition(":")
    if kind not in DEVICES or (index and not (kind == "cuda" and index.isdigit())):
        raise DeviceError(f"unknown device {device!r} (choose from cpu, cuda, cuda:N)")
    return kind, int(index or 0)


def cupy_module(device: str = "cuda") -> ModuleType:
    """CuPy, with ``device``'s GPU made current. Raises DeviceError when CuPy is not installed
    or sees no GPU (one line, saying what to install)."""
    _, index = parse_device(device)
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        raise DeviceError(
            f"device {device!r} needs CuPy, which is not installed: pip install 'chainrule[gpu]'"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError: no driver, no GPU
        raise DeviceError(f"device {device!r}: CuPy finds no usable GPU ({err})") from None
    if index >= count:
        raise DeviceError(f"device {device!r}: there are only {count} GPU(s) here")
    cupy.cuda.Device(index).use()
    return cupy


def device_of(x: Any) -> str:
    """``"cpu"`` for NumPy (and other host) arrays, ``"cuda:N"`` for a CuPy array on GPU N."""
    if on_gpu(x):
        return f"cuda:{x.device.id}"
    return "cpu"


def to_device(x: Any, device: str) -> Any:
    """``x`` (an array of any module, any shape) on ``device``: a NumPy array for ``"cpu"``, a
    CuPy array for ``"cuda"``; ``x`` itself when it is already there (no copy). Raises
    DeviceError as ``cupy_module`` does."""
    kind, _ = parse_device(device)
    if kind == "cpu":
        return to_numpy(x)
    cupy = cupy_module(device)
    if on_gpu(x) and device_of(x) == f"cuda:{cupy.cuda.Device().id}":
        return x
    return cupy.asarray(to_numpy(x))


def to_numpy(x: Any) -> np.ndarray:
    """``x`` as a NumPy array (a copy from the GPU; ``x`` itself when it is one). Safetensors
    files and the host-side checks take these."""
    if isinstance(x, np.ndarray):
        return x
    if on_gpu(x):
        return x.get()
    if hasattr(x, "__dlpack__"):  # array_api_strict and friends
        try:
            return np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError):
            pass
    return np.asarray(x)


def like(value: Any, x: Any, dtype: Any = None) -> Any:
    """``value`` (a number or a NumPy array) as an array of ``x``'s module and device, in
    ``dtype`` (default: x's dtype)."""
    xp = namespace(x)
    return xp.asarray(value, dtype=dtype if dtype is not None else x.dtype)


def quiet(xp: ModuleType, **errors: str) -> contextlib.AbstractContextManager[object]:
    """NumPy's ``np.errstate(**errors)`` for NumPy; nothing for other modules, which do not warn
    about floating-point events (a NumPy-only guard)."""
    return np.errstate(**errors) if xp is np else contextlib.nullcontext()


def may_share(a: Any, b: Any) -> bool:
    """np.may_share_memory for NumPy arrays; True for other modules (the safe answer: a view
    gate's output then shares its input's record of in-place changes)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.may_share_memory(a, b))
    return True
