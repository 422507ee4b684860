"""chainrule.data.load: names, arguments and the search path."""

from __future__ import annotations

import pytest

from chainrule.data import DATASETS, load
from chainrule.data.paths import cache_dir, mirror_url, search_dirs
from chainrule.engine.errors import ConfigError, DataNotFoundError


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    for var in ("CHAINRULE_DATA", "CHAINRULE_CACHE", "CHAINRULE_MIRROR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'") as info:
        load("imagenet")
    for name in DATASETS:
        assert name in str(info.value)
    assert "\n" not in str(info.value)


def test_root_belongs_to_image_folder_only(tmp_path):
    with pytest.raises(ConfigError, match="root="):
        load("image-folder")
    with pytest.raises(ConfigError, match="root="):
        load("digits", root=tmp_path)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar10-jpeg"])
def test_missing_data_without_download_names_where_it_looked(tmp_path, name):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match=str(empty)):
        load(name, data_dir=empty, download=False)


def test_a_data_dir_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load("mnist", data_dir=tmp_path / "typo", download=False)


def test_cache_dir_order(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "home" / ".cache" / "chainrule"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "chainrule"
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_search_dirs_order_and_subfolders(monkeypatch, tmp_path):
    data, env, cache = tmp_path / "data", tmp_path / "env", tmp_path / "cache"
    for folder in (data, data / "mnist", env, cache / "mnist"):
        folder.mkdir(parents=True)
    monkeypatch.setenv("CHAINRULE_DATA", str(env))
    monkeypatch.setenv("CHAINRULE_CACHE", str(cache))
    assert search_dirs("mnist", data) == [data, data / "mnist", env, cache, cache / "mnist"]


def test_mirror_url(monkeypatch):
    assert mirror_url("mnist", "a.gz", "https://x/") == "https://x/a.gz"
    monkeypatch.setenv("CHAINRULE_MIRROR", "http://127.0.0.1:8000/")
    assert mirror_url("mnist", "a.gz", "https://x/") == "http://127.0.0.1:8000/mnist/a.gz"
