"""BS4NN toolkit: binarized time-to-first-spike networks, from training to a bit-exact FPGA core.

The Python API (none of it imports torch)::

    import bs4nn
    model = bs4nn.load_artifact("runs/digits/model")        # an exported model directory
    test = bs4nn.load_dataset("digits", "test")              # uint8 images (N, h, w) and labels
    result = bs4nn.run_reference(model.network, test.images)  # every neuron's spike bin, the decisions
    print(bs4nn.score(result, test.labels))                  # strict, lenient, first-spike, no-spike rate

`encode` turns 8-bit pixels into input spike bins (t = 255 - p); `Network` is the binary network that
artifacts hold and the reference runs. Training and export need torch: see `bs4nn.sw.train` and
`bs4nn.export.exporter`, or the `bs4nn` command line (`bs4nn --help`).
"""
from __future__ import annotations

import os
from importlib import import_module

# torch and numba's parallel kernels share GNU OpenMP; its default spin-waiting threads fight each other and
# any other process for the cores: measured on the 2-core machine under load, training steps ran at ~250
# samples/s with spinning threads and ~9,000 with passive ones. Only effective before libgomp is loaded
# (importing bs4nn first does that); an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("bs4nn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# name -> (module, attribute); imported on first use, so that `import bs4nn` stays light and the
# subpackages (which import bs4nn first) never meet a half-initialised package
_API = {
    "load_artifact": ("bs4nn.export.artifact", "read_artifact"),
    "load_dataset": ("bs4nn.sw.datasets", "load"),
    "encode": ("bs4nn.sw.semantics", "encode_pixels"),
    "run_reference": ("bs4nn.sw.reference", "run"),
    "score": ("bs4nn.sw.scoring", "score"),
    "Network": ("bs4nn.sw.network", "Network"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        module, attribute = _API[name]
        value = getattr(import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bs4nn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
