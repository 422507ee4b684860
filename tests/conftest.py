"""Shared test helpers: where the real data lives, and the rule for when it is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def require(path: Path) -> None:
    """Skip when ``path`` is missing, unless $CI is set: there a missing dataset is a failure."""
    if path.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing; CI is set, so the real-data tests must run")
    pytest.skip(f"{path} is missing")
