"""Artifact format v1, spike dumps and the reference-weight importer (docs/artifact-format.md)."""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import struct
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from bs4nn.export import artifact
from bs4nn.export.artifact import ArtifactError, encode_bin, encode_hex, model_id, read_artifact, write_artifact
from bs4nn.export.dump import Dump, DumpError, read_dump, write_dump
from bs4nn.export.importer import WeightImportError, import_reference, load_npy
from bs4nn.sw.network import Layer, Network, random_network
from bs4nn.sw.reference import Inference

PROV = {"command": "pytest", "seed": 7, "commit": None, "source": "trained"}


def packbits_rows(signs: np.ndarray) -> bytes:
    """Independent .bin encoding: numpy packbits, little bit order, one padded row per input."""
    return np.packbits(signs > 0, axis=1, bitorder="little").tobytes()


def independent_model_id(network: Network) -> str:
    h = hashlib.sha256()
    for layer in network.layers:
        h.update(struct.pack("<II", layer.n_in, layer.n_out))
        h.update(struct.pack(f"<{layer.n_out}i", *layer.thresholds.tolist()))
        h.update(packbits_rows(layer.signs))
    return h.hexdigest()


def hex_row_value(row_signs) -> int:
    return sum(1 << j for j, s in enumerate(row_signs) if s > 0)


def same_network(a: Network, b: Network) -> bool:
    return a.input_shape == b.input_shape and len(a.layers) == len(b.layers) and all(
        np.array_equal(x.signs, y.signs) and np.array_equal(x.thresholds, y.thresholds)
        for x, y in zip(a.layers, b.layers))


def tiny_network() -> Network:
    s0 = np.array([[1, -1, 1], [-1, 1, 1], [1, 1, 1], [-1, -1, -1]])
    s1 = np.array([[1, -1], [-1, 1], [1, 1]])
    return Network((Layer(s0, [2, 1, 5]), Layer(s1, [1, 2])), (2, 2))


