"""A lesson's file is replaced in one step: a failed write leaves the old file as it was."""

from __future__ import annotations

import pytest

from chainrule.lessons.atomic import save_atomically


def test_writes_what_the_writer_writes(tmp_path):
    path = tmp_path / "out.bin"
    assert save_atomically(path, lambda f: f.write(b"\x89PNG new")) == path
    assert path.read_bytes() == b"\x89PNG new"


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "figure.png"
    path.write_bytes(b"old figure")

    def half_then_fail(f):
        f.write(b"half a fig")
        raise RuntimeError("the renderer failed")

    with pytest.raises(RuntimeError, match="renderer failed"):
        save_atomically(path, half_then_fail)
    assert path.read_bytes() == b"old figure"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_a_missing_folder_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        save_atomically(tmp_path / "no" / "such.png", lambda f: f.write(b"x"))
