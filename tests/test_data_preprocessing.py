"""Preprocessing alone: (x / scale - mean) / std fitted on training rows, applied, inverted."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.data.preprocessing import Preprocessing, rows_per_chunk
from chainrule.engine.errors import DataError, ShapeError


def raw_rows(n: int = 300, D: int = 12, seed: int = 1) -> np.ndarray:
    """Random uint8 pixels (n, D), as a source hands them over."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, D), dtype=np.uint8)


def fitted(standardize: bool, X_raw: np.ndarray) -> Preprocessing:
    return Preprocessing.fit_apply_inplace(X_raw.astype(np.float32), 255.0, standardize)


def test_apply_does_not_touch_its_input_and_checks_the_width():
    prep = Preprocessing(255.0, np.full(4, 0.5, dtype=np.float32))
    X = np.full((2, 4), 255.0, dtype=np.float32)
    out = prep.apply(X)
    assert np.all(X == 255.0) and np.allclose(out, 0.5)
    with pytest.raises(ShapeError, match=r"expected \(N, 4\)"):
        prep.apply(np.zeros((2, 5)))
    with pytest.raises(DataError, match="float32"):
        prep.apply(np.zeros((2, 4)), inplace=True)


@pytest.mark.parametrize("standardize", [False, True])
def test_to_arrays_from_arrays_round_trip(standardize):
    X_test = raw_rows(60, seed=2)
    prep = fitted(standardize, raw_rows())
    arrays = prep.to_arrays()
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    assert set(arrays) == {"preprocessing.scale", "preprocessing.mean"} | (
        {"preprocessing.std"} if standardize else set()
    )
    back = Preprocessing.from_arrays({**arrays, "W1": np.zeros(3)})
    assert back.scale == prep.scale
    np.testing.assert_array_equal(back.apply(X_test), prep.apply(X_test))
    with pytest.raises(DataError, match=r"preprocessing\.mean"):
        Preprocessing.from_arrays({"preprocessing.scale": np.array([255.0])})


@pytest.mark.parametrize("chunk", [7, 12, 1 << 20])
def test_fit_matches_float64_statistics_whatever_the_chunk_size(monkeypatch, chunk):
    """The chunked float64 reductions give numpy's population mean and std of x / scale."""
    monkeypatch.setattr("chainrule.data.preprocessing.CHUNK_ELEMENTS", chunk)
    X_raw = raw_rows(n=101, D=5)
    X = X_raw.astype(np.float32)
    prep = Preprocessing.fit_apply_inplace(X, 255.0, standardize=True)
    reference = X_raw.astype(np.float64) / 255.0
    np.testing.assert_allclose(prep.mean, reference.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(prep.std, reference.std(axis=0), rtol=1e-6)
    np.testing.assert_allclose(X, (reference - prep.mean) / prep.std, atol=1e-5)


def test_rows_per_chunk(monkeypatch):
    monkeypatch.setattr("chainrule.data.preprocessing.CHUNK_ELEMENTS", 100)
    assert [rows_per_chunk(d) for d in (1, 3, 100, 101, 0)] == [100, 33, 1, 1, 100]


def test_fit_in_place_needs_a_writeable_float32_array():
    with pytest.raises(DataError, match="expected a writeable float32 array"):
        Preprocessing.fit_apply_inplace(raw_rows(), 255.0)
    frozen = raw_rows().astype(np.float32)
    frozen.flags.writeable = False
    with pytest.raises(DataError, match="expected a writeable float32 array"):
        Preprocessing.fit_apply_inplace(frozen, 255.0)


@pytest.mark.parametrize("standardize", [False, True])
def test_invert_undoes_apply_and_repr_names_the_kind(standardize):
    X_raw = raw_rows()
    prep = fitted(standardize, X_raw)
    np.testing.assert_allclose(prep.invert(prep.apply(X_raw)), X_raw, atol=1e-3)
    kind = "standardize" if standardize else "centre"
    assert repr(prep) == f"Preprocessing(scale=255, {kind}, D=12)"


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"preprocessing.scale": np.array([0.0])}, "expected one positive number"),
        ({"preprocessing.scale": np.array([1.0, 2.0])}, "expected one positive number"),
        ({"preprocessing.mean": np.zeros((2, 3))}, r"mean has shape \(2, 3\); expected \(D,\)"),
        ({"preprocessing.std": np.ones(4)}, r"std has shape \(4,\); expected \(3,\) like the mean"),
    ],
)
def test_from_arrays_refuses_numbers_that_are_no_preprocessing(arrays, match):
    good = {"preprocessing.scale": np.array([255.0]), "preprocessing.mean": np.zeros(3)}
    with pytest.raises(DataError, match=match):
        Preprocessing.from_arrays({**good, **arrays})
