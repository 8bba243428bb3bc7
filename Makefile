# BS4NN: set up, train, export, evaluate, test.
#
#   make              = make all: set up .venv if needed, then train, export, evaluate and co-simulate the
#                       core on a few test images, on the bundled scikit-learn digits (offline, ~1 minute)
#   make test         the test suite
#   make train export eval DATASET=mnist DATA_DIR=/path/to/datasets
#   make sim-full     the whole test split bit for bit under Verilator (preloaded images, SHARDS processes)
#   make sim          co-simulate the core (Icarus; SIMULATOR=verilator) on SIM_LIMIT test images, bit for bit
#   make traces       latency traces of several core configurations (cycles per image, plots)
#   make hdl          the Verilog of the core (RUN_DIR/core)
#   make bitstream BOARD=arty_a7   board build (Vivado tree + open estimate without Vivado; ulx3s_85f, icebreaker)
#   make sweep        design-space sweep: lanes and events per cycle against area and cycles (runs/sweep)
#   make bench        training samples/s, reference images/s, time to 97% strict (runs/bench.json, .png)
#   make models DATASET=mnist      3 seeds of the default training, the median one shipped in models/
#
# Every step is the `bs4nn` command line; `make -n ...` shows the exact commands.

SHELL := /bin/bash
.DEFAULT_GOAL := all
.NOTPARALLEL:
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BS4NN := $(VENV)/bin/bs4nn
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0
# pip arguments for torch; where the CPU wheel is not on the default index, for example:
#   make setup TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
# Debian packages later parts need (HDL simulation): command to look for -> package
SYSTEM_PACKAGES ?= iverilog:iverilog tclsh:tcl

# ---------------------------------------------------------------- run settings
DATASET ?= digits
HIDDEN_digits := 100
HIDDEN_mnist := 600
HIDDEN_fashion-mnist := 600
EPOCHS ?=
HIDDEN ?= $(HIDDEN_$(DATASET))
SEED ?= 0
RULE ?=
RESUME ?=
RUNS ?= runs
RUN_DIR = $(RUNS)/$(DATASET)
MODEL ?= $(RUNS)/$(DATASET)/model
CHECKPOINT ?= $(RUN_DIR)/checkpoint.pt
DATA_DIR ?=

DATA_ARGS = $(if $(DATA_DIR),--data-dir $(DATA_DIR))

# hardware: core configuration and co-simulation
SIMULATOR ?= icarus
MODE ?= early
LANES ?= max
# events per cycle per layer (one number or E0,E1,...; max = every input)
EVENTS ?= 1
SIM_LIMIT ?= 20
TRACE_CONFIGS ?= early:max full:max early:16,max early:max:4,16
TRAIN_ARGS = --dataset $(DATASET) $(if $(HIDDEN),--hidden $(HIDDEN)) $(if $(EPOCHS),--epochs $(EPOCHS)) \
	--seed $(SEED) $(if $(RULE),--rule $(RULE)) $(if $(RESUME),--resume) --out $(RUN_DIR) $(DATA_ARGS)

# the tests find MNIST / Fashion-MNIST in the shared datasets folder beside the repo, when there is one
SHARED_DATA := $(wildcard ../shared/datasets)
TEST_ENV = $(if $(and $(SHARED_DATA),$(if $(BS4NN_DATA),,x)),BS4NN_DATA=$(abspath $(SHARED_DATA)))

.PHONY: all setup system-packages train export eval hdl sim sim-full traces bitstream sweep bench models test clean distclean

all: $(STAMP)
	$(MAKE) --no-print-directory train export eval sim SIM_LIMIT=10

