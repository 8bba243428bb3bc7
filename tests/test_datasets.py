"""Tests for bs4nn.sw.datasets: real MNIST/Fashion-MNIST, file checks, download, digits."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from bs4nn.sw import datasets
from bs4nn.sw.datasets import DATASETS, DatasetError, load, resolve_data_dir

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared datasets folder {SHARED} not found")

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
T10K_IMAGES, T10K_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the user's BS4NN_* settings or touches the real network mirrors."""
    monkeypatch.delenv("BS4NN_DATA", raising=False)
    monkeypatch.delenv("BS4NN_MIRROR", raising=False)
    monkeypatch.setattr(datasets, "MIRRORS", {k: (closed_port_url(),) for k in datasets.MIRRORS})


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there any more


def copy_mnist_test(dst_root: Path, name: str = "mnist") -> Path:
    """Copy the (small) test split of ``name`` from SHARED into ``dst_root/name``."""
    folder = dst_root / name
    folder.mkdir(parents=True)
    for f in (T10K_IMAGES, T10K_LABELS):
        shutil.copyfile(SHARED / name / f"{f}.gz", folder / f"{f}.gz")
    return folder


def gunzip(path: Path) -> Path:
    raw = path.with_suffix("")
    raw.write_bytes(gzip.decompress(path.read_bytes()))
    path.unlink()
    return raw


# ----------------------------------------------------------------------------- real data

@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("name, first, counts", [
    ("mnist", [5, 0, 4, 1, 9], MNIST_TRAIN_COUNTS),
    ("fashion-mnist", [9, 0, 0, 3, 0], [6000] * 10),
])
def test_real_train(name, first, counts):
    ds = load(name, "train", data_dir=SHARED, download=False, progress=False)
    assert (ds.name, ds.split) == (name, "train")
    assert ds.images.shape == (60000, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (60000,) and ds.labels.dtype == np.uint8
    assert ds.labels[:5].tolist() == first
    assert np.bincount(ds.labels, minlength=10).tolist() == counts
    assert ds.images.min() == 0 and ds.images.max() == 255
    assert str(SHARED / name / "train-images-idx3-ubyte.gz") in ds.source


@needs_shared
@pytest.mark.parametrize("name, first, counts", [
    ("mnist", [7, 2, 1, 0, 4], MNIST_TEST_COUNTS),
    ("fashion-mnist", [9, 2, 1, 1, 6], [1000] * 10),
])
def test_real_test(name, first, counts, monkeypatch):
    monkeypatch.setenv("BS4NN_DATA", str(SHARED))  # also exercises the env lookup
    ds = load(name, "test", download=False, progress=False)
    assert ds.images.shape == (10000, 28, 28) and len(ds) == 10000
    assert ds.labels[:5].tolist() == first
    assert np.bincount(ds.labels, minlength=10).tolist() == counts
    # pixel mean from the README: MNIST test 0.1325, Fashion test 0.2868
    assert ds.images.mean() / 255 == pytest.approx(0.1325 if name == "mnist" else 0.2868, abs=5e-4)


@needs_shared
def test_raw_files_accepted(tmp_path):
    folder = copy_mnist_test(tmp_path)
    ref = load("mnist", "test", data_dir=tmp_path, download=False, progress=False)
    raw_images, raw_labels = gunzip(folder / f"{T10K_IMAGES}.gz"), gunzip(folder / f"{T10K_LABELS}.gz")
    ds = load("mnist", "test", data_dir=tmp_path, download=False, progress=False)
    assert str(raw_images) in ds.source and str(raw_labels) in ds.source and ".gz" not in ds.source
    np.testing.assert_array_equal(ds.images, ref.images)
    np.testing.assert_array_equal(ds.labels, ref.labels)


# ----------------------------------------------------------------------------- bad files

@needs_shared
def test_missing_file(tmp_path):
    folder = copy_mnist_test(tmp_path)
    (folder / f"{T10K_LABELS}.gz").unlink()
    with pytest.raises(DatasetError, match=rf"{T10K_LABELS}\.gz: missing") as err:
        load("mnist", "test", data_dir=tmp_path, download=False)
    assert "BS4NN_DATA" in str(err.value) and "\n" not in str(err.value)


@needs_shared
@pytest.mark.parametrize("compressed", [True, False], ids=["gz", "raw"])
def test_truncated_file(tmp_path, compressed):
    path = copy_mnist_test(tmp_path) / f"{T10K_LABELS}.gz"
    if not compressed:
        path = gunzip(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=rf"{path.name}: truncated"):
        load("mnist", "test", data_dir=tmp_path, download=False)


@needs_shared
@pytest.mark.parametrize("compressed", [True, False], ids=["gz", "raw"])
def test_corrupt_file(tmp_path, compressed):
    path = copy_mnist_test(tmp_path) / f"{T10K_LABELS}.gz"
    if not compressed:
        path = gunzip(path)
    data = bytearray(path.read_bytes())
    data[0:4] = b"\x00\x00\x08\x03" if not compressed else b"XXXX"  # bad IDX magic / bad gzip magic
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=rf"{path.name}: corrupt"):
        load("mnist", "test", data_dir=tmp_path, download=False)


@needs_shared
@pytest.mark.parametrize("compressed", [True, False], ids=["gz", "raw"])
def test_tampered_file(tmp_path, compressed):
    """A well-formed file with one label changed is refused by its checksum."""
    path = copy_mnist_test(tmp_path) / f"{T10K_LABELS}.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # first label 7 -> 8
    if compressed:
        path.write_bytes(gzip.compress(bytes(raw)))
    else:
        path.unlink()
        path = path.with_suffix("")
        path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=rf"{path.name}: tampered .*expected sha256 [0-9a-f]+\.\.\., got [0-9a-f]+"):
        load("mnist", "test", data_dir=tmp_path, download=False)


