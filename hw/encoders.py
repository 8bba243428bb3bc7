"""Combinational helpers: a tree priority encoder (lowest set bit) with logarithmic depth, its two-level
form over chunks with registered flags, OR trees, a one-hot lowest bit, popcounts and a multiplexer tree."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, Value


def _pad(value: Value, width: int) -> Value:
    return value if len(value) == width else Cat(value, Const(0, width - len(value)))


def lowest_set_bit(m, bits, name: str, several: bool = False):
    """(any, index[, several]): whether `bits` (a Value, or a list of 1-bit signals, index 0 first) has a
    set bit, the index of the lowest one and, with `several`, whether more than one is set. Built as a
    balanced tree of signals (depth log2(width)), not as a chain."""
    bits = list(bits) if not isinstance(bits, Value) else [bits[i] for i in range(len(bits))]

    def tree(lo: int, hi: int):
        if hi - lo == 1:
            return bits[lo], Const(0, 0), Const(0, 1)
        width = (hi - lo - 1).bit_length() - 1  # the lower half holds 2**width bits
        mid = lo + (1 << width)
        any_lo, idx_lo, many_lo = tree(lo, mid)
        any_hi, idx_hi, many_hi = tree(mid, hi)
        # every node is a signal, so no sub-expression is copied into two parents
        node_any, node_index = Signal(name=f"{name}_any_{lo}_{hi}"), Signal(width + 1, name=f"{name}_idx_{lo}_{hi}")
        m.d.comb += [node_any.eq(any_lo | any_hi),
                     node_index.eq(Mux(any_lo, Cat(_pad(idx_lo, width), Const(0, 1)),
                                       Cat(_pad(idx_hi, width), Const(1, 1))))]
        node_many = Const(0, 1)
        if several:
            node_many = Signal(name=f"{name}_many_{lo}_{hi}")
            m.d.comb += node_many.eq(many_lo | many_hi | (any_lo & any_hi))
        return node_any, node_index, node_many

    any_bit, index, many = tree(0, len(bits))
    any_sig = Signal(name=f"{name}_any")
    index_sig = Signal(max(1, (len(bits) - 1).bit_length()), name=f"{name}_index")
    m.d.comb += [any_sig.eq(any_bit), index_sig.eq(index)]
    if not several:
        return any_sig, index_sig
    many_sig = Signal(name=f"{name}_several")
    m.d.comb += many_sig.eq(many)
    return any_sig, index_sig, many_sig


def chunked_lowest(m, bits: list, flags: list, chunk: int, name: str, chunks_per_part: int | None = None):
    """The lowest set bit of `bits` in two levels, given `flags` (kept in registers): per chunk of `chunk`
    consecutive bits (the last one may be shorter), whether any of its bits is set. The levels:
    the lowest flagged chunk (a one-hot over the flags) and, in parallel, each chunk's own lowest bit.
    Returns (any, index parts, the bits with the lowest one cleared, the flags after that clear, per chunk
    whether it holds two or more); no path crosses more than one chunk's bits or the flags. The index is
    the OR of its parts, each gathered from `chunks_per_part` neighbouring chunks (all of them by default),
    so a caller can register the parts and OR them a cycle later instead of gathering from every chunk in
    one cycle. `chunk` is a power of two."""
    assert chunk >= 2 and chunk & (chunk - 1) == 0 and len(flags) == -(-len(bits) // chunk)
    local_width = chunk.bit_length() - 1
    chunk_onehot = lowest_one_hot(m, Cat(*flags), f"{name}_chunks")
    found = any_set(m, flags, f"{name}_any")
    chunk_width = max(1, (len(flags) - 1).bit_length())
    indices, cleared, flags_after, chunk_several = [], [], [], []  # indices: per chunk, its lowest bit's index
    # where it is the lowest chunk, else 0
    for c, first in enumerate(range(0, len(bits), chunk)):
        part = bits[first:first + chunk]
        _, local, several = lowest_set_bit(m, part, f"{name}_c{c}", several=True)
        indices.append(Mux(chunk_onehot[c], Cat(_pad(local, local_width), Const(c, chunk_width)), 0))
        below = any_below(m, part, f"{name}_c{c}")
        cleared += [bit & (~chunk_onehot[c] | keep) for bit, keep in zip(part, below)]
        flags_after.append(flags[c] & (~chunk_onehot[c] | several))
        chunk_several.append(several)
    step = chunks_per_part or len(flags)
    parts = []
    for p, first in enumerate(range(0, len(flags), step)):
        index = Signal(local_width + chunk_width, name=f"{name}_index_part{p}")
        m.d.comb += index.eq(any_set_words(m, indices[first:first + step], f"{name}_part{p}"))
        parts.append(index)
    return found, parts, cleared, flags_after, chunk_several


def at_least(m, bits: list, count: int, name: str) -> Signal:
    """Whether at least `count` of the 1-bit values are set, as a balanced tree of thermometer codes
    (node bit k - 1: k or more of its leaves are set, k <= count): ANDs and ORs only, no adders, so no
    carry chain is spent on it."""
    level = [[bit] + [Const(0, 1)] * (count - 1) for bit in bits]
    depth = 0
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            a, b = level[i], level[i + 1]
            node = []
            for k in range(1, count + 1):  # k or more: k or more on one side, or j on the left and k - j on the right
                bit = Signal(name=f"{name}_n{depth}_{i // 2}_ge{k}")
                m.d.comb += bit.eq(a[k - 1] | b[k - 1] | Cat(a[j - 1] & b[k - j - 1] for j in range(1, k)).any()
                                   if k > 1 else a[0] | b[0])
                node.append(bit)
            nxt.append(node)
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    result = Signal(name=name)
    m.d.comb += result.eq(level[0][count - 1] if level else 0)
    return result


def lowest_one_hot(m, bits: Value, name: str) -> Signal:
    """`bits` with only its lowest set bit kept (a one-hot vector, or zero), bit i = bits[i] & no lower bit
    set; for the narrow words (16 bits) of the input stage's walk, where each output is one small function."""
    result = Signal(len(bits), name=f"{name}_onehot")
    m.d.comb += result.eq(Cat(bits[i] & ~bits[:i].any() if i else bits[0] for i in range(len(bits))))
    return result


