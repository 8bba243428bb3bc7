"""Combinational helpers: a tree priority encoder (lowest set bit) with logarithmic depth."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, Value


def _pad(value: Value, width: int) -> Value:
    return value if len(value) == width else Cat(value, Const(0, width - len(value)))


def lowest_set_bit(m, bits: Value, name: str):
    """(any, index): whether `bits` has a set bit and the index of the lowest one, built as a balanced tree
    of 2-way muxes (depth log2(width)), not as a chain."""
    def tree(lo: int, hi: int):
        if hi - lo == 1:
            return bits[lo], Const(0, 0)
        width = (hi - lo - 1).bit_length() - 1  # the lower half holds 2**width bits
        mid = lo + (1 << width)
        any_lo, idx_lo = tree(lo, mid)
        any_hi, idx_hi = tree(mid, hi)
        index = Mux(any_lo, Cat(_pad(idx_lo, width), Const(0, 1)), Cat(_pad(idx_hi, width), Const(1, 1)))
        return any_lo | any_hi, index

    any_bit, index = tree(0, len(bits))
    any_sig = Signal(name=f"{name}_any")
    index_sig = Signal(max(1, (len(bits) - 1).bit_length()), name=f"{name}_index")
    m.d.comb += [any_sig.eq(any_bit), index_sig.eq(index)]
    return any_sig, index_sig
