"""The era table on small data: every row trained, the features cached, the Markdown written."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chainrule import data as cr_data
from chainrule.app.cli import main
from chainrule.engine.errors import ConfigError
from chainrule.lessons import compare, features

# The default rows, made small: few hidden units, small batches (the data sets here are tiny).
SMALL_ROWS = tuple(
    dataclasses.replace(r, hidden=min(r.hidden, 32), epochs=3, batch_size=16)
    for r in compare.DEFAULT_ROWS
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits():
    return cr_data.load("digits", max_train=400, max_test=100)


def test_every_row_on_digits(digits, tmp_path):
    result = compare.compare(digits, SMALL_ROWS, cache_dir=tmp_path)
    assert [(r.spec.label, r.spec.inputs) for r in result.rows] == [
        ("linear SVM", "pixels"),
        ("softmax", "pixels"),
        ("linear SVM", "features"),
        ("softmax", "features"),
        ("2-layer net", "pixels"),
        ("2-layer net", "features"),
    ]
    for row in result.rows:
        assert 0.3 < row.test_accuracy <= 1 and row.seconds > 0  # chance is 0.1
    assert result.feature_dims == {"hog": 324} and result.pixel_dims == 64
    assert (result.n_train, result.n_val, result.n_test) == (360, 40, 100)
    markdown = result.markdown()
    assert markdown.count("\n| ") == 8  # header, rule, six rows
    assert "| linear SVM | features | 324 | lr 0.001, reg 0.001, 3 epochs, batch 16 |" in markdown
    assert "32 ReLU units" in result.table()
    assert json.loads(json.dumps(result.to_json()))["rows"][0]["settings"].startswith("lr")


def test_features_are_cached_and_the_same(digits, tmp_path):
    first, parts, _, cached = compare.feature_splits(digits, tmp_path)
    assert not cached and parts == {"hog": 324}
    assert list(tmp_path.glob("features/digits-*.npz"))
    second, _, _, cached = compare.feature_splits(digits, tmp_path)
    assert cached
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(first[split], second[split])
    assert first["train"].shape == (360, 324) and first["test"].shape == (100, 324)


def test_two_workers_give_the_same_features(digits, monkeypatch):
    monkeypatch.setattr(compare, "CHUNK_ROWS", 150)
    one, *_ = compare.feature_splits(digits, None, workers=1)
    two, *_ = compare.feature_splits(digits, None, workers=2)
    for split in one:
        np.testing.assert_array_equal(one[split], two[split])


def test_features_come_from_the_raw_images(digits):
    images = compare.images_of(digits.X_train[:3], digits)
    assert images.shape == (3, 8, 8) and images.min() >= 0 and images.max() <= 1
    raw = digits.preprocessing.invert(digits.X_train[:3]).reshape(3, 8, 8) / 16
    np.testing.assert_allclose(images, raw, atol=1e-6)
    feats, *_ = compare.feature_splits(digits, None)
    np.testing.assert_allclose(feats["train"][:3], features.hog_features(images), atol=1e-6)


def colour_folder(root: Path) -> Path:
    """A tiny colour image folder: red, green and blue squares on noise, 16x16."""
    rng = np.random.default_rng(0)
    colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    for split, count in (("train", 12), ("test", 4)):
        for name, colour in colours.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 80, (16, 16, 3)).astype(np.uint8)
                top, left = rng.integers(0, 8, 2)
                pixels[top : top + 8, left : left + 8] = colour
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def test_colour_images_get_the_hue_histogram(tmp_path):
    data = cr_data.load("image-folder", root=colour_folder(tmp_path / "images"), val_size=6)
    result = compare.compare(data, SMALL_ROWS[2:4], cache_dir=None)
    assert result.feature_dims == {"hog": 324, "hue": 10}
    assert [r.spec.inputs for r in result.rows] == ["features", "features"]
    # the hue block alone tells the squares apart: red in bin 0, green in bin 3, blue in bin 6
    feats, parts, *_ = compare.feature_splits(data, None)
    hue = feats["test"][:, parts["hog"] :]
    expected = {data.classes.index(c): b for c, b in (("red", 0), ("green", 3), ("blue", 6))}
    assert [int(np.argmax(h)) for h in hue] == [expected[int(y)] for y in data.y_test]


def test_cli_compare_writes_the_markdown(tmp_path, capsys):
    out = tmp_path / "table"
    args = ["compare", "--dataset", "digits", "--max-train", "300", "--max-test", "60"]
    args += ["--epochs", "1", "--out", str(out), "--workers", "1", "--cache-dir", str(tmp_path)]
    assert main([*args, "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "2-layer net  features" in text and f"table: {out / 'compare.md'}" in text
    markdown = (out / "compare.md").read_text()
    assert markdown.startswith("# Pixels vs hand-designed features: 8x8 digits")
    assert markdown.count("\n| ") == 8
    saved = json.loads((out / "compare.json").read_text())
    assert len(saved["rows"]) == 6 and saved["features_cached"] is False
    assert main([*args, "--json"]) == 0  # a second time: features from the cache
    assert json.loads(capsys.readouterr().out)["features_cached"] is True


def test_cli_compare_refuses_zero_workers(capsys):
    assert main(["compare", "--dataset", "digits", "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_a_comparison_needs_rows(digits):
    with pytest.raises(ConfigError, match="at least one row"):
        compare.compare(digits, [])


def test_bad_rows_are_refused_before_any_work(digits):
    with pytest.raises(ConfigError, match="epochs"):
        compare.compare(digits, SMALL_ROWS, epochs=0)
    bad = dataclasses.replace(SMALL_ROWS[0], model="mlp")
    with pytest.raises(ConfigError, match="model"):
        compare.compare(digits, [SMALL_ROWS[0], bad])


def test_a_corrupt_cache_file_is_computed_again(digits, tmp_path):
    first, *_ = compare.feature_splits(digits, tmp_path)
    (cached,) = tmp_path.glob("features/*.npz")
    cached.write_bytes(b"not a zip file")
    again, _, _, from_cache = compare.feature_splits(digits, tmp_path)
    assert not from_cache
    np.testing.assert_array_equal(first["train"], again["train"])
    assert compare.feature_splits(digits, tmp_path)[3]  # and the file was replaced


def test_cli_compare_says_where_the_features_come_from(tmp_path, capsys):
    args = ["compare", "--dataset", "digits", "--max-train", "200", "--max-test", "40"]
    args += ["--epochs", "1", "--out", str(tmp_path / "t"), "--cache-dir", str(tmp_path)]
    assert main(args) == 0
    first = capsys.readouterr().err.splitlines()
    assert first[0].startswith("extracting features of 240 images (")
    assert first[0].endswith(f"; they are then cached in {tmp_path / 'features'}")
    assert first[1].startswith("features: 324 per image, computed in ")
    assert f"; cached in {tmp_path / 'features'}/digits-" in first[1]
    assert main(args) == 0
    second = capsys.readouterr().err.splitlines()
    assert not any("extracting" in line for line in second)  # read back, not extracted
    assert second[0].startswith("features: 324 per image, read from the cache (")


# --- interruption: real signals to the whole process group, as a terminal's Ctrl-C sends ----


@pytest.fixture(scope="module")
def slow_folder(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """875 grey 160x160 images (HOG takes a few seconds), decoded once into a shared cache."""
    import io
    import os
    import tarfile

    root = tmp_path_factory.mktemp("slow")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:160, 0:160] / 160
    archive = root / "images.tar"
    with tarfile.open(archive, "w") as tar:
        for split, count in (("train", 700), ("test", 175)):
            for i in range(count):
                wave = np.sin(
                    (xx * (3 + i % 2) + yy * rng.uniform(1, 4)) * 6.28 + rng.uniform(0, 6)
                )
                buffer = io.BytesIO()
                Image.fromarray(((wave + 1) * 127.5).astype(np.uint8)).save(buffer, "PNG")
                info = tarfile.TarInfo(f"{split}/c{i % 2}/{i:04d}.png")
                info.size = len(buffer.getvalue())
                tar.addfile(info, io.BytesIO(buffer.getvalue()))
    env = {**os.environ, "CHAINRULE_CACHE": str(root / "cache")}
    cr_data.load("image-folder", root=archive, cache_dir=root / "cache")
    return archive, env


def interrupt(slow_folder, tmp_path, sig, wait_for: str, delay: float, twice: bool = False):
    """Start compare in its own process group, wait for a line on stderr, then send ``sig`` to
    the group; returns (exit status, stderr after that line, seconds to exit, whole stderr)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    archive, env = slow_folder
    command = [sys.executable, "-m", "chainrule", "compare", "--dataset", "image-folder"]
    command += ["--root", str(archive), "--no-cache", "--epochs", "1", "--workers", "2"]
    command += ["--out", str(tmp_path / "out")]
    process = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    before = []
    while wait_for not in (line := process.stderr.readline()):
        assert line, f"exited before {wait_for!r}: {''.join(before)}"
        before.append(line)
    before.append(line)
    time.sleep(delay)
    os.killpg(process.pid, sig)
    if twice:
        time.sleep(0.05)
        os.killpg(process.pid, sig)
    sent = time.monotonic()
    try:  # a worker left behind would hold stderr open: that is a hang too
        rest = process.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"still running (or a worker still holds stderr) 30 s after {sig!r}")
    took = time.monotonic() - sent
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):  # no worker is left in the group
        os.killpg(process.pid, 0)
    return process.returncode, rest, took, "".join(before) + rest


