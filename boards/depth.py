"""Logic levels between registers in a synthesised Xilinx 7-series netlist (yosys `write_json`).

yosys' `ltp` treats every non-flip-flop cell as combinational from all inputs to all outputs, so it walks
through distributed RAM from its write side; this walk does not. Start points are flip-flops, block RAM
and DSP outputs, distributed-RAM outputs fed by write-side pins only, constants and top-level inputs;
a path ends at any input of a sequential cell (or a RAM's write side). Each LUT, distributed-RAM read
(address to data), MUXF7/MUXF8 and CARRY4 on a path is one level, the way Vivado counts logic levels;
`lut_levels` counts the LUTs and RAM reads only.

`groups_over` maps what stands between a netlist and a depth aim: the registers whose deepest input
path has more LUT levels than the aim, grouped by name with the numbers taken out (600 lanes' registers
are one group), deepest first.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# distributed RAM: the inputs whose value reaches the read data in the same cycle
_RAM_READ_INPUTS = ("ADDR", "A", "DPRA", "RADR")


def _cell_kind(cell_type: str) -> str:
    if cell_type.startswith("LUT"):
        return "lut"
    if cell_type in ("MUXF7", "MUXF8"):
        return "mux"
    if cell_type == "CARRY4":
        return "carry"
    if cell_type.startswith("RAM") and not cell_type.startswith("RAMB"):
        return "lutram"
    if cell_type in ("INV", "BUFG", "IBUF", "OBUF", "BUFGCTRL", "IOBUF", "OBUFT"):
        return "wire"
    return "sequential"  # FD*, RAMB*, DSP48*, SRL*, anything unknown: a path ends and starts there


@dataclass
class Depth:
    levels: int  # logic levels on the deepest register-to-register path
    lut_levels: int  # LUTs and distributed-RAM reads on the path with the most of them
    path: list[str] = field(default_factory=list)  # nets along the deepest path (by levels), start first
    ends_at: list[str] = field(default_factory=list)  # the registers it ends at, by their output nets
    # every register signal (flip-flops, or a RAM's write side), by its output net: the LUT levels of the
    # deepest path into any of its bits
    endpoint_lut_levels: dict[str, int] = field(default_factory=dict)


def logic_depth(netlist: dict, top: str) -> Depth:
    module = netlist["modules"][top]
    drivers: dict[int, tuple[str, list[int]]] = {}  # bit -> (cell, input bits that reach it combinationally)
    weight: dict[str, tuple[int, int]] = {}
    for name, cell in module["cells"].items():
        kind = _cell_kind(cell["type"])
        if kind == "sequential":
            continue
        directions, connections = cell.get("port_directions", {}), cell["connections"]
        inputs = []
        for port, bits in connections.items():
            if directions.get(port) != "input":
                continue
            if kind == "lutram" and not port.startswith(_RAM_READ_INPUTS):
                continue
            inputs.extend(b for b in bits if isinstance(b, int))
        weight[name] = {"lut": (1, 1), "lutram": (1, 1), "mux": (1, 0), "carry": (1, 0), "wire": (0, 0)}[kind]
        for port, bits in connections.items():
            if directions.get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        drivers[b] = (name, inputs)
    # longest arrival per bit, iteratively (netlists are deep enough to overflow recursion)
    arrival: dict[int, tuple[int, int, int | None]] = {}  # bit -> (levels, lut levels, predecessor bit)
    visiting: set[int] = set()
    for start in drivers:
        stack = [(start, False)]
        while stack:
            bit, expanded = stack.pop()
            if bit in arrival:
                continue
            if bit not in drivers or (not expanded and bit in visiting):  # a start point (or a loop: cut)
                arrival[bit] = (0, 0, None)
                continue
            cell, inputs = drivers[bit]
            if not expanded:
                visiting.add(bit)
                stack.append((bit, True))
                stack.extend((b, False) for b in inputs if b not in arrival)
                continue
            levels, luts, via = 0, 0, None
            for b in inputs:
                got = arrival.get(b, (0, 0, None))
                if via is None or got[0] > levels:
                    levels, via = got[0], b
                luts = max(luts, got[1])
            step, lut_step = weight[cell]
            arrival[bit] = (levels + step, luts + lut_step, via)
    if not arrival:
        return Depth(0, 0, [])
    names: dict[int, str] = {}
    for net, info in module.get("netnames", {}).items():
        for b in info["bits"]:
            if isinstance(b, int) and (b not in names or (names[b].startswith("$") and not net.startswith("$"))):
                names[b] = net
    end = max(arrival, key=lambda b: arrival[b][0])
    path, bit = [], end
    while bit is not None:
        path.append(names.get(bit, f"<bit {bit}>"))
        bit = arrival[bit][2]
    ends_at = []  # the cells where the path's last bit ends (a sequential input, a RAM's write side), by output
    endpoint_lut_levels: dict[str, int] = {}
    for name, cell in module["cells"].items():
        kind = _cell_kind(cell["type"])
        if kind not in ("sequential", "lutram"):
            continue
        directions, connections = cell.get("port_directions", {}), cell["connections"]
        inputs = [b for port, bits in connections.items() if directions.get(port) == "input"
                  and not (kind == "lutram" and port.startswith(_RAM_READ_INPUTS)) for b in bits if isinstance(b, int)]
        outputs = [b for port, bits in connections.items() if directions.get(port) == "output"
                   for b in bits if isinstance(b, int)]
        label = names.get(outputs[0], f"<bit {outputs[0]}>") if outputs else name
        levels = max([arrival.get(b, (0, 0, None))[1] for b in inputs], default=0)
        endpoint_lut_levels[label] = max(levels, endpoint_lut_levels.get(label, 0))  # a signal's bits: its deepest
        if end in inputs:
            ends_at.append(label)
    return Depth(arrival[end][0], max(a[1] for a in arrival.values()), path[::-1], sorted(set(ends_at)),
                 endpoint_lut_levels)


def groups_over(endpoint_lut_levels: dict[str, int], aim: int) -> list[dict]:
    """The registers deeper than `aim` LUT levels, grouped by name with every number replaced by '#':
    [{"registers": pattern, "lut_levels": deepest, "count": how many}], deepest first, then most."""
    groups: dict[str, list[int]] = defaultdict(list)
    for label, levels in endpoint_lut_levels.items():
        if levels > aim:
            groups[re.sub(r"\d+", "#", label)].append(levels)
    rows = [{"registers": pattern, "lut_levels": max(levels), "count": len(levels)}
            for pattern, levels in groups.items()]
    return sorted(rows, key=lambda row: (-row["lut_levels"], -row["count"], row["registers"]))


def netlist_depth(json_path: Path, top: str) -> Depth:
    return logic_depth(json.loads(Path(json_path).read_text()), top)
