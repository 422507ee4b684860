"""Fuzzing: random expressions and random bytes never crash with anything but our own errors,
and never hang (hypothesis' deadline bounds each example); random graphs with reuse, scalars
first, get every gradient right."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import chainrule as cr
import random_graphs
from chainrule.data import cifar10, idx, image_folder, images
from chainrule.engine.errors import ChainruleError
from chainrule.engine.tensor import Tensor
from chainrule.lessons import circuit

FUZZ = settings(max_examples=300, deadline=2000, suppress_health_check=list(HealthCheck))

# Text built from the expression alphabet (so parsing gets deep), plus arbitrary text.
ATOMS = [
    "x",
    "y",
    "z",
    "1",
    "2.5",
    "0",
    "-",
    "+",
    "*",
    "/",
    "**",
    "(",
    ")",
    ",",
    " ",
    "exp(",
    "log(",
    "relu(",
    "sigmoid(",
    "tanh(",
    "max(",
    "1e308",
    "__import__(",
    "'a'",
    ".",
    "[0]",
    "lambda:",
    "if",
    "else",
    "==",
    "%",
    "@",
    "^",
    "not ",
    "True",
    "[",
    "]",
    "{",
    "}",
]
expressions = st.one_of(
    st.lists(st.sampled_from(ATOMS), max_size=25).map("".join),
    st.text(max_size=40),
)


@FUZZ
@given(expression=expressions)
def test_the_expression_parser_never_crashes(expression):
    try:
        result = circuit.run(expression, {})
    except ChainruleError:
        return
    assert isinstance(result.output, float)


@FUZZ
@given(expression=expressions, x=st.floats(-1e3, 1e3), y=st.floats(-1e3, 1e3))
def test_expressions_with_values_never_crash(expression, x, y):
    try:
        names = circuit.variables(circuit.parse(expression))
    except ChainruleError:
        return
    values = {"x": x, "y": y, "z": 1.5}
    try:
        result = circuit.run(expression, {n: values.get(n, 0.5) for n in names})
    except ChainruleError:
        return
    assert isinstance(result.output, float)


def idx_header(dtype: int, dims: list[int]) -> bytes:
    return bytes([0, 0, dtype, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


idx_like = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda dtype, dims, body: idx_header(dtype, dims) + body,
        st.sampled_from([0x08, 0x09, 0x0B, 0x0D, 0x00, 0xFF]),
        st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 6), max_size=4),
        st.binary(max_size=100),
    ),
)


@FUZZ
@given(payload=idx_like)
def test_the_idx_parser_never_crashes(payload):
    try:
        array = idx.parse_idx(payload)
    except ChainruleError:
        return
    assert array.dtype == np.uint8


@FUZZ
@given(payload=idx_like, gzipped=st.booleans(), corrupt_at=st.integers(0, 400))
def test_idx_files_gzipped_or_corrupt_never_crash(tmp_path_factory, payload, gzipped, corrupt_at):
    folder = tmp_path_factory.mktemp("idx")
    data = gzip.compress(payload) if gzipped else payload
    if gzipped and corrupt_at < len(data):
        data = data[:corrupt_at] + bytes([data[corrupt_at] ^ 0x5A]) + data[corrupt_at + 1 :]
    path = folder / ("f.idx.gz" if gzipped else "f.idx")
    path.write_bytes(data)
    try:
        idx.read_idx(path)
    except ChainruleError:
        pass


@FUZZ
@given(payload=st.binary(max_size=300))
def test_the_cifar_unpickler_never_crashes_on_random_bytes(tmp_path_factory, payload):
    path = tmp_path_factory.mktemp("cifar") / "data_batch_1"
    path.write_bytes(payload)
    try:
        cifar10.read_batch(path)
    except ChainruleError:
        pass


def _archive(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _png(shape: tuple[int, ...]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros(shape, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


member_names = st.sampled_from(
    [
        "train/a/1.png",
        "train/b/2.png",
        "test/a/3.png",
        "test/b/4.jpg",
        "../evil.png",
        "/abs/train/a/5.png",
        "top/train/a/6.png",
        "train/a/7.txt",
        "README.md",
        "train/x.png",
    ]
)
member_bytes = st.one_of(
    st.binary(max_size=64), st.sampled_from([_png((4, 4)), _png((5, 4)), _png((4, 4, 3))])
)


@FUZZ
@given(
    members=st.lists(st.tuples(member_names, member_bytes), max_size=6),
    truncate=st.integers(0, 2000),
)
def test_image_folder_archives_never_crash(tmp_path_factory, members, truncate):
    folder = tmp_path_factory.mktemp("imgs")
    data = _archive(members)
    if truncate < len(data):
        data = data[:truncate]
    path = folder / "data.tar.gz"
    path.write_bytes(data)
    try:
        X_train, y_train, *_ = image_folder.load_image_folder(
            path, cache=folder / "cache", use_cache=False
        )
    except ChainruleError:
        return
    assert X_train.dtype == np.uint8 and len(X_train) == len(y_train)
    assert not (Path(folder).parent / "evil.png").exists()


@FUZZ
@given(payload=st.binary(max_size=200))
def test_load_image_never_crashes(tmp_path_factory, payload):
    path = tmp_path_factory.mktemp("img") / "x.png"
    path.write_bytes(payload)
    try:
        images.load_image(path, (4, 4))
    except ChainruleError:
        pass


def _data(t: Tensor) -> np.ndarray:
    return t.data


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(program=random_graphs.programs(), seed=st.integers(0, 2**32 - 1))
def test_random_graphs_with_reuse_match_finite_differences(program, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-2, 2, size=shape) for shape in program.leaf_shapes]
    with np.errstate(over="ignore", invalid="ignore"):
        _, trace = random_graphs.run(program, [Tensor(a) for a in arrays], cr, _data)
    # Away from kinks (a centred difference across one measures neither side) and overflow.
    assume(trace.finite_below(1e4) and trace.relu_margin > 1e-3 and trace.max_gap > 1e-3)
    report = cr.gradcheck(lambda *xs: random_graphs.run(program, xs, cr, _data)[0], arrays)
    # gradcheck's round-off floor is set by the output's size; where terms of size V cancel
    # (sum(-x) + 6 * mean(x) is 0), a centred difference resolves only eps * V / h ~ 2e-11 V
    scale = max(1.0, *(float(np.max(np.abs(v), initial=0)) for v in trace.values))
    assert report.ok or all(c.max_abs_error < 1e-9 * scale for c in report.inputs), report.table()


@pytest.mark.parametrize("shape", [(), (1,), (2, 3)])
def test_a_value_used_many_times_in_random_graphs_is_common(shape):
    # The strategy must produce what the two tests above are for: values read three or more times.
    @settings(max_examples=100, deadline=None, database=None)
    @given(program=random_graphs.programs())
    def count(program):
        counts.append(max(program.uses()))

    counts: list[int] = []
    count()
    assert sum(c >= 3 for c in counts) >= 20 and sum(c >= 4 for c in counts) >= 5