MOMENTS = [
    ("SIGINT", "extracting features", 0.0, False),
    ("SIGINT", "extracting features", 0.3, False),
    ("SIGINT", "extracting features", 0.8, False),
    ("SIGTERM", "extracting features", 0.3, False),
    ("SIGINT", "extracting features", 0.3, True),  # a second Ctrl-C while stopping
    ("SIGINT", "on pixels: test accuracy", 0.05, False),  # training the rows
    ("SIGTERM", "on pixels: test accuracy", 0.05, False),
]


@pytest.mark.parametrize(("name", "wait_for", "delay", "twice"), MOMENTS)
def test_a_signal_stops_compare_with_one_line(slow_folder, tmp_path, name, wait_for, delay, twice):
    import signal

    sig = getattr(signal, name)
    status, rest, took, everything = interrupt(slow_folder, tmp_path, sig, wait_for, delay, twice)
    assert status == 128 + sig, everything
    assert rest == f"chainrule compare: interrupted by {name}\n", everything
    assert "Traceback" not in everything
    assert took < 5, f"took {took:.1f} s to exit"
    if "extracting" in wait_for:  # it was stopped inside the extraction, not after it
        assert "features: 324 per image" not in everything
    assert not (tmp_path / "out").exists()  # no table from a run cut short
