"""Fast co-simulation: images preloaded into a Verilog harness, results logged by the simulator itself.

The per-cycle Python of the cocotb testbench (`cocotb_core`) is what bounds its speed (~3k cycles/s under
Verilator). Here a plain Verilog harness (`bs4nn_preload`) holds the images in a memory read with
`$readmemh`, streams them into the core back to back at one pixel per cycle with every output always
ready, and `$fwrite`s each first and last pixel (with its cycle), each result and each spike to a log;
cocotb only starts the clock, releases reset and waits for `done`. The log is then checked exactly as the
cocotb testbench's observations are (`scoreboard.check_and_report`). Shards run in parallel processes,
each with its own slice of the images and its own run directory, on one compiled simulator.
"""
from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

TOP = "bs4nn_preload"
TEST_MODULE = "bs4nn.sim.cocotb_preload"


def harness_verilog(core: dict, core_verilog: str, capacity: int) -> str:
    """The harness for a core (its core.json and Verilog text) holding up to `capacity` images."""
    n_in = core["sizes"][0]
    n_layers = len(core["layers"])
    ports = core["ports"]
    result_width = ports["m_axis_result"]["width"]
    digest = hashlib.sha256(core_verilog.encode()).hexdigest()
    lines = [
        f"// bs4nn preload harness for the core with Verilog sha256 {digest}",
        f"module {TOP}(input wire clk, input wire rst, output reg done);",
        f"  localparam N_IN = {n_in};",
        f"  localparam CAPACITY = {capacity};",
        "  reg [7:0] pixels [0:N_IN*CAPACITY-1];",
        "  reg [8*1024-1:0] pixel_file, log_file;",
        "  integer n_images, fd;",
        "  reg [31:0] cycle, image, column, answered;",
        "  initial begin",
        "    done = 0;",
        '    if (!$value$plusargs("images=%d", n_images)) n_images = 0;',
        '    if (!$value$plusargs("pixels=%s", pixel_file)) $fatal(1, "+pixels=FILE missing");',
        '    if (!$value$plusargs("log=%s", log_file)) $fatal(1, "+log=FILE missing");',
        "    if (n_images > CAPACITY) $fatal(1, \"more images than the harness holds\");",
        "    $readmemh(pixel_file, pixels);",
        '    fd = $fopen(log_file, "w");',
        "  end",
        "  wire pixel_ready;",
        "  wire pixel_valid = !rst && image < n_images;",
        "  wire [7:0] pixel_data = pixels[image * N_IN + column];",
        "  wire pixel_last = column == N_IN - 1;",
        "  wire result_valid;",
        f"  wire [{result_width - 1}:0] result_data;",
    ]
    connections = [".clk(clk)", ".rst(rst)", ".abort(1'b0)",
                   ".s_axis_pixels_tvalid(pixel_valid)", ".s_axis_pixels_tready(pixel_ready)",
                   ".s_axis_pixels_tdata(pixel_data)", ".s_axis_pixels_tlast(pixel_last)",
                   ".m_axis_result_tvalid(result_valid)", ".m_axis_result_tready(1'b1)",
                   ".m_axis_result_tdata(result_data)", ".m_axis_result_tlast()"]
    spike_logs = []
    for k in range(n_layers):
        width = ports[f"m_axis_spikes_l{k}"]["width"]
        lines += [f"  wire spike{k}_valid;", f"  wire [{width - 1}:0] spike{k}_data;"]
        connections += [f".m_axis_spikes_l{k}_tvalid(spike{k}_valid)", f".m_axis_spikes_l{k}_tready(1'b1)",
                        f".m_axis_spikes_l{k}_tdata(spike{k}_data)"]
        spike_logs.append(f'      if (spike{k}_valid) $fwrite(fd, "S {k} %0d\\n", spike{k}_data);')
    lines += [
        "  bs4nn_core core(" + ", ".join(connections) + ");",
        "  always @(posedge clk) begin",
        "    if (rst) begin",
        "      cycle <= 0; image <= 0; column <= 0; answered <= 0; done <= 0;",
        "    end else begin",
        "      cycle <= cycle + 1;",
        "      if (pixel_valid && pixel_ready) begin",
        '        if (column == 0) $fwrite(fd, "P %0d\\n", cycle);',
        "        if (pixel_last) begin",
        '          $fwrite(fd, "L %0d\\n", cycle);',
        "          column <= 0; image <= image + 1;",
        "        end else column <= column + 1;",
        "      end",
        '      if (result_valid) begin $fwrite(fd, "R %0d %0d\\n", cycle, result_data); answered <= answered + 1; end',
        *spike_logs,
        # the last image is finished (its drain included) once the core takes pixels again
        "      if (!done && answered == n_images && image == n_images && pixel_ready) begin",
        "        $fflush(fd); done <= 1;",
        "      end",
        "    end",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(lines)


def parse_log(text: str, core: dict) -> tuple[list[dict], list[list[dict]], list[int], list[int]]:
    """(results, spikes per image and layer, first-pixel cycles, measured cycles) from a harness log."""
    from .scoreboard import field_value, spike_word

    n_layers = len(core["layers"])
    result_fields = core["ports"]["m_axis_result"]["tdata"]
    spike_fields = [core["ports"][f"m_axis_spikes_l{k}"]["tdata"] for k in range(n_layers)]
    results, spikes, firsts, lasts, measured = [], [], [], [], []
    for line in text.splitlines():
        kind, *values = line.split()
        if kind == "P":
            firsts.append(int(values[0]))
            spikes.append([{} for _ in range(n_layers)])
        elif kind == "L":
            lasts.append(int(values[0]))
        elif kind == "R":
            cycle, value = int(values[0]), int(values[1])
            results.append({name: field_value(value, f) for name, f in result_fields.items()})
            measured.append(cycle - lasts[len(results) - 1])
        elif kind == "S":
            k, value = int(values[0]), int(values[1])
            neurons, b = spike_word(value, spike_fields[k])
            layer = spikes[-1][k]
            for neuron in neurons:
                if neuron in layer:
                    raise ValueError(f"image {len(spikes) - 1} layer {k}: neuron {neuron} spiked twice")
                layer[neuron] = b
    return results, spikes, firsts, measured


def write_pixels(path: Path, images: np.ndarray) -> None:
    """Images as one hex byte per line, for $readmemh."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(-1)
    table = np.array([f"{v:02x}" for v in range(256)])
    Path(path).write_text("\n".join(table[flat].tolist()) + "\n")


def _run_shard(built, images, model_dir, run_dir, names, core_json) -> dict:
    from . import runner

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_pixels(run_dir / "pixels.hex", images)
    plusargs = [f"+images={len(images)}", f"+pixels={(run_dir / 'pixels.hex').resolve()}",
                f"+log={(run_dir / 'harness.log').resolve()}"]
    return runner.run(built, images, model_dir, run_dir, names=names, test_module=TEST_MODULE,
                      extra={"log": str((run_dir / "harness.log").resolve()), "core": str(Path(core_json).resolve())},
                      plusargs=plusargs)


def run_preloaded(core_dir: Path, images: np.ndarray, model_dir, work_dir: Path, simulator: str = "verilator",
                  shards: int = 1, names=None, progress: bool = False) -> list[dict]:
    """Build the harness around the core in `core_dir`, run `images` in `shards` parallel processes; return
    each shard's report (in image order)."""
    from . import runner

    core = json.loads((Path(core_dir) / "core.json").read_text())
    core_verilog = (Path(core_dir) / "bs4nn_core.v").read_text()
    shards = max(1, min(shards, len(images)))
    bounds = np.linspace(0, len(images), shards + 1).astype(int)
    capacity = int(max(np.diff(bounds)))
    harness_dir = Path(work_dir) / "harness"
    harness_dir.mkdir(parents=True, exist_ok=True)
    (harness_dir / f"{TOP}.v").write_text(harness_verilog(core, core_verilog, capacity))
    built = runner.build(harness_dir, simulator, Path(work_dir) / "build", top=TOP,
                         extra_sources=[Path(core_dir) / "bs4nn_core.v"])
    names = names or [f"image {i}" for i in range(len(images))]
    jobs = [(built, images[a:b], model_dir, Path(work_dir) / f"shard{s}", names[a:b], Path(core_dir) / "core.json")
            for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]
    if shards == 1:
        return [_run_shard(*jobs[0])]
    with ProcessPoolExecutor(max_workers=shards) as pool:
        futures = [pool.submit(_run_shard, *job) for job in jobs]
        if progress:
            from tqdm import tqdm

            for _ in tqdm(futures, desc=f"co-simulation ({simulator}, {shards} shards)", unit="shard"):
                _.result()
        return [f.result() for f in futures]
