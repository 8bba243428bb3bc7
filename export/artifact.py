"""Model artifacts, format version 1 (docs/artifact-format.md): write, read, and check everything.

An artifact is a directory: manifest.json plus layer{k}.hex ($readmemh) and layer{k}.bin for every
weight layer. Row i of layer k holds R_i, whose bit j is the weight from input i to neuron j
(1 = +1, 0 = -1). The writer builds the directory beside the target and renames it into place; the
reader refuses anything it does not fully understand, with an `ArtifactError` naming the file.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import jsonschema
import numpy as np
from bitstring import BitArray, Bits

from bs4nn.sw.network import Layer, Network
from bs4nn.sw.semantics import ENCODING, T_MAX, TIE_RULE

FORMAT = "bs4nn-artifact"
VERSION = 1
MANIFEST = "manifest.json"
SCHEMA_PATH = Path(__file__).parent / "schema" / "manifest.schema.json"
FIXED_FIELDS = {"encoding": ENCODING, "t_max": T_MAX, "tie_rule": TIE_RULE}
PROVENANCE_KEYS = ("command", "seed", "commit", "created", "source")
SOURCES = ("trained", "imported")
METRIC_KEYS = ("dataset", "split", "n", "strict", "lenient", "first_spike", "no_spike_rate")
RATE_KEYS = ("strict", "lenient", "first_spike", "no_spike_rate")

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)
_HEX_VALUE = np.full(256, -1, np.int16)  # ASCII code -> digit value, -1 for anything but 0-9 a-f
_HEX_VALUE[_HEX_DIGITS] = np.arange(16)
_NEWLINE = ord("\n")


class ArtifactError(ValueError):
    """An artifact (or the input to the writer) is not valid; the message names the file and the problem."""


@dataclass(frozen=True)
class Artifact:
    network: Network
    manifest: dict
    model_id: str
    path: Path

    @property
    def id32(self) -> str:
        """The 32-bit ID the hardware reports: the first 8 hex digits of the model_id."""
        return self.model_id[:8]

    @property
    def dataset_name(self) -> str:
        return self.manifest["dataset"]["name"]


# ---------------------------------------------------------------- encodings

def hex_digits(n_out: int) -> int:
    return -(-n_out // 4)


def row_bytes(n_out: int) -> int:
    return -(-n_out // 8)


def encode_bin(signs: np.ndarray) -> bytes:
    """layer{k}.bin: each row R_i as ceil(n_out/8) little-endian bytes (LSB of byte b = neuron 8b)."""
    n_in, n_out = signs.shape
    nb = row_bytes(n_out)
    bits = np.zeros((n_in, 8 * nb), bool)
    bits[:, :n_out] = signs > 0
    # Written most significant bit first, each row is R_i big-endian; swapping the bytes of every
    # nb-byte row turns it into the little-endian row the format wants.
    stream = BitArray(Bits.from_bools(bits[:, ::-1].ravel().tolist()))
    stream.byteswap(nb, repeat=True)
    return stream.to_bytes()


def encode_hex(signs: np.ndarray) -> bytes:
    """layer{k}.hex: each row R_i as exactly ceil(n_out/4) lowercase hex digits and '\\n'."""
    n_in, n_out = signs.shape
    nd = hex_digits(n_out)
    bits = np.zeros((n_in, 4 * nd), np.uint8)
    bits[:, :n_out] = signs > 0
    nibbles = (bits.reshape(n_in, nd, 4) << np.arange(4, dtype=np.uint8)).sum(axis=2)  # nibble k: neurons 4k..4k+3
    lines = np.full((n_in, nd + 1), _NEWLINE, np.uint8)
    lines[:, :nd] = _HEX_DIGITS[nibbles[:, ::-1]]  # most significant digit first
    return lines.tobytes()


def _canonical(parts) -> bytes:
    """parts: (n_in, n_out, thresholds, bin bytes) per layer."""
    out = bytearray()
    for n_in, n_out, thresholds, data in parts:
        out += struct.pack("<II", n_in, n_out)
        out += np.asarray(thresholds, "<i4").tobytes()
        out += data
    return bytes(out)


def canonical_bytes(network: Network) -> bytes:
    """The bytes whose SHA-256 is the model_id: per layer n_in, n_out (uint32 LE), thresholds (int32 LE), .bin."""
    return _canonical((l.n_in, l.n_out, l.thresholds, encode_bin(l.signs)) for l in network.layers)


def model_id(network: Network) -> str:
    return hashlib.sha256(canonical_bytes(network)).hexdigest()


# ---------------------------------------------------------------- provenance and metrics

def _check_provenance(provenance: dict) -> dict:
    if not isinstance(provenance, dict):
        raise ArtifactError(f"provenance must be a dict, got {type(provenance).__name__}")
    unknown = sorted(set(provenance) - set(PROVENANCE_KEYS))
    missing = [k for k in PROVENANCE_KEYS if k not in provenance and k != "created"]
    if unknown or missing:
        raise ArtifactError(f"provenance: unknown keys {unknown}, missing keys {missing}")
    p = dict(provenance)
    created = datetime.now(timezone.utc) if p.get("created") is None else p["created"]
    p["created"] = created.isoformat(timespec="seconds") if isinstance(created, datetime) else created
    if isinstance(p["seed"], np.integer):
        p["seed"] = int(p["seed"])
    if not isinstance(p["command"], str):
        raise ArtifactError(f"provenance: command must be a string, got {p['command']!r}")
    if p["seed"] is not None and (type(p["seed"]) is not int):
        raise ArtifactError(f"provenance: seed must be an int or None, got {p['seed']!r}")
    if p["commit"] is not None and not isinstance(p["commit"], str):
        raise ArtifactError(f"provenance: commit must be a string or None, got {p['commit']!r}")
    if p["source"] not in SOURCES:
        raise ArtifactError(f"provenance: source must be one of {SOURCES}, got {p['source']!r}")
    _check_iso(p["created"], "provenance")
    return {k: p[k] for k in PROVENANCE_KEYS}


def _check_iso(created, where) -> None:
    try:
        datetime.fromisoformat(created)
    except (TypeError, ValueError):
        raise ArtifactError(f"{where}: created must be an ISO-8601 date and time, got {created!r}") from None


def _check_metrics(metrics) -> list[dict] | None:
    if metrics is None:
        return None
    out = []
    for i, m in enumerate(metrics):
        where = f"metrics[{i}]"
        if not isinstance(m, dict) or set(m) != set(METRIC_KEYS):
            got = sorted(m) if isinstance(m, dict) else type(m).__name__
            raise ArtifactError(f"{where}: must have exactly the keys {list(METRIC_KEYS)}, got {got}")
        row = {k: (m[k].item() if isinstance(m[k], np.generic) else m[k]) for k in METRIC_KEYS}
        for key in ("dataset", "split"):
            if not isinstance(row[key], str) or not row[key]:
                raise ArtifactError(f"{where}.{key} must be a non-empty string, got {row[key]!r}")
        if type(row["n"]) is not int or row["n"] < 0:
            raise ArtifactError(f"{where}.n must be a non-negative int, got {row['n']!r}")
        for key in RATE_KEYS:
            v = row[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ArtifactError(f"{where}.{key} = {v!r} is not a fraction in 0..1 (rates are not percentages)")
            row[key] = float(v)
        out.append(row)
    return out


# ---------------------------------------------------------------- writing

def _dumps(value, indent: int = 0) -> str:
    """JSON with one key per line, but lists of plain values (thresholds, input_shape) on one line."""
    pad = "  " * indent
    if isinstance(value, dict) and value:
        items = [f"{pad}  {json.dumps(k)}: {_dumps(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [f"{pad}  {_dumps(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False)


def build_files(network: Network, dataset_name: str, provenance: dict, metrics=None) -> tuple[dict, dict]:
    """The manifest and every file of the artifact, as {file name: bytes}; nothing is written."""
    if not isinstance(network, Network):
        raise ArtifactError(f"network must be a Network, got {type(network).__name__}")
    if not isinstance(dataset_name, str) or not dataset_name:
        raise ArtifactError(f"dataset_name must be a non-empty string, got {dataset_name!r}")
    provenance = _check_provenance(provenance)
    metrics = _check_metrics(metrics)
    files, entries, parts = {}, [], []
    for k, layer in enumerate(network.layers):
        hex_data, bin_data = encode_hex(layer.signs), encode_bin(layer.signs)
        files[f"layer{k}.hex"], files[f"layer{k}.bin"] = hex_data, bin_data
        parts.append((layer.n_in, layer.n_out, layer.thresholds, bin_data))
        entries.append({
            "n_in": layer.n_in, "n_out": layer.n_out, "thresholds": layer.thresholds.tolist(),
            "hex": f"layer{k}.hex", "bin": f"layer{k}.bin",
            "sha256_hex": hashlib.sha256(hex_data).hexdigest(),
            "sha256_bin": hashlib.sha256(bin_data).hexdigest(),
        })
    manifest = {
        "format": FORMAT, "version": VERSION,
        "model_id": hashlib.sha256(_canonical(parts)).hexdigest(),
        "dataset": {"name": dataset_name, "input_shape": list(network.input_shape)},
        **FIXED_FIELDS,
        "layers": entries,
        "provenance": provenance,
    }
    if metrics is not None:
        manifest["metrics"] = metrics
    files[MANIFEST] = (_dumps(manifest) + "\n").encode("utf-8")
    return manifest, files


def write_artifact(out_dir, network: Network, dataset_name: str, provenance: dict,
                   metrics: list[dict] | None = None) -> Artifact:
    """Write the artifact directory `out_dir` atomically, replacing an existing artifact there.

    The files go into a temporary directory beside the target, are read back and checked, and the
    directory is renamed into place. An existing artifact is renamed aside first and removed only once
    the new one is in place, so any failure leaves the old one intact and no temporary directory behind.
    """
    target = Path(out_dir)
    manifest, files = build_files(network, dataset_name, provenance, metrics)
    if target.exists() and not target.is_dir():
        raise ArtifactError(f"{target}: exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).exists():
        raise ArtifactError(f"{target}: a non-empty directory that is not an artifact; refusing to replace it")
    write_directory(target, files, check=read_artifact)  # never leaves behind what the reader refuses
    return Artifact(network, manifest, manifest["model_id"], target)


def write_directory(target: Path, files: dict[str, bytes], check=None) -> Path:
    """Write `files` (name -> bytes) as the directory `target`: into a temporary directory beside it,
    optionally checked by `check(tmp_dir)`, then renamed into place; an old `target` is removed only
    once the new one is in place, so a failure leaves it intact and no temporary directory behind."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        for name, data in files.items():
            _write_file(tmp / name, data)
        if check is not None:
            check(tmp)
        _move_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _move_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(old)  # only the unique name is needed
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- reading

