"""Payloads of the core's streams, as `lib.data` layouts."""
from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from .config import index_width

PIXEL = data.StructLayout({"data": unsigned(8), "last": unsigned(1)})


def event(n: int) -> data.StructLayout:
    """An input event of a layer with n inputs: which input spiked, in which bin; `last` marks the last
    event of its bin, `end` the end of the image's events (index and bin are then don't-care)."""
    return data.StructLayout({"index": unsigned(index_width(n)), "bin": unsigned(8),
                              "last": unsigned(1), "end": unsigned(1)})


def spike(n_out: int) -> data.StructLayout:
    """A spike of one layer's neuron, at bin 1 .. 255."""
    return data.StructLayout({"neuron": unsigned(index_width(n_out)), "bin": unsigned(8)})


def result(n_classes: int) -> data.StructLayout:
    """One image's answer; cycles are counted from the cycle after its last pixel was accepted."""
    return data.StructLayout({"decision": unsigned(index_width(n_classes)), "first_spike_bin": unsigned(9),
                              "cycles": unsigned(32), "events": unsigned(32), "framing_error": unsigned(1)})


def lanes_word(width: int, lanes: int) -> data.ArrayLayout:
    """The potentials of one group of neurons: per lane a signed potential and a fired flag."""
    return data.ArrayLayout(data.StructLayout({"v": signed(width), "fired": unsigned(1)}), lanes)


def thresholds_word(width: int, lanes: int) -> data.ArrayLayout:
    return data.ArrayLayout(signed(width), lanes)
