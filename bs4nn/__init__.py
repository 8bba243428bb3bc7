"""BS4NN toolkit: binarized time-to-first-spike networks, from training to a bit-exact FPGA core."""