@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing") from None
    except OSError as e:
        raise ArtifactError(f"{path}: cannot read ({e.strerror or e})") from None


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup is not None:
        raise ValueError(f"duplicate key {dup!r}")
    return dict(pairs)


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def load_manifest(path: Path) -> dict:
    """Parse manifest.json and check it against the schema and every rule that needs no other file."""
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
        manifest = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except UnicodeDecodeError as e:
        raise ArtifactError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except ValueError as e:
        raise ArtifactError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: must hold a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: format is {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("version")
    if type(version) is not int or version != VERSION:
        raise ArtifactError(f"{path}: version {version!r} is not supported (this reader knows version {VERSION})")
    for key, want in FIXED_FIELDS.items():
        if key in manifest and (manifest[key] != want or type(manifest[key]) is not type(want)):
            raise ArtifactError(f"{path}: {key} is {manifest[key]!r}, version 1 requires {want!r}")
    error = jsonschema.exceptions.best_match(_validator().iter_errors(manifest))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise ArtifactError(f"{path}: schema violation at {where}: {error.message}")
    _check_iso(manifest["provenance"]["created"], f"{path}: provenance")
    h, w = manifest["dataset"]["input_shape"]
    expected_n_in = h * w
    for k, entry in enumerate(manifest["layers"]):
        n_in, n_out, thr = entry["n_in"], entry["n_out"], entry["thresholds"]
        if entry["hex"] != f"layer{k}.hex" or entry["bin"] != f"layer{k}.bin":
            raise ArtifactError(f"{path}: layers[{k}] must name layer{k}.hex and layer{k}.bin, "
                                f"got {entry['hex']!r} and {entry['bin']!r}")
        if n_in != expected_n_in:
            source = f"input_shape {h}x{w}" if k == 0 else f"layers[{k - 1}].n_out"
            raise ArtifactError(f"{path}: layers[{k}].n_in is {n_in}, but {source} gives {expected_n_in}")
        if len(thr) != n_out:
            raise ArtifactError(f"{path}: layers[{k}] has {len(thr)} thresholds, expected n_out = {n_out}")
        bad = next((j for j, t in enumerate(thr) if not 1 <= t <= n_in + 1), None)
        if bad is not None:
            raise ArtifactError(f"{path}: layers[{k}].thresholds[{bad}] = {thr[bad]} is outside 1..{n_in + 1} (n_in + 1)")
        expected_n_in = n_out
    return manifest


def _check_sha(path: Path, data: bytes, expected: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ArtifactError(f"{path}: SHA-256 is {actual}, the manifest says {expected}")


def decode_hex(path: Path, data: bytes, n_in: int, n_out: int) -> np.ndarray:
    """Bits (n_in, n_out) bool of a layer{k}.hex file's bytes, checking lines, widths, characters, padding."""
    nd = hex_digits(n_out)
    if data and data[-1] != _NEWLINE:
        raise ArtifactError(f"{path}: the last line does not end in '\\n'")
    lines = data.split(b"\n")[:-1] if data else []
    if len(lines) != n_in:
        raise ArtifactError(f"{path}: {len(lines)} lines, expected n_in = {n_in} (one per input)")
    bad = next((i for i, line in enumerate(lines) if len(line) != nd), None)
    if bad is not None:
        raise ArtifactError(f"{path}: line {bad + 1} has {len(lines[bad])} characters, expected {nd} hex digits")
    values = _HEX_VALUE[np.frombuffer(data, np.uint8).reshape(n_in, nd + 1)[:, :nd]]
    if (values < 0).any():
        i, c = np.argwhere(values < 0)[0]
        raise ArtifactError(f"{path}: line {i + 1} has {chr(data[i * (nd + 1) + c])!r} at column {c + 1}; "
                            "only lowercase hex digits 0-9 a-f are allowed")
    nibbles = values[:, ::-1].astype(np.uint8)  # column k = nibble k = neurons 4k..4k+3
    bits = ((nibbles[:, :, None] >> np.arange(4, dtype=np.uint8)) & 1).reshape(n_in, 4 * nd).astype(bool)
    if bits[:, n_out:].any():
        i = int(np.argwhere(bits[:, n_out:])[0][0])
        raise ArtifactError(f"{path}: line {i + 1} has padding bits set above neuron {n_out - 1} (must be 0)")
    return bits[:, :n_out]


def decode_bin(path: Path, data: bytes, n_in: int, n_out: int) -> np.ndarray:
    """Bits (n_in, n_out) bool of a layer{k}.bin file's bytes, checking size and padding."""
    nb = row_bytes(n_out)
    if len(data) != n_in * nb:
        raise ArtifactError(f"{path}: {len(data)} bytes, expected n_in * ceil(n_out / 8) = {n_in} * {nb} = {n_in * nb}")
    rows = np.frombuffer(data, np.uint8).reshape(n_in, nb)
    bits = np.unpackbits(rows, axis=1, bitorder="little").astype(bool)
    if bits[:, n_out:].any():
        i = int(np.argwhere(bits[:, n_out:])[0][0])
        raise ArtifactError(f"{path}: row {i} (bytes {i * nb}..{i * nb + nb - 1}) has padding bits set "
                            f"above neuron {n_out - 1} (must be 0)")
    return bits[:, :n_out]


def read_artifact(path) -> Artifact:
    """Read and fully check an artifact directory; any problem raises ArtifactError naming the file."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"{root}: not an artifact directory ({'not a directory' if root.exists() else 'missing'})")
    manifest_path = root / MANIFEST
    manifest = load_manifest(manifest_path)
    layers, parts = [], []
    for entry in manifest["layers"]:
        n_in, n_out = entry["n_in"], entry["n_out"]
        hex_path, bin_path = root / entry["hex"], root / entry["bin"]
        hex_data, bin_data = _read_bytes(hex_path), _read_bytes(bin_path)
        hex_bits = decode_hex(hex_path, hex_data, n_in, n_out)
        _check_sha(hex_path, hex_data, entry["sha256_hex"])
        bin_bits = decode_bin(bin_path, bin_data, n_in, n_out)
        _check_sha(bin_path, bin_data, entry["sha256_bin"])
        if not np.array_equal(hex_bits, bin_bits):
            i, j = np.argwhere(hex_bits != bin_bits)[0]
            raise ArtifactError(f"{hex_path} and {bin_path} disagree at input {i}, neuron {j} "
                                f"(hex says {'+1' if hex_bits[i, j] else '-1'}, bin says {'+1' if bin_bits[i, j] else '-1'})")
        layers.append(Layer(np.where(bin_bits, 1, -1).astype(np.int8), np.asarray(entry["thresholds"], np.int32)))
        parts.append((n_in, n_out, entry["thresholds"], bin_data))
    computed = hashlib.sha256(_canonical(parts)).hexdigest()
    if computed != manifest["model_id"]:
        raise ArtifactError(f"{manifest_path}: model_id {manifest['model_id']} does not match the network "
                            f"(its canonical bytes hash to {computed})")
    network = Network(tuple(layers), tuple(manifest["dataset"]["input_shape"]))
    return Artifact(network, manifest, computed, root)
