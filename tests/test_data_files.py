"""Atomic writes (the one helper checkpoints, downloads and the image cache share)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chainrule.data.files import atomic_path, atomic_write_bytes


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list((tmp_path / "out").iterdir()) == []
    with atomic_path(dest) as tmp:
        Path(tmp).write_bytes(b"whole")
    assert dest.read_bytes() == b"whole"
    assert list((tmp_path / "out").iterdir()) == [dest]


def test_the_temporary_file_is_hidden_beside_the_destination(tmp_path):
    dest = tmp_path / "file.bin"
    with atomic_path(dest) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".file.bin.")
        assert tmp.name.endswith(".part") and not dest.exists()
        tmp.write_bytes(b"x")


def test_files_get_the_usual_permissions_and_replace_the_old_one(tmp_path):
    dest = tmp_path / "f"
    dest.write_bytes(b"old")
    old = os.umask(0o027)
    try:
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"new")
    finally:
        os.umask(old)
    assert dest.read_bytes() == b"new"
    assert dest.stat().st_mode & 0o777 == 0o640


def test_a_missing_folder_is_made_only_when_asked(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "missing" / "f", b"x")
    assert not (tmp_path / "missing").exists()
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "no" / "f", make_parents=False):
        pass
    with atomic_path(tmp_path / "made" / "f") as tmp:
        tmp.write_bytes(b"x")
    assert (tmp_path / "made" / "f").read_bytes() == b"x"
