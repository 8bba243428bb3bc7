"""The register-to-register logic-level walk over a synthesised netlist (boards/depth.py)."""
from bs4nn.boards.depth import groups_over, logic_depth

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


def named(cells, names: dict):
    net = netlist(cells)
    net["modules"]["top"]["netnames"] = {name: {"bits": bits} for name, bits in names.items()}
    return net


def test_each_register_signal_gets_its_deepest_input_and_groups_over_the_aim_merge_numbered_names():
    cells = {}
    for lane, n_luts in enumerate((7, 3, 9)):  # lane0 .. lane2: 7, 3 and 9 LUTs into their flip-flops
        chain_cells, last = chain(n_luts, start_bit=100 * (lane + 1))
        cells |= chain_cells
        cells[f"ff_lane{lane}"] = cell("FDRE", {"D": [last], "C": [1]}, {"Q": [1000 + lane]})
    # a two-bit register whose bit 1 is 8 LUTs deep and bit 0 is 1 LUT deep: the signal counts as 8
    deep, deep_out = chain(8, start_bit=500)
    shallow, shallow_out = chain(1, start_bit=600)
    cells |= deep | shallow
    cells["state_b1"] = cell("FDRE", {"D": [deep_out], "C": [1]}, {"Q": [2001]})  # the deep bit first: a
    cells["state_b0"] = cell("FDRE", {"D": [shallow_out], "C": [1]}, {"Q": [2000]})  # later one must not win
    names = {**{f"core.lane{lane}": [1000 + lane] for lane in range(3)}, "core.fsm_state": [2000, 2001]}
    depth = logic_depth(named(cells, names), "top")
    assert depth.endpoint_lut_levels["core.lane0"] == 7 and depth.endpoint_lut_levels["core.lane1"] == 3
    assert depth.endpoint_lut_levels["core.lane2"] == 9 and depth.endpoint_lut_levels["core.fsm_state"] == 8
    assert groups_over(depth.endpoint_lut_levels, 6) == [  # deepest first; lane1 (3 levels) is within the aim
        {"registers": "core.lane#", "lut_levels": 9, "count": 2},
        {"registers": "core.fsm_state", "lut_levels": 8, "count": 1},
    ]
    assert groups_over(depth.endpoint_lut_levels, 9) == []