# ---------------------------------------------------------------- setup
setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	@test -x $(PY) || { echo "$(PYTHON) -m venv $(VENV)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install torch==$(TORCH_VERSION) $(TORCH_PIP_ARGS)
	$(PY) -m pip install -e '.[test]'
	touch $@

system-packages:
	@missing=""; \
	for pair in $(SYSTEM_PACKAGES); do \
	  cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v "$$cmd" >/dev/null 2>&1 || dpkg -s "$$pkg" >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing system packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "note: system packages$$missing are missing (needed for the HDL simulation only);" \
	       "install them with your package manager (skipped: not root or no apt-get)"; \
	fi

# ---------------------------------------------------------------- the flow
train: $(STAMP)
	$(BS4NN) train $(TRAIN_ARGS)

export: $(STAMP)
	$(BS4NN) export --checkpoint $(CHECKPOINT) --out $(MODEL) --eval-dataset $(DATASET) $(DATA_ARGS)

eval: $(STAMP)
	$(BS4NN) eval --model $(MODEL) --dataset $(DATASET) --split test $(DATA_ARGS) \
	  --json $(RUN_DIR)/eval.json --dump-spikes $(RUN_DIR)/spikes.npz --plots $(RUN_DIR)/plots

hdl: $(STAMP)
	$(BS4NN) hdl --model $(MODEL) --out $(RUN_DIR)/core --lanes $(LANES) --events $(EVENTS) --mode $(MODE)

sim: $(STAMP)
	$(BS4NN) sim --model $(MODEL) --dataset $(DATASET) --split test --limit $(SIM_LIMIT) --simulator $(SIMULATOR) \
	  --mode $(MODE) --lanes $(LANES) --events $(EVENTS) --trace $(RUN_DIR)/hw_trace.npz $(DATA_ARGS)

# the whole test split under Verilator, images preloaded into the simulator, SHARDS parallel processes
SHARDS ?= 2
sim-full: $(STAMP)
	$(BS4NN) sim --model $(MODEL) --dataset $(DATASET) --split test --simulator verilator --preload --shards $(SHARDS) \
	  --mode $(MODE) --lanes $(LANES) --events $(EVENTS) --trace $(RUN_DIR)/hw_trace_full.npz $(DATA_ARGS)

traces: $(STAMP)
	$(BS4NN) trace --model $(MODEL) --dataset $(DATASET) --split test --limit $(SIM_LIMIT) --simulator $(SIMULATOR) \
	  $(foreach c,$(TRACE_CONFIGS),--config $(c)) --out $(RUN_DIR)/traces $(DATA_ARGS)

# board build: BOARD=arty_a7 | arty_a7_100 (Vivado tree + yosys estimate without Vivado) | ulx3s_85f | icebreaker
BOARD ?= arty_a7
bitstream: $(STAMP)
	$(BS4NN) bitstream --board $(BOARD) --model $(MODEL) --out build/$(BOARD)-$(DATASET) --lanes $(LANES) --events $(EVENTS) --mode $(MODE)

# design-space sweep on the shipped MNIST model: lanes/events points against the open Arty estimate (a few
# minutes per point) and the cycle model on the whole test set; runs/sweep/sweep.csv, sweep.json, sweep.png
SWEEP_MODEL ?= models/mnist-784-600-10
SWEEP_POINTS ?= max/1 max/2,1 max/2,16 max/4,16 max/4,max max/8,16 max/8,32 max/13,600 300,10/1 300,10/4,16 150,10/2,16
sweep: $(STAMP)
	$(BS4NN) sweep --model $(SWEEP_MODEL) --dataset mnist $(DATA_ARGS) $(foreach p,$(SWEEP_POINTS),--point $(p)) --out $(RUNS)/sweep

# training samples/s (784-600-10 MNIST), reference images/s (on the shipped model when there is one), time
# to 97% strict with the default training command, and runs/bench.png (accuracy against wall-clock time).
# Needs MNIST: DATA_DIR or BS4NN_DATA.
BENCH_DATASET ?= mnist
BENCH_MODEL ?= $(wildcard models/$(BENCH_DATASET)-784-600-10)
bench: $(STAMP)
	$(BS4NN) bench --dataset $(BENCH_DATASET) $(if $(DATA_DIR),--data-dir $(DATA_DIR),$(if $(SHARED_DATA),--data-dir $(abspath $(SHARED_DATA)))) \
	  $(if $(BENCH_MODEL),--model $(BENCH_MODEL)) --json $(RUNS)/bench.json

# the shipped model of DATASET: train SEEDS with the default command, export each, score them all and copy
# the median seed (by test strict accuracy) to models/<dataset>-<sizes>/; the table goes to runs/<dataset>-seeds.json
SEEDS ?= 0 1 2
SIZES_digits := 64-100-10
SIZES_mnist := 784-600-10
SIZES_fashion-mnist := 784-600-10
models: $(STAMP)
	set -e; for s in $(SEEDS); do \
	  $(BS4NN) train --dataset $(DATASET) --seed $$s --out $(RUNS)/$(DATASET)-s$$s $(DATA_ARGS); \
	  $(BS4NN) export --checkpoint $(RUNS)/$(DATASET)-s$$s/checkpoint.pt --out $(RUNS)/$(DATASET)-s$$s/model \
	    --eval-dataset $(DATASET) $(DATA_ARGS); \
	done
	$(PY) -m bs4nn.sw.seeds --dataset $(DATASET) --runs $(foreach s,$(SEEDS),$(RUNS)/$(DATASET)-s$(s)) $(DATA_ARGS) \
	  --table $(RUNS)/$(DATASET)-seeds.json --ship models/$(DATASET)-$(SIZES_$(DATASET))

# ---------------------------------------------------------------- tests and cleaning
test: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf -- $(RUNS) build sim_build .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf -- $(VENV)
