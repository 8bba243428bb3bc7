"""Payloads of the core's streams, as `lib.data` layouts."""
from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from .config import index_width

PIXEL = data.StructLayout({"data": unsigned(8), "last": unsigned(1)})


def slots(n: int, banks: int) -> data.ArrayLayout:
    """One slot per bank of n inputs (input i at index i // banks, in bank `input_bank`): valid and that index."""
    depth = -(-n // banks)
    index = unsigned(index_width(depth) if depth > 1 else 0)  # a bank of one input needs no index
    return data.ArrayLayout(data.StructLayout({"valid": unsigned(1), "index": index}), banks)


def event(n: int, banks: int = 1) -> data.StructLayout:
    """An event word of a layer with n inputs: up to one event per bank, all in one bin; `last` marks the
    last word of its bin, `end` the end of the image's events (the rest is then don't-care)."""
    return data.StructLayout({"slots": slots(n, banks), "bin": unsigned(8),
                              "last": unsigned(1), "end": unsigned(1)})


def spike(n_out: int, banks: int = 1) -> data.StructLayout:
    """Spikes of one layer at one bin (1 .. 255): up to one neuron per bank of the next layer's inputs."""
    return data.StructLayout({"slots": slots(n_out, banks), "bin": unsigned(8)})


def result(n_classes: int) -> data.StructLayout:
    """One image's answer; cycles are counted from the cycle after its last pixel was accepted."""
    return data.StructLayout({"decision": unsigned(index_width(n_classes)), "first_spike_bin": unsigned(9),
                              "cycles": unsigned(32), "events": unsigned(32), "framing_error": unsigned(1)})


def lanes_word(width: int, lanes: int) -> data.ArrayLayout:
    """The potentials of one group of neurons: per lane a signed potential and a fired flag."""
    return data.ArrayLayout(data.StructLayout({"v": signed(width), "fired": unsigned(1)}), lanes)


def thresholds_word(width: int, lanes: int) -> data.ArrayLayout:
    return data.ArrayLayout(signed(width), lanes)
