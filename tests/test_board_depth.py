"""The register-to-register logic-level walk over a synthesised netlist (boards/depth.py)."""
from bs4nn.boards.depth import logic_depth

PROVENANCE = {"spec": "logic levels as Vivado counts them; distributed RAM is read asynchronously only from its address",
              "oracle": "hand-built netlists whose deepest path is known by construction"}


def cell(kind, inputs: dict, outputs: dict):
    ports = {**{p: "input" for p in inputs}, **{p: "output" for p in outputs}}
    return {"type": kind, "port_directions": ports, "connections": {**inputs, **outputs}}


def netlist(cells):
    return {"modules": {"top": {"cells": cells}}}


def chain(n_luts, start_bit=10):
    """FF (Q = start_bit) -> n LUTs -> FF; returns the cells and the last bit."""
    cells = {"ff_src": cell("FDRE", {"D": [2], "C": [1]}, {"Q": [start_bit]})}
    bit = start_bit
    for i in range(n_luts):
        cells[f"lut{start_bit}_{i}"] = cell("LUT2", {"I0": [bit], "I1": [3]}, {"O": [bit + 1]})
        bit += 1
    return cells, bit


def test_a_lut_chain_counts_its_luts_and_ends_at_the_flip_flop():
    cells, last = chain(4)
    cells["ff_dst"] = cell("FDRE", {"D": [last], "C": [1]}, {"Q": [99]})
    cells["after"] = cell("LUT1", {"I0": [99]}, {"O": [100]})  # a new path starts at the flip-flop
    depth = logic_depth(netlist(cells), "top")
    assert (depth.levels, depth.lut_levels) == (4, 4)
    assert depth.path == [f"<bit {b}>" for b in range(10, 15)]  # the flip-flop's output, then each LUT's
    assert depth.ends_at == ["<bit 99>"]  # the flip-flop it ends at, by its output


def test_carry_and_muxf_are_levels_but_not_lut_levels():
    cells, last = chain(2)
    cells["carry"] = cell("CARRY4", {"S": [last, 3, 3, 3], "CI": [3]}, {"CO": [40, 41, 42, 43]})
    cells["mux"] = cell("MUXF7", {"I0": [43], "I1": [3], "S": [3]}, {"O": [44]})
    depth = logic_depth(netlist(cells), "top")
    assert (depth.levels, depth.lut_levels) == (4, 2)


def test_distributed_ram_is_one_level_from_its_address_not_from_its_write_data():
    deep, deep_out = chain(6, start_bit=10)
    short, short_out = chain(1, start_bit=50)
    cells = {**deep, **short, "ff_src2": cell("FDRE", {"D": [2], "C": [1]}, {"Q": [50]})}
    cells["ram"] = cell("RAM64M", {"DIA": [deep_out], "WE": [deep_out], "WCLK": [1], "ADDRA": [short_out]},
                        {"DOA": [70]})
    cells["use"] = cell("LUT1", {"I0": [70]}, {"O": [71]})
    depth = logic_depth(netlist(cells), "top")
    # the deepest path is the 6-LUT chain into the write side; through the read: 1 LUT + RAM + 1 LUT = 3
    assert depth.levels == 6
    assert depth.ends_at == ["<bit 70>"]  # the RAM, by its read data: the path ends at its write side
    del cells["lut10_5"]
    cells["ram"]["connections"]["DIA"] = [15]
    assert logic_depth(netlist(cells), "top").levels == 5
    cells["ram"]["connections"]["ADDRA"] = [15]  # the 5-LUT chain now reaches the read address
    assert logic_depth(netlist(cells), "top").levels == 7


def test_a_combinational_loop_does_not_hang():
    cells = {"a": cell("LUT1", {"I0": [2]}, {"O": [1]}), "b": cell("LUT1", {"I0": [1]}, {"O": [2]})}
    assert logic_depth(netlist(cells), "top").levels in (1, 2)
