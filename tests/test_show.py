"""A run's weights as images: one PNG per class, the features grid, the side-by-side figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chainrule import data as cr_data
from chainrule import nn
from chainrule.app.cli import main
from chainrule.engine.errors import ConfigError, DataNotFoundError
from chainrule.lessons import show
from chainrule.training import checkpoints
from chainrule.training.config import TrainConfig


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """Two run folders as ``chainrule train`` leaves them, minus the figures (which are slow)."""
    root = tmp_path_factory.mktemp("runs")
    data = cr_data.load("digits")
    for model in ("linear-svm", "two-layer"):
        config = TrainConfig(model=model, hidden=[16])
        net = nn.build_model(
            config.model_config(data.num_features, data.num_classes), config.weights_rng()
        )
        (root / model).mkdir()
        checkpoints.save_model(
            root / model / checkpoints.MODEL_FILE,
            net,
            data.preprocessing,
            data.classes,
            data.image_shape,
            {"dataset": "digits"},
        )
        summary = {"test_accuracy": 0.5}
        (root / model / "summary.json").write_text(json.dumps(summary))
    return root


def test_show_linear_run_writes_one_png_per_class(runs_dir, tmp_path):
    shown = show.show_run(runs_dir / "linear-svm", tmp_path)
    assert shown.kind == "templates"
    per_class = sorted((tmp_path / "templates").glob("*.png"))
    assert [p.stem for p in per_class] == [str(d) for d in range(10)]
    image = np.asarray(Image.open(per_class[0]))
    assert image.shape == (128, 128)  # 8x8 digits, each pixel a 16x16 square
    assert image.min() == 0 and image.max() == 255  # rescaled to the full range
    assert (tmp_path / "templates.png").is_file()
    assert set(shown.paths) == {*per_class, tmp_path / "templates.png"}


def test_show_defaults_to_the_run_folder(runs_dir):
    shown = show.show_run(runs_dir / "linear-svm")
    assert (runs_dir / "linear-svm" / "templates" / "7.png").is_file()
    assert len(shown.paths) == 11


def test_show_net_run_writes_the_features_grid(runs_dir, tmp_path):
    shown = show.show_run(runs_dir / "two-layer" / "model.safetensors", tmp_path)
    assert shown.kind == "features" and shown.paths == [tmp_path / "features.png"]
    assert Image.open(shown.paths[0]).size[0] > 200


def test_colour_templates_keep_their_channels(tmp_path):
    # A 2x2 colour template whose red channel is high everywhere: the PNG must be red.
    W = np.zeros((1, 2 * 2 * 3))
    W[0, 0::3] = 1.0  # (H, W, C) order: every third value is red
    (path,) = show.save_templates(W, (2, 2, 3), ["red one"], tmp_path)
    assert path.name == "red_one.png"
    image = np.asarray(Image.open(path))
    assert image.shape == (128, 128, 3)
    assert (image[..., 0] == 255).all() and (image[..., 1:] == 0).all()


def test_file_names_are_safe_and_unique():
    assert show.file_names(["T-shirt/top", "a b", "a b", "..", "cat"]) == [
        "T-shirt_top",
        "a_b",
        "a_b_2",
        "class3",
        "cat",
    ]


def test_side_by_side_figure(runs_dir, tmp_path):
    path = show.plot_side_by_side(
        runs_dir / "two-layer", runs_dir / "linear-svm", tmp_path / "c.png"
    )
    assert Image.open(path).size[0] > 400
    with pytest.raises(ConfigError, match="one linear run"):
        show.plot_side_by_side(runs_dir / "two-layer", runs_dir / "two-layer", tmp_path / "x.png")


def test_cli_show(runs_dir, tmp_path, capsys):
    assert main(["show", str(runs_dir / "linear-svm"), "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "templates" and len(out["paths"]) == 11
    args = ["show", str(runs_dir / "linear-svm"), "--compare", str(runs_dir / "two-layer")]
    assert main([*args, "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "templates-vs-features.png")


def test_cli_show_missing_run(tmp_path, capsys):
    assert main(["show", str(tmp_path / "nothing")]) == 1
    assert "no model at" in capsys.readouterr().err
    with pytest.raises(DataNotFoundError):
        show.model_file(tmp_path)