def any_below(m, bits: list, name: str) -> list:
    """Per position i, whether any of bits[0 .. i-1] is set (an exclusive prefix OR), as a Sklansky network
    of signals (log2(width) levels of 2-input ORs); `bits[i] & any_below[i]` clears the lowest set bit."""
    prefix = list(bits)  # inclusive prefix ORs, built in place
    span = 1
    while span < len(prefix):
        nxt = list(prefix)
        for i in range(len(prefix)):
            if i // span % 2:  # the upper half of a block of 2 * span takes the lower half's last prefix
                node = Signal(name=f"{name}_p{span}_{i}")
                m.d.comb += node.eq(prefix[i] | prefix[i // span * span - 1])
                nxt[i] = node
        prefix, span = nxt, span * 2
    return [Const(0, 1)] + prefix[:-1]


def any_set(m, bits: list, name: str) -> Signal:
    """OR of a list of 1-bit values as a balanced tree of signals."""
    result = Signal(name=name)
    m.d.comb += result.eq(any_set_words(m, bits, name) if bits else 0)
    return result


def any_set_words(m, words: list, name: str) -> Signal:
    """Bitwise OR of equally wide values as a balanced tree of signals."""
    level = list(words)
    depth = 0
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            node = Signal(len(level[i]), name=f"{name}_or{depth}_{i // 2}")
            m.d.comb += node.eq(level[i] | level[i + 1])
            nxt.append(node)
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    return level[0]


def popcount(m, bits: list, name: str) -> Value:
    """The number of set bits among 1-bit values, as a balanced tree of adders (each node a signal)."""
    level = [(b, 1) for b in bits]  # (value, its maximum)
    depth = 0
    if not level:
        return Const(0, 1)
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            (a, amax), (b, bmax) = level[i], level[i + 1]
            node = Signal(range(amax + bmax + 1), name=f"{name}_sum{depth}_{i // 2}")
            m.d.comb += node.eq(a + b)
            nxt.append((node, amax + bmax))
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    return level[0][0]


def select(m, values: list, index: Value, name: str) -> Value:
    """values[index] as a balanced tree of 2:1 multiplexers (one signal per node); index < len(values)."""
    level, bit = list(values), 0
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            node = Signal(len(level[i]), name=f"{name}_sel{bit}_{i // 2}")
            m.d.comb += node.eq(Mux(index[bit], level[i + 1], level[i]))
            nxt.append(node)
        if len(level) % 2:
            nxt.append(level[-1])
        level, bit = nxt, bit + 1
    return level[0]
