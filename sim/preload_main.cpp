// Native driver of the bs4nn preload harness (sim/preload.py) under Verilator: no VPI, no cocotb.
// The harness streams its preloaded images through the core, logs every result and spike itself and
// calls $finish when the last image is done (or its watchdog fires); this loop only clocks it.
#include "Vbs4nn_preload.h"
#include "verilated.h"

int main(int argc, char** argv) {
    VerilatedContext context;
    context.commandArgs(argc, argv);  // the harness reads +images, +pixels, +log, +watchdog
    Vbs4nn_preload harness{&context};
    harness.clk = 0;
    harness.rst = 1;
    harness.eval();
    for (int cycle = 0; cycle < 3; ++cycle) {  // RESET_CYCLES of sim/preload.py (Icarus' clock module)
        harness.clk = 1; harness.eval();
        harness.clk = 0; harness.eval();
    }
    harness.rst = 0;
    while (!context.gotFinish()) {
        harness.clk = 1; harness.eval();
        harness.clk = 0; harness.eval();
    }
    harness.final();
    return 0;
}
