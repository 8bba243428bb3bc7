"""Spike dumps (.npz): what a run of the reference, the simulator or the board did, image by image.

Keys (docs/artifact-format.md): `spikes_l{k}` int16 (N, n_out_k) per weight layer, `decision` and
`first_spike_bin` int16 (N,), `labels` int16 (N,) when known, `config` a 0-d string array holding a JSON
object, and `cycles` int64 (N,) in hardware traces. Spike bins are 1 .. 256 (256 = never / not recorded).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bs4nn.sw.semantics import T_MAX

_SPIKES = re.compile(r"spikes_l(0|[1-9][0-9]*)")
_OTHER_KEYS = {"decision", "first_spike_bin", "labels", "config", "cycles"}


class DumpError(ValueError):
    """A spike dump (or what is about to be written as one) is not valid; the message names the file."""


@dataclass(frozen=True)
class Dump:
    spikes: list[np.ndarray]  # per weight layer k: int16 (N, n_out_k), bins 1 .. 256
    decision: np.ndarray  # int16 (N,)
    first_spike_bin: np.ndarray  # int16 (N,), 1 .. 256
    labels: np.ndarray | None  # int16 (N,), or None when unknown
    config: dict
    cycles: np.ndarray | None = None  # int64 (N,), hardware traces only

    @property
    def n_images(self) -> int:
        return int(self.decision.shape[0])


def _check(where: str, arrays: dict) -> None:
    """Dtypes, shapes and ranges of the dump's arrays (already in their stored dtypes)."""
    spikes = [arrays[f"spikes_l{k}"] for k in range(sum(1 for key in arrays if _SPIKES.fullmatch(key)))]
    if not spikes:
        raise DumpError(f"{where}: no spikes_l0 array")
    n = spikes[0].shape[0] if spikes[0].ndim == 2 else -1
    expected = {f"spikes_l{k}": (np.int16, None) for k in range(len(spikes))}
    expected |= {"decision": (np.int16, (n,)), "first_spike_bin": (np.int16, (n,)),
                 "labels": (np.int16, (n,)), "cycles": (np.int64, (n,))}
    for key, (dtype, shape) in expected.items():
        if key not in arrays:
            continue
        a = arrays[key]
        if a.dtype != dtype:
            raise DumpError(f"{where}: {key} has dtype {a.dtype}, expected {np.dtype(dtype)}")
        if shape is None and (a.ndim != 2 or a.shape[0] != n):
            raise DumpError(f"{where}: {key} has shape {a.shape}, expected (N, n_out) with N = {n} images")
        if shape is not None and a.shape != shape:
            raise DumpError(f"{where}: {key} has shape {a.shape}, expected {shape} (one per image)")
    n_classes = spikes[-1].shape[1]
    ranges = {key: (1, T_MAX) for key in expected if key.startswith("spikes_l")}
    ranges |= {"first_spike_bin": (1, T_MAX), "decision": (0, n_classes - 1), "labels": (0, n_classes - 1),
               "cycles": (0, np.iinfo(np.int64).max)}
    for key, (lo, hi) in ranges.items():
        a = arrays.get(key)
        if a is not None and a.size and (a.min() < lo or a.max() > hi):
            raise DumpError(f"{where}: {key} has values {a.min()}..{a.max()}, expected {lo}..{hi}")


def _as_int(where: str, name: str, value, dtype) -> np.ndarray:
    a = np.asarray(value)
    if not np.issubdtype(a.dtype, np.integer):
        raise DumpError(f"{where}: {name} must hold integers, got dtype {a.dtype}")
    info = np.iinfo(dtype)
    if a.size and (a.min() < info.min or a.max() > info.max):
        raise DumpError(f"{where}: {name} has values {a.min()}..{a.max()} that do not fit {np.dtype(dtype)}")
    return a.astype(dtype)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_dump(path, inference, labels=None, config: dict | None = None, cycles=None) -> Path:
    """Write `inference` (anything with .spikes, .decision, .first_spike_bin) to the .npz file `path`
    atomically (temporary file beside it, then os.replace). `path` is used exactly as given."""
    path = Path(path)
    if not isinstance(config, (dict, type(None))):
        raise DumpError(f"{path}: config must be a dict, got {type(config).__name__}")
    try:
        config_json = json.dumps(config or {}, sort_keys=True, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as e:
        raise DumpError(f"{path}: config is not JSON serialisable ({e})") from None
    arrays = {f"spikes_l{k}": _as_int(path, f"spikes_l{k}", s, np.int16) for k, s in enumerate(inference.spikes)}
    arrays["decision"] = _as_int(path, "decision", inference.decision, np.int16)
    arrays["first_spike_bin"] = _as_int(path, "first_spike_bin", inference.first_spike_bin, np.int16)
    if labels is not None:
        arrays["labels"] = _as_int(path, "labels", labels, np.int16)
    if cycles is not None:
        arrays["cycles"] = _as_int(path, "cycles", cycles, np.int64)
    _check(str(path), arrays)
    arrays["config"] = np.array(config_json)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def _load(path: Path) -> dict:
    problems = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DumpError(f"{path}: missing") from None
    except problems as e:
        raise DumpError(f"{path}: not a readable .npz file ({e})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DumpError(f"{path}: a single .npy array, not an .npz spike dump")
    try:
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except problems as e:
        raise DumpError(f"{path}: not a readable .npz file ({e})") from None


def read_dump(path) -> Dump:
    """Read and check a spike dump; any problem raises DumpError naming the file."""
    path = Path(path)
    arrays = _load(path)
    unknown = sorted(k for k in arrays if k not in _OTHER_KEYS and not _SPIKES.fullmatch(k))
    missing = sorted({"decision", "first_spike_bin", "config"} - set(arrays))
    if unknown or missing:
        raise DumpError(f"{path}: unknown keys {unknown}, missing keys {missing}")
    n_layers = sum(1 for k in arrays if _SPIKES.fullmatch(k))
    if any(f"spikes_l{k}" not in arrays for k in range(n_layers)):
        raise DumpError(f"{path}: spikes_l* keys are not numbered 0..{n_layers - 1}: {sorted(arrays)}")
    _check(str(path), arrays)
    config = arrays["config"]
    if config.shape != () or config.dtype.kind != "U":
        raise DumpError(f"{path}: config must be a 0-d string array, got dtype {config.dtype} shape {config.shape}")
    try:
        config = json.loads(str(config))
    except json.JSONDecodeError as e:
        raise DumpError(f"{path}: config is not valid JSON ({e.msg})") from None
    if not isinstance(config, dict):
        raise DumpError(f"{path}: config must hold a JSON object, got {type(config).__name__}")
    return Dump([arrays[f"spikes_l{k}"] for k in range(n_layers)], arrays["decision"], arrays["first_spike_bin"],
                arrays.get("labels"), config, arrays.get("cycles"))
