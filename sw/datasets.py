"""Dataset loaders: MNIST, Fashion-MNIST (checksum-verified IDX files) and sklearn digits.

``load(name, split)`` returns a :class:`Dataset` of uint8 images (N, h, w) in 0..255 and
uint8 labels (N,). MNIST-style files are looked up as
``<data_dir>/<name>/<file>.gz`` or the already decompressed ``<data_dir>/<name>/<file>``;
every file is verified by SHA-256 before it is parsed. Missing files are downloaded
(urllib, verified, then moved into place) unless ``download=False``. Nothing ever falls
back silently to another dataset.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DATASETS", "SPLITS", "MIRRORS", "Dataset", "DatasetError", "load", "resolve_data_dir"]

DATASETS = ("digits", "mnist", "fashion-mnist")
SPLITS = ("train", "test")

# Base URLs tried in order; each holds <file>.gz. Overridden by load(mirror=...) or by
# env BS4NN_MIRROR (a base URL holding <name>/<file>.gz, like the shared datasets folder).
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
DOWNLOAD_TIMEOUT = 20.0  # seconds, per connection / read

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_COUNTS = {"train": 60000, "test": 10000}
_IMAGE_MAGIC, _LABEL_MAGIC = 0x00000803, 0x00000801
_ROWS = _COLS = 28

# Official SHA-256 of each file: (.gz file, decompressed IDX file).
_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "train-labels-idx1-ubyte": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        "t10k-images-idx3-ubyte": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        "t10k-labels-idx1-ubyte": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train-labels-idx1-ubyte": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "t10k-images-idx3-ubyte": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "t10k-labels-idx1-ubyte": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
}

_DIGITS_TRAIN = 1437  # first 1437 of sklearn's 1797 digits; the last 360 are the test split


class DatasetError(ValueError):
    """A dataset cannot be loaded; the message says which file and what is wrong."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a dataset: uint8 images (N, h, w) in 0..255 and uint8 labels (N,)."""

    images: np.ndarray
    labels: np.ndarray
    name: str
    split: str
    source: str

    def __len__(self) -> int:
        return len(self.labels)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The dataset root: ``data_dir``, else env ``BS4NN_DATA``, else ``~/.cache/bs4nn/datasets``."""
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get("BS4NN_DATA") or Path.home() / ".cache" / "bs4nn" / "datasets"
    return Path(data_dir).expanduser()


def load(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
         download: bool = True, progress: bool = True, mirror: str | None = None) -> Dataset:
    """Load ``split`` ("train"/"test") of dataset ``name`` (one of :data:`DATASETS`).

    ``mirror`` (or env ``BS4NN_MIRROR``) replaces the built-in download mirrors with one
    base URL under which ``<name>/<file>.gz`` lives. Raises :class:`DatasetError`.
    """
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if key == "digits":
        return _load_digits(split)

    folder = resolve_data_dir(data_dir) / key
    image_file, label_file = _FILES[split]
    images_path = _locate(key, image_file, folder, download, progress, mirror)
    images = _read_verified(key, image_file, images_path)
    labels_path = _locate(key, label_file, folder, download, progress, mirror)
    labels = _read_verified(key, label_file, labels_path)
    if len(images) != len(labels):
        raise DatasetError(f"{labels_path}: corrupt (holds {len(labels)} labels for {len(images)} images)")
    if len(labels) != _COUNTS[split]:
        raise DatasetError(f"{labels_path}: corrupt (holds {len(labels)} items, expected {_COUNTS[split]})")
    return Dataset(images, labels, key, split, f"{images_path}, {labels_path}")


# ----------------------------------------------------------------------------- digits

def _load_digits(split: str) -> Dataset:
    """sklearn's bundled 8x8 digits, scaled from 0..16 to 0..255.

    Rule: ``p = (255 * v + 8) // 16`` in exact integers, i.e. round(v * 255 / 16) with
    halves rounded up. Only v = 8 gives an exact half (127.5 -> 128); round-half-to-even
    (np.rint, Python round) also gives 128 there, so every common rule agrees.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    raw = bunch.images
    v = raw.astype(np.int64)
    if not np.array_equal(v, raw) or v.min() < 0 or v.max() > 16:
        raise DatasetError("scikit-learn digits: pixels are not integers in 0..16")
    images = ((255 * v + 8) // 16).astype(np.uint8)
    labels = bunch.target.astype(np.uint8)
    part = slice(0, _DIGITS_TRAIN) if split == "train" else slice(_DIGITS_TRAIN, None)
    return Dataset(images[part].copy(), labels[part].copy(), "digits", split, "scikit-learn digits")


# ----------------------------------------------------------------------------- local files

def _locate(name: str, file: str, folder: Path, download: bool, progress: bool,
            mirror: str | None) -> Path:
    """Path of the raw file if present, else of the .gz (downloading it if allowed)."""
    raw, gz = folder / file, folder / f"{file}.gz"
    if raw.is_file():
        return raw
    if gz.is_file():
        return gz
    hint = "put the official files there, or point --data-dir / BS4NN_DATA at a folder holding <name>/<file>[.gz]"
    if not download:
        raise DatasetError(f"{gz}: missing (also no {raw.name}) and download is disabled; {hint}")
    urls = _mirror_urls(name, file, mirror)
    errors = []
    for url in urls:
        try:
            _download(url, gz, _SHA256[name][file][0], progress)
            return gz
        except DatasetError as exc:  # refused (tampered/incomplete) or local I/O problem
            errors.append(f"{url}: {exc}")
        except (OSError, http.client.HTTPException, ValueError) as exc:  # network error
            errors.append(f"{url}: {type(exc).__name__}: {exc}")
    raise DatasetError(f"{gz}: missing; {name} is neither in {folder.parent} nor downloadable "
                       f"(tried {len(urls)} mirror(s), last error: {errors[-1]}); {hint}")


def _mirror_urls(name: str, file: str, mirror: str | None) -> list[str]:
    base = mirror or os.environ.get("BS4NN_MIRROR")
    if base:
        return [f"{base.rstrip('/')}/{name}/{file}.gz"]
    return [f"{m.rstrip('/')}/{file}.gz" for m in MIRRORS[name]]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _read_verified(name: str, file: str, path: Path) -> np.ndarray:
    """Verify ``path`` (.gz or raw) by SHA-256, then parse its IDX content."""
    is_gz = path.suffix == ".gz"
    want = _SHA256[name][file][0 if is_gz else 1]
    try:
        got = _sha256_file(path)
        if got != want:
            raise DatasetError(f"{_diagnose(name, file, path, want, got)}; delete it to download it again")
        data = path.read_bytes()
        if is_gz:
            data = gzip.decompress(data)
    except OSError as exc:
        raise DatasetError(f"{path}: unreadable ({exc})") from exc
    except (EOFError, zlib.error) as exc:  # cannot happen after a matching checksum
        raise DatasetError(f"{path}: corrupt ({exc})") from exc
    return _parse_idx(data, path, images=file.split("-")[1] == "images")


def _diagnose(name: str, file: str, path: Path, want: str, got: str) -> str:
    """Explain a checksum mismatch: truncated, corrupt, or tampered (well-formed but different)."""
    mismatch = f"expected sha256 {want[:16]}..., got {got[:16]}..."
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except EOFError:
            return f"{path}: truncated (gzip stream ends early; {mismatch})"
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            return f"{path}: corrupt (bad gzip data: {exc}; {mismatch})"
        if hashlib.sha256(data).hexdigest() == _SHA256[name][file][1]:
            return (f"{path}: tampered or re-compressed (checksum mismatch: {mismatch}); its content is "
                    f"the official one, so gunzip it to {path.with_suffix('').name} to use it")
    try:
        _parse_idx(data, path, images=file.split("-")[1] == "images")
    except DatasetError as exc:
        return f"{exc} ({mismatch})"
    return f"{path}: tampered (checksum mismatch: {mismatch})"


def _parse_idx(data: bytes, path: Path, images: bool) -> np.ndarray:
    """Parse an IDX image file (magic 0x803, N, 28, 28) or label file (magic 0x801, N)."""
    header = 16 if images else 8
    want_magic = _IMAGE_MAGIC if images else _LABEL_MAGIC
    if len(data) >= 4 and (magic := int.from_bytes(data[0:4], "big")) != want_magic:
        raise DatasetError(f"{path}: corrupt (bad IDX magic 0x{magic:08x}, expected 0x{want_magic:08x})")
    if len(data) < header:
        raise DatasetError(f"{path}: truncated (IDX header needs {header} bytes, file has {len(data)})")
    n = int.from_bytes(data[4:8], "big")
    shape = (n,)
    if images:
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        if (rows, cols) != (_ROWS, _COLS):
            raise DatasetError(f"{path}: corrupt (images are {rows}x{cols}, expected {_ROWS}x{_COLS})")
        shape = (n, rows, cols)
    size = header + int(np.prod(shape))
    if len(data) < size:
        raise DatasetError(f"{path}: truncated ({len(data)} bytes, IDX header announces {size})")
    if len(data) > size:
        raise DatasetError(f"{path}: corrupt ({len(data) - size} unexpected trailing bytes)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


# ----------------------------------------------------------------------------- download

def _download(url: str, dest: Path, want: str, progress: bool) -> None:
    """Stream ``url`` into a temp file next to ``dest``, check SHA-256, then move into place."""
    from tqdm import tqdm

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise DatasetError(f"cannot write to {dest.parent} ({exc})") from exc
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "bs4nn-datasets"})
        h, received = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                      disable=None if progress else True, leave=False) as bar:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise DatasetError(f"incomplete download ({received} of {total} bytes)")
        got = h.hexdigest()
        if got != want:
            raise DatasetError(f"download refused, tampered (checksum mismatch: expected sha256 "
                               f"{want[:16]}..., got {got[:16]}...); nothing kept")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
