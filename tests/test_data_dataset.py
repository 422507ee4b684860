"""Splits, and preprocessing as a Dataset gets it: fitted on the training split only, applied
identically elsewhere (the Preprocessing class alone: test_data_preprocessing.py)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.data.dataset import (
    Dataset,
    build_dataset,
    gather_float32,
    split_indices,
    stratified_sample,
)
from chainrule.engine.errors import ConfigError, DataError, ShapeError

CLASSES = ["a", "b", "c"]


def make_raw(n: int = 300, m: int = 60, D: int = 12, seed: int = 1):
    """Random uint8 rows with labels: a pool (n, D) and a test split (m, D)."""
    rng = np.random.default_rng(seed)
    X_pool = rng.integers(0, 256, size=(n, D), dtype=np.uint8)
    y_pool = rng.integers(0, len(CLASSES), size=n)
    X_test = rng.integers(0, 256, size=(m, D), dtype=np.uint8)
    y_test = rng.integers(0, len(CLASSES), size=m)
    return X_pool, y_pool, X_test, y_test


def build(X_pool, y_pool, X_test, y_test, **kwargs) -> Dataset:
    D = X_pool.shape[1]
    return build_dataset("toy", X_pool, y_pool, X_test, y_test, CLASSES, (D,), 255.0, **kwargs)


def test_shapes_dtypes_and_split_sizes():
    X_pool, y_pool, X_test, y_test = make_raw()
    ds = build(X_pool, y_pool, X_test, y_test, val_size=0.2)
    assert ds.X_train.shape == (240, 12) and ds.X_val.shape == (60, 12)
    assert ds.X_test.shape == (60, 12)
    for X in (ds.X_train, ds.X_val, ds.X_test):
        assert X.dtype == np.float32 and X.flags.c_contiguous
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert y.dtype == np.int64
    assert ds.num_classes == 3 and ds.num_features == 12
    assert "train (240, 12)" in repr(ds)


def test_mean_is_fitted_on_the_training_rows_only():
    X_pool, y_pool, X_test, y_test = make_raw()
    ds = build(X_pool, y_pool, X_test, y_test, val_size=0.25, seed=3)
    train_idx, val_idx = split_indices(y_pool, 0.25, seed=3)
    expected = (X_pool[train_idx].astype(np.float64) / 255.0).mean(axis=0)
    np.testing.assert_allclose(ds.preprocessing.mean, expected, rtol=1e-6)
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-6)
    # Rewriting every validation and test row must not move the fitted numbers.
    X_pool2 = X_pool.copy()
    X_pool2[val_idx] = 255
    ds2 = build(X_pool2, y_pool, np.zeros_like(X_test), y_test, val_size=0.25, seed=3)
    np.testing.assert_array_equal(ds2.preprocessing.mean, ds.preprocessing.mean)
    np.testing.assert_array_equal(ds2.X_train, ds.X_train)


def test_standardize_divides_by_the_training_std_and_keeps_constant_features():
    X_pool, y_pool, X_test, y_test = make_raw()
    X_pool[:, 0] = 7  # a constant feature: divided by 1, not blown up by 1 / eps
    ds = build(X_pool, y_pool, X_test, y_test, standardize=True)
    train_idx, _ = split_indices(y_pool, 0.1, seed=0)
    expected = (X_pool[train_idx].astype(np.float64) / 255.0).std(axis=0)
    np.testing.assert_allclose(ds.preprocessing.std[1:], expected[1:], rtol=1e-5)
    assert ds.preprocessing.std[0] == 1.0
    np.testing.assert_allclose(ds.X_train.std(axis=0)[1:], 1.0, rtol=1e-4)
    new = ds.preprocessing.apply(np.full(12, 255, dtype=np.uint8))
    assert np.all(np.isfinite(new)) and abs(new[0]) < 1.0


@pytest.mark.parametrize("standardize", [False, True])
def test_apply_to_new_rows_matches_the_splits_bit_for_bit(standardize):
    X_pool, y_pool, X_test, y_test = make_raw()
    ds = build(X_pool, y_pool, X_test, y_test, seed=5, standardize=standardize)
    train_idx, val_idx = split_indices(y_pool, 0.1, seed=5)
    prep = ds.preprocessing
    np.testing.assert_array_equal(prep.apply(X_pool[train_idx]), ds.X_train)
    np.testing.assert_array_equal(prep.apply(X_pool[val_idx]), ds.X_val)
    np.testing.assert_array_equal(prep.apply(X_test), ds.X_test)
    row = prep.apply(X_test[3].astype(np.float32))  # a single (D,) row, as load_image gives
    np.testing.assert_array_equal(row, ds.X_test[3])
    np.testing.assert_allclose(prep.invert(ds.X_test), X_test, atol=1e-3)


def test_val_split_is_deterministic_per_seed_and_differs_across_seeds():
    X_pool, y_pool, X_test, y_test = make_raw()
    a = build(X_pool, y_pool, X_test, y_test, seed=11)
    b = build(X_pool, y_pool, X_test, y_test, seed=11)
    c = build(X_pool, y_pool, X_test, y_test, seed=12)
    np.testing.assert_array_equal(a.X_val, b.X_val)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(
        np.sort(split_indices(y_pool, 0.1, 11)[1]), np.sort(split_indices(y_pool, 0.1, 12)[1])
    )
    assert not np.array_equal(a.X_train, c.X_train)


def test_test_split_never_depends_on_seed_val_size_or_max_train():
    X_pool, y_pool, X_test, y_test = make_raw()
    variants = [
        build(X_pool, y_pool, X_test, y_test, seed=s, val_size=v, max_train=t, max_test=40)
        for s, v, t in [(0, 0.1, None), (1, 0.3, None), (2, 10, 100)]
    ]
    for ds in variants[1:]:
        np.testing.assert_array_equal(ds.y_test, variants[0].y_test)
        np.testing.assert_array_equal(
            ds.preprocessing.invert(ds.X_test).round(),
            variants[0].preprocessing.invert(variants[0].X_test).round(),
        )
    assert len(variants[0].y_test) == 40


def test_max_train_caps_train_plus_val_stratified():
    X_pool, y_pool, X_test, y_test = make_raw(n=600)
    ds = build(X_pool, y_pool, X_test, y_test, max_train=100, val_size=0.2)
    assert len(ds.y_train) == 80 and len(ds.y_val) == 20
    pool_share = np.bincount(y_pool, minlength=3) / len(y_pool)
    got = np.bincount(np.concatenate([ds.y_train, ds.y_val]), minlength=3)
    assert np.all(np.abs(got - 100 * pool_share) <= 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_size": 1.0}, "val_size"),
        ({"val_size": -1}, "val_size"),
        ({"val_size": 300}, "val_size"),
        ({"val_size": "big"}, "val_size"),
        ({"max_train": 0}, "max_train"),
        ({"max_test": 2.5}, "max_test"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build(*make_raw(), **kwargs)


def test_bad_labels_and_shapes_are_named():
    X_pool, y_pool, X_test, y_test = make_raw()
    with pytest.raises(DataError, match="test split is empty"):
        build(X_pool, y_pool, X_test[:0], y_test[:0])
    y_bad = y_pool.copy()
    y_bad[0] = 3
    with pytest.raises(DataError, match=r"expected 0\.\.2"):
        build(X_pool, y_bad, X_test, y_test)
    with pytest.raises(ShapeError, match="expected"):
        build(X_pool, y_pool[:-1], X_test, y_test)


def test_splits_hold_one_float32_copy(monkeypatch):
    """The uint8 pool becomes float32 splits without a second full-size array alive at once
    (not even a uint8 copy of the training rows, a quarter of the float32 size)."""
    monkeypatch.setattr("chainrule.data.preprocessing.CHUNK_ELEMENTS", 1 << 16)
    X_pool, y_pool, X_test, y_test = make_raw(n=20_000, m=2_000, D=256)
    final = 4 * (X_pool.size + X_test.size)  # the float32 splits themselves
    tracemalloc.start()
    try:
        ds = build(X_pool, y_pool, X_test, y_test, standardize=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ds.X_train.base is None  # its own buffer, not a view of a bigger one
    assert peak < 1.1 * final, (peak, final)


def test_gather_float32_converts_rows_in_chunks(monkeypatch):
    monkeypatch.setattr("chainrule.data.preprocessing.CHUNK_ELEMENTS", 10)
    X = np.arange(60, dtype=np.uint8).reshape(20, 3)
    idx = np.array([5, 0, 19, 7, 7])
    np.testing.assert_array_equal(gather_float32(X, idx), X[idx].astype(np.float32))


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=2, max_size=200),
    fraction=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_is_a_stratified_partition(labels, fraction, seed):
    y = np.array(labels)
    n_val = round(fraction * len(y))
    if n_val >= len(y):
        return
    train_idx, val_idx = split_indices(y, fraction, seed)
    assert len(val_idx) == n_val
    assert np.array_equal(np.sort(np.concatenate([train_idx, val_idx])), np.arange(len(y)))
    for c in np.unique(y):
        share = np.sum(y == c) * n_val / len(y)
        assert abs(np.sum(y[val_idx] == c) - share) < 1


def test_stratified_sample_gives_exact_totals_and_handles_zero():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [5, 3, 2])
    assert len(stratified_sample(y, 0, rng)) == 0
    picked = stratified_sample(y, 5, rng)
    assert len(set(picked.tolist())) == 5
    # Quotas 2.5, 1.5, 1.0: floors 2, 1, 1; the one left over goes to the first largest remainder.
    assert np.bincount(y[picked], minlength=3).tolist() == [3, 1, 1]