def test_parse_idx_checks():
    ok = (0x801).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes([1, 2, 3])
    assert datasets._parse_idx(ok, Path("x"), images=False).tolist() == [1, 2, 3]
    with pytest.raises(DatasetError, match="x: truncated"):
        datasets._parse_idx(ok[:-1], Path("x"), images=False)
    with pytest.raises(DatasetError, match="x: corrupt .*trailing"):
        datasets._parse_idx(ok + b"\0", Path("x"), images=False)
    with pytest.raises(DatasetError, match="x: corrupt .*magic"):
        datasets._parse_idx(ok, Path("x"), images=True)
    img = (0x803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (1, 28, 27)) + bytes(28 * 27)
    with pytest.raises(DatasetError, match="28x27"):
        datasets._parse_idx(img, Path("x"), images=True)


# ----------------------------------------------------------------------------- download

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server serving a copy of the MNIST test split; yields (base_url, served_root)."""
    root = tmp_path / "served"
    copy_mnist_test(root)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@needs_shared
def test_download_good(tmp_path, mirror, monkeypatch):
    url, _ = mirror
    monkeypatch.setenv("BS4NN_MIRROR", url)
    target = tmp_path / "data"
    ds = load("mnist", "test", data_dir=target, progress=False)
    assert ds.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert sorted(p.name for p in (target / "mnist").iterdir()) == [f"{T10K_IMAGES}.gz", f"{T10K_LABELS}.gz"]
    for f in (T10K_IMAGES, T10K_LABELS):
        assert (target / "mnist" / f"{f}.gz").read_bytes() == (SHARED / "mnist" / f"{f}.gz").read_bytes()


@needs_shared
@pytest.mark.parametrize("bad, kept", [(T10K_IMAGES, []), (T10K_LABELS, [f"{T10K_IMAGES}.gz"])])
def test_download_tampered_refused(tmp_path, mirror, bad, kept):
    url, served = mirror
    path = served / "mnist" / f"{bad}.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, different content
    path.write_bytes(bytes(data))
    target = tmp_path / "data"
    with pytest.raises(DatasetError, match=rf"{bad}\.gz: missing.*tampered.*expected sha256"):
        load("mnist", "test", data_dir=target, progress=False, mirror=url)
    # the tampered file and its temp file are gone; only verified files stay
    assert sorted(p.name for p in (target / "mnist").iterdir()) == kept


def test_no_network_never_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("BS4NN_MIRROR", closed_port_url())
    with pytest.raises(DatasetError) as err:
        load("mnist", "train", data_dir=tmp_path, progress=False)
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and "neither in" in msg and str(tmp_path) in msg
    assert "--data-dir" in msg and "BS4NN_DATA" in msg and "\n" not in msg
    assert not list((tmp_path / "mnist").iterdir())


def test_builtin_mirrors_all_tried(tmp_path, monkeypatch):
    first, second = closed_port_url(), closed_port_url()
    monkeypatch.setattr(datasets, "MIRRORS", {"mnist": (first, second), "fashion-mnist": (first,)})
    assert datasets._mirror_urls("mnist", T10K_LABELS, None) == [
        f"{first}{T10K_LABELS}.gz", f"{second}{T10K_LABELS}.gz"]
    with pytest.raises(DatasetError, match=rf"tried 2 mirror\(s\), last error: {second}"):
        load("mnist", "test", data_dir=tmp_path, progress=False)


# ----------------------------------------------------------------------------- digits & API

def test_digits():
    from sklearn.datasets import load_digits

    raw = load_digits()
    train, test = load("digits", "train"), load("digits", "test")
    assert train.images.shape == (1437, 8, 8) and test.images.shape == (360, 8, 8)
    assert train.images.dtype == test.images.dtype == train.labels.dtype == np.uint8
    assert train.source == "scikit-learn digits" and (train.name, test.split) == ("digits", "test")
    labels = np.concatenate([train.labels, test.labels])
    np.testing.assert_array_equal(labels, raw.target)
    images = np.concatenate([train.images, test.images])
    assert images.min() == 0 and images.max() == 255
    # scaling rule round(v * 255 / 16), halves up: 1 -> 16 (15.94), 8 -> 128 (127.5), 16 -> 255
    for v, p in [(0, 0), (1, 16), (7, 112), (8, 128), (9, 143), (16, 255)]:
        assert np.all(images[raw.images == v] == p), v
    np.testing.assert_array_equal(images, np.rint(raw.images * 255 / 16).astype(np.uint8))
    assert raw.images[0, 0, 2:5].tolist() == [5, 13, 9]  # a few pixels by hand
    assert images[0, 0, 2:5].tolist() == [80, 207, 143]  # 79.69, 207.19, 143.44
    # only v = 8 is an exact half
    assert [v for v in range(17) if (255 * v) % 16 == 8] == [8]


@pytest.mark.parametrize("name, split, match", [
    ("cifar10", "train", "unknown dataset 'cifar10'; valid names: digits, mnist, fashion-mnist"),
    ("mnist", "val", "unknown split 'val'; valid splits: train, test"),
    ("digits", "validation", "valid splits: train, test"),
])
def test_unknown_name_or_split(name, split, match, tmp_path):
    with pytest.raises(DatasetError, match=match):
        load(name, split, data_dir=tmp_path)
    assert issubclass(DatasetError, ValueError)
    assert DATASETS == ("digits", "mnist", "fashion-mnist")


def test_resolve_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir(None) == tmp_path / "home" / ".cache" / "bs4nn" / "datasets"
    monkeypatch.setenv("BS4NN_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"
