"""CIFAR-10 python batches: small archives in the official format, written here; a restricted
unpickler that refuses anything but numpy arrays; safe extraction of the tarball."""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from chainrule.data import cifar10, load
from chainrule.data.cifar10 import RemoteArchive, read_batch, unpickle
from chainrule.engine.errors import ChecksumError, DataError

LABEL_NAMES = [
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
]
PER_BATCH = 4


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    for var in ("CHAINRULE_DATA", "CHAINRULE_MIRROR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))


def batch(seed: int, n: int = PER_BATCH) -> dict:
    """A batch as the official files hold it: bytes keys, uint8 (n, 3072) planes, label list."""
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": f"batch {seed}".encode(),
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)],
    }


def dump(obj, path: Path, protocol: int = 2) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def write_batches(parent: Path, protocol: int = 2) -> dict[str, dict]:
    """Write cifar-10-batches-py/ under ``parent``; returns the batches by file name."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {name: batch(i) for i, name in enumerate([*cifar10.TRAIN_FILES, "test_batch"])}
    for name, content in batches.items():
        dump(content, folder / name, protocol)
    meta = {b"num_cases_per_batch": PER_BATCH, b"label_names": LABEL_NAMES, b"num_vis": 3072}
    dump(meta, folder / "batches.meta", protocol)
    return batches


def write_tarball(source_parent: Path, dest: Path, extra: dict[str, bytes] | None = None) -> str:
    """Pack cifar-10-batches-py/ (plus ``extra`` members) as a .tar.gz; returns its MD5."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(source_parent / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.md5(dest.read_bytes()).hexdigest()


def use_md5(monkeypatch, md5: str | None) -> None:
    monkeypatch.setattr(
        cifar10, "ARCHIVE", RemoteArchive("http://unused/", cifar10.ARCHIVE.filename, md5)
    )


@pytest.mark.parametrize("protocol", [2, 4])
def test_load_from_batches_folder_converts_planes_to_hwc(tmp_path, protocol):
    batches = write_batches(tmp_path / "data", protocol)
    ds = load("cifar10", data_dir=tmp_path / "data", download=False, val_size=5)
    assert ds.image_shape == (32, 32, 3) and ds.classes[0] == "airplane"
    assert ds.X_train.shape == (15, 3072) and ds.X_val.shape == (5, 3072)
    assert ds.X_test.shape == (4, 3072)
    official = batches["test_batch"][b"data"]  # rows of R plane, G plane, B plane
    images = ds.preprocessing.invert(ds.X_test).reshape(4, 32, 32, 3)
    for i, h, w, c in [(0, 0, 0, 0), (1, 5, 7, 1), (3, 31, 30, 2)]:
        assert round(float(images[i, h, w, c])) == official[i, c * 1024 + h * 32 + w]
    np.testing.assert_array_equal(ds.y_test, batches["test_batch"][b"labels"])


def test_load_from_the_tarball_extracts_once_into_the_cache(tmp_path, monkeypatch):
    write_batches(tmp_path / "src")
    use_md5(
        monkeypatch, write_tarball(tmp_path / "src", tmp_path / "data" / "cifar-10-python.tar.gz")
    )
    first = load("cifar10", data_dir=tmp_path / "data", download=False)
    extracted = list((tmp_path / "cache" / "cifar10").glob("extracted-*/cifar-10-batches-py"))
    assert len(extracted) == 1 and sorted(p.name for p in extracted[0].iterdir()) == sorted(
        cifar10.ALL_FILES
    )

    def no_second_extraction(*args, **kwargs):
        raise AssertionError("the archive was opened again")

    monkeypatch.setattr(tarfile, "open", no_second_extraction)
    second = load("cifar10", data_dir=tmp_path / "data", download=False)
    np.testing.assert_array_equal(first.X_train, second.X_train)


def test_tarball_with_wrong_md5_is_refused_and_not_extracted(tmp_path, monkeypatch):
    write_batches(tmp_path / "src")
    write_tarball(tmp_path / "src", tmp_path / "data" / "cifar-10-python.tar.gz")
    use_md5(monkeypatch, "0" * 32)
    with pytest.raises(ChecksumError, match=r"cifar-10-python\.tar\.gz: md5 checksum mismatch"):
        load("cifar10", data_dir=tmp_path / "data", download=False)
    assert not list((tmp_path / "cache").rglob("data_batch_1"))


def test_members_outside_the_expected_names_never_land_anywhere(tmp_path, monkeypatch):
    write_batches(tmp_path / "src")
    extra = {
        "../escape.txt": b"x",
        "/tmp/chainrule-absolute.txt": b"x",
        "cifar-10-batches-py/../../up.txt": b"x",
    }
    md5 = write_tarball(tmp_path / "src", tmp_path / "data" / "cifar-10-python.tar.gz", extra)
    use_md5(monkeypatch, md5)
    ds = load("cifar10", data_dir=tmp_path / "data", download=False)
    assert ds.X_test.shape == (4, 3072)
    written = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert not written & {"escape.txt", "chainrule-absolute.txt", "up.txt"}
    assert not Path("/tmp/chainrule-absolute.txt").exists()


def test_a_link_in_place_of_a_batch_is_refused(tmp_path, monkeypatch):
    write_batches(tmp_path / "src")
    dest = tmp_path / "data" / "cifar-10-python.tar.gz"
    dest.parent.mkdir()
    with tarfile.open(dest, "w:gz") as tar:
        for name in cifar10.ALL_FILES:
            path = tmp_path / "src" / "cifar-10-batches-py" / name
            if name == "data_batch_3":
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                tar.add(path, arcname=f"cifar-10-batches-py/{name}")
    use_md5(monkeypatch, None)
    with pytest.raises(DataError, match="data_batch_3 is not a regular file"):
        load("cifar10", data_dir=tmp_path / "data", download=False)