def snapshot(path: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


# ---------------------------------------------------------------- encodings and round trips

@pytest.mark.parametrize("n_out", [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 600])
def test_bin_and_hex_encodings_are_independent_computations(n_out):
    rng = np.random.default_rng(n_out)
    signs = np.where(rng.random((11, n_out)) < 0.5, -1, 1).astype(np.int8)
    assert encode_bin(signs) == packbits_rows(signs)
    lines = encode_hex(signs).decode("ascii").split("\n")
    assert lines[-1] == "" and len(lines) == 12
    for row, line in zip(signs, lines):
        assert len(line) == math.ceil(n_out / 4) and line == line.lower()
        assert int(line, 16) == hex_row_value(row)


@pytest.mark.parametrize("sizes, input_shape", [
    ([1, 1], (1, 1)),
    ([4, 3, 2], (2, 2)),
    ([6, 5, 1], (2, 3)),
    ([12, 13, 7, 9], (3, 4)),
    ([30, 1, 1], (5, 6)),
    ([784, 600, 10], (28, 28)),
])
def test_round_trip(tmp_path, sizes, input_shape):
    net = random_network(sizes, np.random.default_rng(len(sizes) * 1000 + sizes[0]), input_shape=input_shape)
    metrics = [{"dataset": "mnist", "split": "test", "n": 10000, "strict": 0.9607, "lenient": 0.9693,
                "first_spike": 0.915, "no_spike_rate": 0.0483}]
    written = write_artifact(tmp_path / "model", net, "mnist", PROV, metrics)
    got = read_artifact(tmp_path / "model")
    assert same_network(got.network, net)
    assert got.model_id == written.model_id == model_id(net) == independent_model_id(net)
    assert got.id32 == got.model_id[:8] and len(got.id32) == 8
    assert got.dataset_name == "mnist" and got.manifest["metrics"] == metrics
    assert got.manifest == written.manifest
    assert got.path == tmp_path / "model"
    for k, layer in enumerate(net.layers):
        hex_text = (tmp_path / "model" / f"layer{k}.hex").read_text()
        assert hex_text.endswith("\n") and hex_text.count("\n") == layer.n_in
        assert (tmp_path / "model" / f"layer{k}.bin").read_bytes() == packbits_rows(layer.signs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_model_id_ignores_provenance_and_metrics_but_not_the_network(tmp_path):
    net = random_network([9, 5, 3], np.random.default_rng(3), input_shape=(3, 3))
    a = write_artifact(tmp_path / "a", net, "digits", PROV)
    b = write_artifact(tmp_path / "b", net, "mnist", dict(PROV, seed=8, source="imported"), [])
    assert a.model_id == b.model_id
    signs = net.layers[1].signs.copy()
    signs[4, 2] *= -1
    changed = Network((net.layers[0], Layer(signs, net.layers[1].thresholds)), net.input_shape)
    thresholds = net.layers[1].thresholds.copy()
    thresholds[0] = thresholds[0] % 5 + 1 if thresholds[0] != 1 else 2
    changed_thr = Network((net.layers[0], Layer(net.layers[1].signs, thresholds)), net.input_shape)
    assert len({model_id(net), model_id(changed), model_id(changed_thr)}) == 3


def test_write_and_read_784_600_10_are_fast(tmp_path):
    net = random_network([784, 600, 10], np.random.default_rng(0), input_shape=(28, 28))
    t0 = time.perf_counter()
    write_artifact(tmp_path / "m", net, "mnist", PROV)
    t1 = time.perf_counter()
    read_artifact(tmp_path / "m")
    t2 = time.perf_counter()
    assert t2 - t0 < 1.0, (t1 - t0, t2 - t1)  # typically ~0.05 s to write and ~0.03 s to read


# ---------------------------------------------------------------- the worked example of the docs

def test_worked_example_from_the_docs(tmp_path):
    art = write_artifact(tmp_path / "tiny", tiny_network(), "toy",
                         {"command": "bs4nn export --example", "seed": None, "commit": None,
                          "created": "2025-01-01T00:00:00+00:00", "source": "imported"})
    d = tmp_path / "tiny"
    assert (d / "layer0.hex").read_bytes() == b"5\n6\n7\n0\n"
    assert (d / "layer0.bin").read_bytes() == bytes([0x05, 0x06, 0x07, 0x00])
    assert (d / "layer1.hex").read_bytes() == b"1\n2\n3\n"
    assert (d / "layer1.bin").read_bytes() == bytes([0x01, 0x02, 0x03])
    canonical = bytes.fromhex(
        "04000000 03000000 02000000 01000000 05000000 05060700"
        "03000000 02000000 01000000 02000000 010203")
    assert len(canonical) == 43 and artifact.canonical_bytes(tiny_network()) == canonical
    assert art.model_id == hashlib.sha256(canonical).hexdigest()
    assert art.model_id == "fa974a9d124e2d1890d8cf0d3456f5695a904c08a017fb5624a4827a951d8865"
    assert art.id32 == "fa974a9d"
    layers = art.manifest["layers"]
    assert layers[0]["sha256_hex"] == "89cf26276a0e0ed6e8bfcb25da5e45adf19acbaadfe36fb923f996eaab99a419"
    assert layers[0]["sha256_bin"] == "db9a9aa6af8db8e9f58e74f32edab86b886e3809027e5407216c14994828b132"
    assert layers[1]["sha256_hex"] == "14c5e74c4b96ccef41cd94db73a9ec3348038ac094feca4fd897cecffa07cdae"
    assert layers[1]["sha256_bin"] == "039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81"
    docs = Path(__file__).resolve().parents[1] / "docs" / "artifact-format.md"
    block = docs.read_text().split("```json\n")[1].split("```")[0]
    assert json.loads(block) == art.manifest
    assert (d / "manifest.json").read_text() == block


def test_ten_neuron_row_example_from_the_docs():
    signs = -np.ones((1, 10), np.int8)
    signs[0, [0, 3, 8, 9]] = 1
    assert encode_hex(signs) == b"309\n"
    assert encode_bin(signs) == bytes([0x09, 0x03])


# ---------------------------------------------------------------- the reader refuses tampered copies

@pytest.fixture
def original(tmp_path_factory):
    """A 6 -> 5 -> 3 artifact: n_out 5 and 3 leave padding bits in both encodings."""
    net = random_network([6, 5, 3], np.random.default_rng(11), input_shape=(2, 3), threshold_range=(2, 5))
    path = tmp_path_factory.mktemp("orig") / "model"
    write_artifact(path, net, "digits", PROV)
    return path


def load_manifest(d):
    return json.loads((d / "manifest.json").read_text())


def save_manifest(d, m):
    (d / "manifest.json").write_text(json.dumps(m))


def edit_manifest(fn):
    def apply(d):
        m = load_manifest(d)
        fn(m)
        save_manifest(d, m)
    return apply


def fix_shas(d):
    m = load_manifest(d)
    for entry in m["layers"]:
        for kind in ("hex", "bin"):
            entry[f"sha256_{kind}"] = hashlib.sha256((d / entry[kind]).read_bytes()).hexdigest()
    save_manifest(d, m)


def edit_bin(fn, fix=False):
    def apply(d):
        data = bytearray((d / "layer0.bin").read_bytes())
        data = fn(data)
        (d / "layer0.bin").write_bytes(bytes(data))
        if fix:
            fix_shas(d)
    return apply


def edit_hex(fn, fix=False):
    def apply(d):
        lines = (d / "layer0.hex").read_text().split("\n")[:-1]
        (d / "layer0.hex").write_bytes(fn(lines).encode("latin-1"))
        if fix:
            fix_shas(d)
    return apply


def xor_byte(i, mask):
    def fn(data):
        data[i] ^= mask
        return data
    return fn


def hex_join(lines):
    return "\n".join(lines) + "\n"


def flip_hex_digit_bit0(lines):
    v = int(lines[0], 16) ^ 1
    lines[0] = f"{v:0{len(lines[0])}x}"
    return hex_join(lines)


def flip_weight_everywhere(d):
    """The same weight flipped in both files, both SHA-256 updated: only the model_id can tell."""
    edit_bin(xor_byte(0, 1))(d)
    edit_hex(flip_hex_digit_bit0)(d)
    fix_shas(d)


def remove(name):
    return lambda d: (d / name).unlink()


def set_in(path, value):
    def fn(m):
        obj = m
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return edit_manifest(fn)


def delete_key(path):
    def fn(m):
        obj = m
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]
    return edit_manifest(fn)


def write_text(name, text):
    return lambda d: (d / name).write_text(text)


TAMPERS = {
    # name: (tamper, file named in the error, words in the error)
    "bin bit flipped": (edit_bin(xor_byte(3, 1)), "layer0.bin", "SHA-256"),
    "bin bit flipped, sha fixed": (edit_bin(xor_byte(3, 1), fix=True), "layer0.bin", "disagree"),
    "bin padding bit": (edit_bin(xor_byte(2, 0x80)), "layer0.bin", "padding"),
    "bin one byte too long": (edit_bin(lambda b: b + b"\0"), "layer0.bin", "7 bytes, expected"),
    "bin one byte short": (edit_bin(lambda b: b[:-1]), "layer0.bin", "5 bytes, expected"),
    "hex digit edited": (edit_hex(flip_hex_digit_bit0), "layer0.hex", "SHA-256"),
    "hex digit edited, sha fixed": (edit_hex(flip_hex_digit_bit0, fix=True), "layer0.hex", "disagree"),
    "hex line missing": (edit_hex(lambda ls: hex_join(ls[:-1])), "layer0.hex", "5 lines, expected n_in = 6"),
    "hex line added": (edit_hex(lambda ls: hex_join(ls + ["00"])), "layer0.hex", "7 lines"),
    "hex line too wide": (edit_hex(lambda ls: hex_join(["0" + ls[0]] + ls[1:])), "layer0.hex", "line 1 has 3 characters"),
    "hex line too narrow": (edit_hex(lambda ls: hex_join(ls[:2] + [ls[2][1:]] + ls[3:])), "layer0.hex", "line 3 has 1 characters"),
    "hex upper case": (edit_hex(lambda ls: hex_join(ls[:1] + ["1F"] + ls[2:])), "layer0.hex", "lowercase"),
    "hex not a digit": (edit_hex(lambda ls: hex_join(ls[:1] + ["1g"] + ls[2:])), "layer0.hex", "line 2"),
    "hex padding bit": (edit_hex(lambda ls: hex_join(ls[:4] + [f"{int(ls[4], 16) | 0x20:02x}"] + ls[5:])),
                        "layer0.hex", "line 5 has padding bits"),
    "hex no final newline": (edit_hex(lambda ls: "\n".join(ls)), "layer0.hex", "does not end"),
    "hex crlf": (edit_hex(lambda ls: "\r\n".join(ls) + "\r\n"), "layer0.hex", "characters"),
    "hex file missing": (remove("layer0.hex"), "layer0.hex", "missing"),
    "bin file missing": (remove("layer1.bin"), "layer1.bin", "missing"),
    "manifest missing": (remove("manifest.json"), "manifest.json", ": missing"),
    "manifest not UTF-8": (lambda d: (d / "manifest.json").write_bytes(b'{"format": "\xff"}'), "manifest.json", "UTF-8"),
    "manifest not JSON": (write_text("manifest.json", "{not json"), "manifest.json", "not valid JSON"),
    "manifest not an object": (write_text("manifest.json", "[]"), "manifest.json", "JSON object"),
    "manifest duplicate key": (write_text("manifest.json", '{"format": 1, "format": 2}'), "manifest.json", "duplicate"),
    "bad sha in manifest": (set_in(["layers", 1, "sha256_bin"], "0" * 64), "layer1.bin", "SHA-256"),
    "sha not hex": (set_in(["layers", 1, "sha256_hex"], "xyz"), "manifest.json", "sha256_hex"),
    "model_id mismatch": (set_in(["model_id"], "f" * 64), "manifest.json", "model_id"),
    "weight flipped in both files": (flip_weight_everywhere, "manifest.json", "does not match the network"),
    "wrong format": (set_in(["format"], "bs4nn-model"), "manifest.json", "format"),
    "wrong version": (set_in(["version"], 2), "manifest.json", "version 2 is not supported"),
    "version as string": (set_in(["version"], "1"), "manifest.json", "version"),
    "wrong encoding": (set_in(["encoding"], "t=p"), "manifest.json", "encoding"),
    "wrong t_max": (set_in(["t_max"], 255), "manifest.json", "t_max"),
    "t_max as float": (set_in(["t_max"], 256.0), "manifest.json", "t_max"),
    "wrong tie rule": (set_in(["tie_rule"], "earliest,lowest-index"), "manifest.json", "tie_rule"),
    "missing fixed field": (delete_key(["tie_rule"]), "manifest.json", "tie_rule"),
    "threshold 0": (set_in(["layers", 0, "thresholds", 1], 0), "manifest.json", "thresholds/1"),
    "threshold above n_in + 1": (set_in(["layers", 0, "thresholds", 1], 8), "manifest.json", "outside 1..7"),
    "threshold not an int": (set_in(["layers", 0, "thresholds", 1], "3"), "manifest.json", "thresholds/1"),
    "threshold count": (edit_manifest(lambda m: m["layers"][1]["thresholds"].pop()), "manifest.json", "2 thresholds"),
    "broken chain": (set_in(["layers", 1, "n_in"], 4), "manifest.json", "layers[1].n_in is 4"),
    "input shape mismatch": (set_in(["dataset", "input_shape"], [3, 3]), "manifest.json", "input_shape 3x3"),
    "input shape rank": (set_in(["dataset", "input_shape"], [6]), "manifest.json", "input_shape"),
    "no layers": (set_in(["layers"], []), "manifest.json", "layers"),
    "wrong file name": (set_in(["layers", 1, "hex"], "layer0.hex"), "manifest.json", "layer1.hex"),
    "unknown top-level key": (set_in(["extra"], 1), "manifest.json", "extra"),
    "unknown layer key": (set_in(["layers", 0, "weights"], []), "manifest.json", "weights"),
    "missing layer key": (delete_key(["layers", 0, "sha256_hex"]), "manifest.json", "sha256_hex"),
    "missing provenance key": (delete_key(["provenance", "seed"]), "manifest.json", "seed"),
    "bad source": (set_in(["provenance", "source"], "downloaded"), "manifest.json", "source"),
    "bad created": (set_in(["provenance", "created"], "yesterday"), "manifest.json", "ISO-8601"),
    "rate as percentage": (set_in(["metrics"], [{"dataset": "mnist", "split": "test", "n": 10, "strict": 96.0,
                                                 "lenient": 0.9, "first_spike": 0.9, "no_spike_rate": 0.0}]),
                           "manifest.json", "strict"),
    "NaN rate": (write_text("manifest.json", '{"format": "bs4nn-artifact", "x": NaN}'), "manifest.json", "NaN"),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_reader_refuses_tampered_copy(original, tmp_path, name):
    tamper, file_name, words = TAMPERS[name]
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    read_artifact(copy)  # the untouched copy is fine
    tamper(copy)
    with pytest.raises(ArtifactError) as info:
        read_artifact(copy)
    message = str(info.value)
    assert str(copy / file_name) in message, message
    assert words in message, message
    assert "\n" not in message


def test_reader_refuses_missing_directory(tmp_path):
    with pytest.raises(ArtifactError, match="missing"):
        read_artifact(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactError, match="not a directory"):
        read_artifact(tmp_path / "file")


def test_schema_file_is_draft_2020_12_and_accepts_written_manifests(original):
    import jsonschema

    schema = json.loads(artifact.SCHEMA_PATH.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(load_manifest(original))


# ---------------------------------------------------------------- atomic writing

@pytest.fixture
def two_networks():
    rng = np.random.default_rng(5)
    return (random_network([8, 6, 3], rng, input_shape=(2, 4)), random_network([8, 7, 3], rng, input_shape=(2, 4)))


def test_replacing_an_artifact(tmp_path, two_networks):
    a, b = two_networks
    write_artifact(tmp_path / "m", a, "digits", PROV)
    write_artifact(tmp_path / "m", b, "digits", PROV)
    assert read_artifact(tmp_path / "m").model_id == model_id(b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def fail_on_call(n, real):
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(args)
        if len(calls) == n:
            raise OSError("injected failure")
        return real(*args, **kwargs)
    return wrapper


@pytest.mark.parametrize("where", ["third file", "read back", "rename new in", "rename old aside"])
def test_failed_write_leaves_old_artifact_intact(tmp_path, monkeypatch, two_networks, where):
    a, b = two_networks
    write_artifact(tmp_path / "m", a, "digits", PROV)
    before = snapshot(tmp_path / "m")
    if where == "third file":
        monkeypatch.setattr(artifact, "_write_file", fail_on_call(3, artifact._write_file))
    elif where == "read back":
        monkeypatch.setattr(artifact, "read_artifact", fail_on_call(1, artifact.read_artifact))
    else:
        n = 2 if where == "rename new in" else 1
        monkeypatch.setattr(artifact.os, "rename", fail_on_call(n, artifact.os.rename))
    with pytest.raises(OSError, match="injected"):
        write_artifact(tmp_path / "m", b, "digits", PROV)
    monkeypatch.undo()
    assert snapshot(tmp_path / "m") == before
    assert read_artifact(tmp_path / "m").model_id == model_id(a)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch, two_networks):
    monkeypatch.setattr(artifact, "_write_file", fail_on_call(2, artifact._write_file))
    with pytest.raises(OSError):
        write_artifact(tmp_path / "m", two_networks[0], "digits", PROV)
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_to_replace_a_non_artifact_directory(tmp_path, two_networks):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="not an artifact"):
        write_artifact(tmp_path / "m", two_networks[0], "digits", PROV)
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------- writer input validation

def test_created_is_filled_in_as_utc_now(tmp_path, two_networks):
    art = write_artifact(tmp_path / "m", two_networks[0], "digits", PROV)
    created = datetime.fromisoformat(art.manifest["provenance"]["created"])
    assert created.utcoffset().total_seconds() == 0
    assert abs((datetime.now(created.tzinfo) - created).total_seconds()) < 60


@pytest.mark.parametrize("provenance, words", [
    ({"command": "x", "seed": 1, "commit": None}, "missing keys ['source']"),
    (dict(PROV, user="me"), "unknown keys ['user']"),
    (dict(PROV, source="downloaded"), "source"),
    (dict(PROV, seed=True), "seed"),
    (dict(PROV, seed="7"), "seed"),
    (dict(PROV, commit=123), "commit"),
    (dict(PROV, command=None), "command"),
    (dict(PROV, created="last week"), "ISO-8601"),
    ("trained", "dict"),
])
def test_writer_refuses_bad_provenance(tmp_path, two_networks, provenance, words):
    with pytest.raises(ArtifactError, match="provenance") as info:
        write_artifact(tmp_path / "m", two_networks[0], "digits", provenance)
    assert words in str(info.value)
    assert not (tmp_path / "m").exists()


GOOD_METRIC = {"dataset": "mnist", "split": "test", "n": 100, "strict": 0.9, "lenient": 0.95,
               "first_spike": 0.85, "no_spike_rate": 0.05}


@pytest.mark.parametrize("metric, words", [
    (dict(GOOD_METRIC, strict=96.07), "not a fraction"),
    (dict(GOOD_METRIC, no_spike_rate=-0.1), "not a fraction"),
    (dict(GOOD_METRIC, lenient=float("nan")), "not a fraction"),
    (dict(GOOD_METRIC, n=-1), "n must be"),
    ({k: v for k, v in GOOD_METRIC.items() if k != "n"}, "exactly the keys"),
    (dict(GOOD_METRIC, split=""), "split"),
])
def test_writer_refuses_bad_metrics(tmp_path, two_networks, metric, words):
    with pytest.raises(ArtifactError, match="metrics") as info:
        write_artifact(tmp_path / "m", two_networks[0], "digits", PROV, [metric])
    assert words in str(info.value)


def test_metrics_accept_numpy_scalars(tmp_path, two_networks):
    metric = dict(GOOD_METRIC, n=np.int64(100), strict=np.float32(0.5), lenient=1)
    art = write_artifact(tmp_path / "m", two_networks[0], "digits", PROV, [metric])
    assert read_artifact(tmp_path / "m").manifest["metrics"] == art.manifest["metrics"]
    assert art.manifest["metrics"][0]["strict"] == 0.5 and art.manifest["metrics"][0]["lenient"] == 1.0


# ---------------------------------------------------------------- spike dumps

def fake_inference(rng, n=5, sizes=(7, 4)):
    spikes = [rng.integers(1, 257, size=(n, m)).astype(np.int16) for m in sizes]
    first = spikes[-1].min(axis=1).astype(np.int16)
    decision = spikes[-1].argmin(axis=1).astype(np.int16)
    return Inference(spikes, decision, first, np.zeros((n, sizes[-1]), np.int32))


def test_dump_round_trip(tmp_path):
    inf = fake_inference(np.random.default_rng(0))
    labels = np.array([0, 1, 2, 3, 0])
    config = {"model_id": "ab" * 32, "dataset": "digits", "split": "test", "mode": "full", "n": np.int64(5)}
    path = write_dump(tmp_path / "run.npz", inf, labels, config, cycles=np.arange(5) * 1000)
    dump = read_dump(path)
    assert isinstance(dump, Dump) and dump.n_images == 5
    assert len(dump.spikes) == 2 and all(np.array_equal(a, b) for a, b in zip(dump.spikes, inf.spikes))
    assert all(s.dtype == np.int16 for s in dump.spikes)
    assert np.array_equal(dump.decision, inf.decision) and dump.decision.dtype == np.int16
    assert np.array_equal(dump.first_spike_bin, inf.first_spike_bin)
    assert np.array_equal(dump.labels, labels) and dump.labels.dtype == np.int16
    assert dump.cycles.dtype == np.int64 and np.array_equal(dump.cycles, np.arange(5) * 1000)
    assert dump.config == dict(config, n=5)
    with np.load(path, allow_pickle=False) as z:
        assert z["config"].shape == () and z["config"].dtype.kind == "U"
        assert sorted(z.files) == ["config", "cycles", "decision", "first_spike_bin", "labels",
                                   "spikes_l0", "spikes_l1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]


def test_dump_without_labels_and_cycles(tmp_path):
    inf = fake_inference(np.random.default_rng(1))
    dump = read_dump(write_dump(tmp_path / "d.npz", inf, config={"mode": "early-exit"}))
    assert dump.labels is None and dump.cycles is None and dump.config == {"mode": "early-exit"}


def good_arrays(rng):
    inf = fake_inference(rng)
    return {"spikes_l0": inf.spikes[0], "spikes_l1": inf.spikes[1], "decision": inf.decision,
            "first_spike_bin": inf.first_spike_bin, "labels": np.zeros(5, np.int16),
            "config": np.array(json.dumps({"mode": "full"}))}


BAD_DUMPS = {
    "spikes int32": (lambda a: a.update(spikes_l1=a["spikes_l1"].astype(np.int32)), "dtype int32"),
    "cycles int32": (lambda a: a.update(cycles=np.zeros(5, np.int32)), "cycles has dtype int32"),
    "bin 0": (lambda a: a["spikes_l0"].__setitem__((0, 0), 0), "spikes_l0 has values 0.."),
    "bin 257": (lambda a: a["first_spike_bin"].__setitem__(1, 257), "first_spike_bin has values"),
    "decision out of range": (lambda a: a["decision"].__setitem__(0, 4), "decision has values"),
    "negative label": (lambda a: a["labels"].__setitem__(0, -1), "labels"),
    "wrong length": (lambda a: a.update(decision=a["decision"][:4]), "decision has shape (4,)"),
    "spikes 1-D": (lambda a: a.update(spikes_l1=a["spikes_l1"][:, 0]), "spikes_l1 has shape"),
    "missing decision": (lambda a: a.pop("decision"), "missing keys ['decision']"),
    "missing config": (lambda a: a.pop("config"), "missing keys ['config']"),
    "unknown key": (lambda a: a.update(potentials=np.zeros(5, np.int16)), "unknown keys ['potentials']"),
    "gap in layers": (lambda a: a.update(spikes_l2=a.pop("spikes_l1")), "numbered"),
    "config not JSON": (lambda a: a.update(config=np.array("{mode")), "config is not valid JSON"),
    "config a list": (lambda a: a.update(config=np.array("[1]")), "JSON object"),
    "config bytes": (lambda a: a.update(config=np.array(b"{}")), "0-d string"),
    "config 1-D": (lambda a: a.update(config=np.array(["{}"])), "0-d string"),
    "pickled object": (lambda a: a.update(labels=np.array([{}, 1, 2, 3, 4], dtype=object)), "readable"),
}


@pytest.mark.parametrize("name", list(BAD_DUMPS))
def test_read_dump_refuses_bad_dumps(tmp_path, name):
    edit, words = BAD_DUMPS[name]
    arrays = good_arrays(np.random.default_rng(2))
    edit(arrays)
    path = tmp_path / "bad.npz"
    with open(path, "wb") as f:
        np.savez(f, allow_pickle=True, **arrays)
    with pytest.raises(DumpError) as info:
        read_dump(path)
    assert str(path) in str(info.value) and words in str(info.value), str(info.value)


def test_read_dump_refuses_non_npz_files(tmp_path):
    with pytest.raises(DumpError, match="missing"):
        read_dump(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(DumpError, match="junk.npz"):
        read_dump(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3, np.int16))
    with pytest.raises(DumpError, match="single .npy"):
        read_dump(tmp_path / "single.npy")


@pytest.mark.parametrize("change, words", [
    (lambda i: i.spikes.__setitem__(0, i.spikes[0].astype(np.float32)), "must hold integers"),
    (lambda i: i.spikes[0].__setitem__((0, 0), 300), "spikes_l0 has values"),
    (lambda i: setattr(i, "first_spike_bin", np.full(5, 40000)), "do not fit int16"),
    (lambda i: setattr(i, "decision", i.decision[:3]), "decision has shape"),
])
def test_write_dump_refuses_bad_inference(tmp_path, change, words):
    inf = fake_inference(np.random.default_rng(3))
    change(inf)
    with pytest.raises(DumpError) as info:
        write_dump(tmp_path / "d.npz", inf, config={})
    assert words in str(info.value) and "d.npz" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_dump_write_keeps_old_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    path = write_dump(tmp_path / "d.npz", fake_inference(rng), config={"run": 1})
    before = path.read_bytes()

    def boom(f, **arrays):
        f.write(b"partial")
        raise OSError("injected failure")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="injected"):
        write_dump(path, fake_inference(rng), config={"run": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before and read_dump(path).config == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


def test_write_dump_refuses_unserialisable_config(tmp_path):
    with pytest.raises(DumpError, match="JSON"):
        write_dump(tmp_path / "d.npz", fake_inference(np.random.default_rng(5)), config={"x": object()})


# ---------------------------------------------------------------- importer of the authors' weights

def reference_weights(rng, sizes=(16, 6, 3), trailing_one=True):
    ws = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = rng.normal(size=(n_out, n_in)).astype(np.float32)
        ws.append(w[:, :, None] if trailing_one else w)
    return ws


def test_import_transposes_and_binarizes():
    ws = reference_weights(np.random.default_rng(0), sizes=(36, 30, 3))
    net = import_reference(ws, [4.037, 9.065])
    net2 = import_reference([w[:, :, 0] for w in ws], [4.037, 9.065])
    assert same_network(net, net2)
    assert net.input_shape == (6, 6) and net.sizes == [36, 30, 3]
    for w, layer in zip(ws, net.layers):
        assert layer.signs.dtype == np.int8 and layer.signs.shape == (w.shape[1], w.shape[0])
        assert np.array_equal(layer.signs, np.where(w[:, :, 0].T < 0, -1, 1))
    assert np.all(net.layers[0].thresholds == 25)  # floor(100 / 4.037) + 1 = floor(24.77) + 1
    assert np.all(net.layers[1].thresholds == 12)  # floor(100 / 9.065) + 1 = floor(11.03) + 1
    small = import_reference(reference_weights(np.random.default_rng(0)), [4.037, 9.065])  # 16-6-3
    assert np.all(small.layers[0].thresholds == 17) and np.all(small.layers[1].thresholds == 7)  # clamped to n_in + 1


def test_import_784_600_10_thresholds():
    rng = np.random.default_rng(1)
    ws = [rng.normal(size=(600, 784, 1)), rng.normal(size=(10, 600, 1))]
    net = import_reference(ws, [4.037, 9.065], thr=100.0)
    assert net.input_shape == (28, 28)
    assert np.all(net.layers[0].thresholds == 25) and np.all(net.layers[1].thresholds == 12)


@pytest.mark.parametrize("fact, expected", [
    (4.0, 26),  # thr / fact is exactly 25: V > 25 means V >= 26
    (100.0, 2),
    (1000.0, 1),
])
def test_import_threshold_at_exact_integers(fact, expected):
    net = import_reference([np.ones((2, 50))], [fact])
    assert np.all(net.layers[0].thresholds == expected)


@pytest.mark.parametrize("thr, fact, expected", [
    (60.0, 4.0, 16),  # 60 / 4 = 15 exactly: V > 15 means V >= 16
    (37.0, 4.0, 10),  # floor(9.25) + 1
    (1000.0, 4.0, 51),  # floor(250) + 1, clamped to n_in + 1 = 51
])
def test_import_threshold_uses_the_given_thr(thr, fact, expected):
    net = import_reference([np.ones((2, 50))], [fact], thr=thr)
    assert np.all(net.layers[0].thresholds == expected)


def test_import_uses_float64_where_float32_floor_differs():
    fact = np.float32(7.692307949066162)  # the float32 just above 100 / 13
    assert math.floor(100.0 / float(fact)) == 12  # float64: 12.99999957...
    assert math.floor(float(np.float32(100) / fact)) == 13  # float32 rounds up to 13.0
    net = import_reference([np.ones((3, 40), np.float32)], [fact])
    assert np.all(net.layers[0].thresholds == 13)
    net = import_reference([np.ones((3, 40), np.float32)], np.array([fact], np.float32))
    assert np.all(net.layers[0].thresholds == 13)


def test_import_refuses_exact_zeros():
    ws = reference_weights(np.random.default_rng(2))
    ws[1][2, 4, 0] = 0.0
    ws[1][1, 5, 0] = -0.0
    with pytest.raises(WeightImportError) as info:
        import_reference(ws, [4.0, 9.0])
    message = str(info.value)
    assert "layer 1" in message and "2 weights are exactly 0" in message and "[out=1, in=5]" in message


@pytest.mark.parametrize("edit, words", [
    (lambda ws, fs: ws[0].__setitem__((0, 0, 0), np.nan), "layer 0: 1 weights are NaN or infinite"),
    (lambda ws, fs: ws[1].__setitem__((1, 1, 0), np.inf), "layer 1: 1 weights are NaN or infinite"),
    (lambda ws, fs: ws.__setitem__(0, ws[0][None]), "shape (1, 6, 16, 1)"),
    (lambda ws, fs: ws.__setitem__(0, ws[0][:, :, 0].ravel()), "shape (96,)"),
    (lambda ws, fs: ws.__setitem__(0, np.ones((6, 16, 2))), "shape (6, 16, 2)"),
    (lambda ws, fs: ws.__setitem__(1, ws[1][:, :5]), "layer 1 has 5 inputs, but layer 0 has 6 outputs"),
    (lambda ws, fs: fs.pop(), "1 facts for 2 weight layers"),
    (lambda ws, fs: fs.__setitem__(1, 0.0), "layer 1: fact"),
    (lambda ws, fs: fs.__setitem__(0, -2.0), "layer 0: fact"),
    (lambda ws, fs: fs.__setitem__(0, float("nan")), "layer 0: fact"),
    (lambda ws, fs: ws.__setitem__(0, ws[0].astype(complex)), "real array"),
    (lambda ws, fs: ws.clear() or fs.clear(), "no weight layers"),
])
def test_import_refuses_bad_input(edit, words):
    ws, fs = reference_weights(np.random.default_rng(3)), [4.0, 9.0]
    edit(ws, fs)
    with pytest.raises(WeightImportError) as info:
        import_reference(ws, fs)
    assert words in str(info.value)


def test_import_input_shape():
    ws = reference_weights(np.random.default_rng(4), sizes=(10, 4, 2))
    assert import_reference(ws, [1.0, 1.0]).input_shape == (1, 10)
    assert import_reference(ws, [1.0, 1.0], input_shape=(2, 5)).input_shape == (2, 5)
    with pytest.raises(ValueError, match="input_shape"):
        import_reference(ws, [1.0, 1.0], input_shape=(3, 3))


def test_imported_network_round_trips_as_artifact(tmp_path):
    net = import_reference(reference_weights(np.random.default_rng(5)), [4.037, 9.065])
    art = write_artifact(tmp_path / "m", net, "mnist", dict(PROV, seed=None, source="imported"))
    assert same_network(read_artifact(tmp_path / "m").network, net) and art.model_id == independent_model_id(net)


def test_load_npy(tmp_path):
    w = np.random.default_rng(6).normal(size=(4, 3, 1)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    assert np.array_equal(load_npy(tmp_path / "w.npy"), w)
    with pytest.raises(WeightImportError, match="missing"):
        load_npy(tmp_path / "none.npy")
    np.save(tmp_path / "obj.npy", np.array([{}, 1], dtype=object), allow_pickle=True)
    with pytest.raises(WeightImportError, match="obj.npy"):
        load_npy(tmp_path / "obj.npy")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(WeightImportError, match="junk.npy"):
        load_npy(tmp_path / "junk.npy")
    np.savez(tmp_path / "a.npz", w=w)
    with pytest.raises(WeightImportError, match="npz"):
        load_npy(tmp_path / "a.npz")
