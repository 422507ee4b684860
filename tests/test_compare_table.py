"""The era table written out, from results made by hand: the terminal table, Markdown, JSON."""

from __future__ import annotations

import json

from chainrule.lessons.compare_table import DEFAULT_ROWS, Comparison, RowResult, RowSpec


def cifar_table() -> Comparison:
    table = Comparison("cifar10-jpeg", 100, 10, 20, 3072, {"hog": 324, "hue": 10}, 1.234, False)
    table.rows = [RowResult(DEFAULT_ROWS[0], 0.41234, 0.4, 3, 12.345)]
    table.rows.append(RowResult(DEFAULT_ROWS[5], 0.5, 0.45, 17, 100.0))
    return table


def test_a_row_says_its_settings_in_one_line():
    assert DEFAULT_ROWS[0].settings() == "lr 0.001, reg 0.001, 10 epochs, batch 128"
    assert DEFAULT_ROWS[5].settings() == (
        "500 ReLU units, lr 0.01, reg 0.001, 20 epochs, batch 128, lr ×0.9/epoch"
    )


def test_the_terminal_table():
    lines = cifar_table().table().splitlines()
    assert lines[0] == "cifar10-jpeg: 100 training, 10 validation, 20 test images"
    assert lines[1] == (
        "features: HOG 324 + hue 10 = 334 numbers per image, computed in 1.2 s for all 130 images"
    )
    assert lines[3].split("  ")[0] == "model" and lines[3].endswith("test accuracy  train time")
    assert lines[5].split()[:8] == [
        "linear",
        "SVM",
        "pixels",
        "3072",
        "lr",
        "0.001,",
        "reg",
        "0.001,",
    ]
    assert lines[5].split()[8:] == ["10", "epochs,", "batch", "128", "0.4123", "12.3", "s"]
    assert lines[6].split()[:4] == ["2-layer", "net", "features", "334"]  # D: all features
    assert lines[6].split()[-3:] == ["0.5000", "100.0", "s"]
    assert len(lines[4]) == len(lines[5]) == len(lines[6])  # numbers right-aligned under the rule


def test_the_markdown():
    markdown = cifar_table().markdown()
    assert markdown.startswith("# Pixels vs hand-designed features: CIFAR-10 (JPEG)\n")
    assert (
        "| linear SVM | pixels | 3072 | lr 0.001, reg 0.001, 10 epochs, batch 128 "
        "| 0.4123 | 12.3 s |" in markdown
    )
    assert "| --- | --- | ---: | --- | ---: | ---: |" in markdown
    assert markdown.rstrip().endswith("2-layer net about 0.52 on pixels and 0.55-0.60 on features.")


def test_the_json_and_a_table_without_features():
    saved = json.loads(json.dumps(cifar_table().to_json()))
    assert saved["feature_dims"] == {"hog": 324, "hue": 10} and saved["features_cached"] is False
    assert saved["rows"][1]["spec"] == {
        "label": "2-layer net",
        "model": "two-layer",
        "inputs": "features",
        "lr": 0.01,
        "reg": 0.001,
        "epochs": 20,
        "batch_size": 128,
        "hidden": 500,
        "lr_decay": 0.9,
    }
    assert RowSpec(**saved["rows"][1]["spec"]) == DEFAULT_ROWS[5]
    assert saved["rows"][1]["settings"] == DEFAULT_ROWS[5].settings()
    digits = Comparison("digits", 360, 40, 100, 64, {}, 0.0, True)
    assert digits.features_summary() == "none (no row uses them)"
    assert "CS231n" not in digits.markdown() and "8x8 digits" in digits.markdown()