def test_corrupt_tarball_is_a_data_error(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    use_md5(monkeypatch, None)
    with pytest.raises(DataError, match="corrupt tar archive"):
        load("cifar10", data_dir=tmp_path / "data", download=False)


class CallsSystem:
    """Unpickling this would run a shell command, if the unpickler let it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class CallsEval:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("payload", [CallsSystem, CallsEval])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, payload):
    write_batches(tmp_path / "data")
    marker = tmp_path / "pwned"
    poisoned = batch(99)
    poisoned[b"labels"] = payload(marker)  # nested: the dict is half built when it is reached
    dump(poisoned, tmp_path / "data" / "cifar-10-batches-py" / "data_batch_2")
    expected = "posix.system" if payload is CallsSystem and os.name == "posix" else ""
    with pytest.raises(DataError, match=rf"refused to unpickle global .*{expected}") as info:
        load("cifar10", data_dir=tmp_path / "data", download=False)
    assert "data_batch_2" in str(info.value)
    if payload is CallsEval:  # protocol 2 writes Python 3's builtins under Python 2's name
        assert "__builtin__.eval" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_batches_pickled_at_every_protocol_load(tmp_path, protocol):
    # From protocol 5 on, numpy pickles an array through numpy._core.numeric._frombuffer, which
    # only makes an array of bytes: allowed (it was refused as "expected only numpy arrays")
    batches = write_batches(tmp_path / "data", protocol)
    X_train, y_train, X_test, y_test, classes, shape = cifar10.load_cifar10(
        tmp_path / "data", download_missing=False
    )
    assert classes[:2] == ["airplane", "automobile"] and shape == (32, 32, 3)
    assert X_train.dtype == np.uint8 and X_train.shape == (20, 3072)
    official = batches["test_batch"][b"data"]
    planes = official.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).reshape(-1, 3072)
    np.testing.assert_array_equal(X_test, planes)
    np.testing.assert_array_equal(y_test, batches["test_batch"][b"labels"])
    assert y_train.dtype == np.int64


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize(
    "labels",
    [np.arange(4, dtype=np.int64), np.arange(4, dtype=np.uint8), np.arange(4, dtype=">i4")],
)
def test_labels_as_arrays_of_any_integer_dtype_load(tmp_path, protocol, labels):
    path = tmp_path / "data_batch_1"
    dump({**batch(0), b"labels": labels}, path, protocol)
    X, y = read_batch(path)
    np.testing.assert_array_equal(y, [0, 1, 2, 3])
    assert X.shape == (4, 3072)


def test_protocol_5_out_of_band_buffers_are_a_data_error(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(batch(0), protocol=5, buffer_callback=lambda buffer: False))
    with pytest.raises(DataError, match="not a valid CIFAR-10 pickle"):
        unpickle(path)


def _calls(module: str, name: str, args: bytes = b")") -> bytes:
    """A protocol-2 pickle that calls module.name(*args): GLOBAL, the arguments, REDUCE."""
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + args + b"R."


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("posix", "system"),
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("__builtin__", "eval"),
        ("numpy", "load"),
        ("numpy", "fromfile"),
        ("numpy", "frombuffer"),
        ("numpy._core.numeric", "ones"),
        ("numpy._core.numeric", "fromstring"),
        ("numpy.core.numeric", "_frombuffer_"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.testing._private.utils", "runstring"),
        ("_codecs", "decode"),
    ],
)
def test_every_other_global_is_still_refused(tmp_path, module, name):
    path = tmp_path / "data_batch_1"
    path.write_bytes(_calls(module, name))
    with pytest.raises(DataError, match=rf"refused to unpickle global {module}\.{name};"):
        unpickle(path)


def test_frombuffer_cannot_build_an_object_array(tmp_path):
    # _frombuffer(bytes, dtype('O'), ...) would read pointers from the bytes: numpy refuses
    path = tmp_path / "data_batch_1"
    dtype_o = b"cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R"  # numpy.dtype("O8", False, True)
    args = b"(C\x08" + b"\x00" * 8 + dtype_o + b"K\x01\x85X\x01\x00\x00\x00Ct"
    path.write_bytes(_calls("numpy._core.numeric", "_frombuffer", args))
    with pytest.raises(DataError, match="not a valid CIFAR-10 pickle"):
        unpickle(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({b"data": np.zeros((4, 3072), dtype=np.float32)}, "uint8"),
        ({b"data": np.zeros((4, 1024), dtype=np.uint8)}, r"expected \(n, 3072\)"),
        ({b"labels": [0, 1, 2]}, r"expected \(n, 3072\) and \(n,\)"),
        ({b"labels": [0, 1, 2, 10]}, r"labels out of range; expected integers 0\.\.9"),
    ],
)
def test_bad_batch_contents_are_named(tmp_path, change, match):
    path = tmp_path / "data_batch_1"
    dump({**batch(0), **change}, path)
    with pytest.raises(DataError, match=match):
        read_batch(path)


def test_not_a_dict_or_not_a_pickle(tmp_path):
    path = tmp_path / "data_batch_1"
    dump([1, 2, 3], path)
    with pytest.raises(DataError, match="unpickled a list; expected a dict"):
        read_batch(path)
    path.write_bytes(b"garbage that is not a pickle")
    with pytest.raises(DataError, match="not a valid CIFAR-10 pickle"):
        read_batch(path)
