"""predict: the user's own files, read by the training rule, made the model's size and polarity,
each change noted; one bad file reported while the others are still classified."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from chainrule.app import experiment, predict
from chainrule.engine.errors import ConfigError, DataNotFoundError
from chainrule.training.config import TrainConfig


def chainrule(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chainrule", "predict", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "digits"
    experiment.train_run(TrainConfig(epochs=20), out, progress=False)
    return out


@pytest.fixture(scope="module")
def digits() -> list[tuple[np.ndarray, int]]:
    """The first 20 digits as 8-bit images, light ink on black as load_digits stores them
    (0 = background, 16 = ink), scaled to 0..255."""
    bunch = load_digits()
    return [
        (np.round(bunch.images[i] * 255 / 16).astype(np.uint8), int(bunch.target[i]))
        for i in range(20)
    ]


def write(array: np.ndarray, path: Path) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def test_a_16_bit_png_is_predicted_like_its_8_bit_twin(digits_run, digits, tmp_path):
    """The report: a 16-bit '3' came out '5 (0.53)': its pixels were clipped to 0 or 255."""
    eight = [write(image, tmp_path / f"{i}.png") for i, (image, _) in enumerate(digits)]
    sixteen = [
        write(image.astype(np.uint16) * 257, tmp_path / f"{i}-16.png")
        for i, (image, _) in enumerate(digits)
    ]
    first = predict.predict_images(digits_run, eight)
    second = predict.predict_images(digits_run, sixteen)
    assert [p.top3 for p in first] == [p.top3 for p in second]  # the same numbers exactly
    assert all(p.notes == ["16-bit grey (I;16) scaled to 8 bits"] for p in second)
    truth = [label for _, label in digits]
    assert np.mean([int(p.class_name) == t for p, t in zip(second, truth)]) >= 0.9
    assert second[3].class_name == "3" == str(truth[3])


def test_one_bad_file_is_reported_and_the_rest_predicted(digits_run, digits, tmp_path):
    good = write(digits[0][0], tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    other = write(digits[1][0], tmp_path / "other.png")
    done = chainrule(str(digits_run), good, str(bad), str(tmp_path / "missing.png"), other)
    assert done.returncode == 1
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == [good, other]
    errors = done.stderr.strip().splitlines()
    assert errors[0].startswith(f"chainrule predict: error: cannot decode image {bad}: not an")
    assert errors[1] == (
        f"chainrule predict: error: image {tmp_path / 'missing.png'} does not exist; "
        "expected an image file"
    )
    assert errors[2] == "chainrule predict: 2 of 4 images could not be read (named above)"
    assert len(errors) == 3 and "Traceback" not in done.stderr
    as_json = json.loads(chainrule(str(digits_run), good, str(bad), "--json").stdout)
    assert as_json[0]["class"] == str(digits[0][1]) and as_json[0]["notes"] == []
    assert as_json[1] == {"image": str(bad), "error": as_json[1]["error"]}
    assert "not an image file" in as_json[1]["error"]


def test_a_folder_predicts_every_image_in_it(digits_run, digits, tmp_path):
    folder = tmp_path / "mine"
    (folder / "more").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    write(digits[2][0], folder / "b.png")
    write(digits[3][0], folder / "a.png")
    write(digits[4][0], folder / "more" / "c.png")
    write(digits[5][0], folder / ".hidden" / "d.png")
    (folder / "notes.txt").write_text("not an image: left out")
    found = predict.predict_images(digits_run, [str(folder)])
    assert [Path(p.image).relative_to(folder).as_posix() for p in found] == [
        "a.png",
        "b.png",
        "more/c.png",
    ]
    assert [p.class_name for p in found] == [str(digits[i][1]) for i in (3, 2, 4)]
    (tmp_path / "empty").mkdir()
    [nothing] = predict.predict_images(digits_run, [str(tmp_path / "empty")])
    assert nothing.error == f"{tmp_path / 'empty'} is a folder without image files; expected " + (
        "images in it"
    )


def test_another_size_is_resized_with_a_note(digits_run, digits, tmp_path):
    image = digits[3][0]
    small = write(image, tmp_path / "small.png")
    big = write(np.kron(image, np.ones((4, 4), np.uint8)), tmp_path / "big.png")
    done = chainrule(str(digits_run), small, big)
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].split(": ")[1] == lines[1].split(": ")[1]  # box filter: the same pixels
    assert done.stderr == f"chainrule predict: note: {big}: resized from 32x32 to 8x8 (HxW)\n"


def test_dark_ink_on_white_is_inverted_for_a_digits_model(digits_run, digits, tmp_path):
    """load_digits stores light ink on a dark ground (0 = background); a drawing is the
    reverse. auto inverts it, with a note; --invert no keeps it; --invert yes forces it."""
    paths = [write(255 - image, tmp_path / f"paper{i}.png") for i, (image, _) in enumerate(digits)]
    plain = [write(image, tmp_path / f"{i}.png") for i, (image, _) in enumerate(digits)]
    auto = predict.predict_images(digits_run, paths)
    reference = predict.predict_images(digits_run, plain)
    assert [p.top3 for p in auto] == [p.top3 for p in reference]
    assert all(p.inverted and "inverted: its background is light" in p.notes[0] for p in auto)
    assert not any(p.inverted or p.notes for p in reference)  # already the model's polarity
    kept = predict.predict_images(digits_run, paths, invert="no")
    assert not any(p.inverted for p in kept)
    truth = [label for _, label in digits]
    assert np.mean([int(p.class_name) == t for p, t in zip(kept, truth)]) < 0.5
    forced = predict.predict_images(digits_run, plain[:1], invert="yes")
    assert forced[0].inverted and forced[0].notes == ["inverted (--invert yes)"]
    done = chainrule(str(digits_run), paths[0])
    assert "inverted: its background is light (border 1.00)" in done.stderr
    assert "--invert no keeps it as it is" in done.stderr


def test_a_colour_model_is_not_inverted_unless_asked(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "colours"
    for split, count in (("train", 6), ("test", 2)):
        for cls, channel in (("red", 0), ("blue", 2)):
            (root / split / cls).mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 60, (6, 6, 3), dtype=np.uint8)
                image[..., channel] = 200
                write(image, root / split / cls / f"{i}.png")
    run = tmp_path / "run"
    config = TrainConfig(dataset="image-folder", root=str(root), epochs=3, batch_size=4)
    experiment.train_run(config, run, progress=False)
    white = np.full((6, 6, 3), 255, np.uint8)
    white[1:5, 1:5] = (200, 0, 0)
    path = write(white, tmp_path / "white.png")
    [auto] = predict.predict_images(run, [path])
    assert not auto.inverted and auto.notes == []
    [forced] = predict.predict_images(run, [path], invert="yes")
    assert forced.inverted
    grey = write(np.full((12, 12), 90, np.uint8), tmp_path / "grey.png")
    [converted] = predict.predict_images(run, [grey])
    assert converted.notes == ["grey repeated into R, G and B", "resized from 12x12 to 6x6 (HxW)"]


def test_bad_arguments(digits_run, tmp_path):
    with pytest.raises(ConfigError, match="invert is 'maybe'"):
        predict.predict_images(digits_run, [], invert="maybe")
    with pytest.raises(DataNotFoundError, match="no such file"):
        predict.predict_images(tmp_path / "no-run", ["x.png"])
