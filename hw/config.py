"""What one generated core is: the network, the lanes per layer and the mode, with derived widths."""
from __future__ import annotations

from dataclasses import dataclass

from bs4nn.sw.cycles import (  # noqa: F401 (re-exported)
    MODES, input_bank, parse_events, parse_lanes, rom_in_block_ram, spike_queue_entries)
from bs4nn.sw.network import Network
from bs4nn.sw.semantics import T_MAX



def index_width(n: int) -> int:
    """Bits for an index 0 .. n - 1 (at least 1)."""
    return max(1, (n - 1).bit_length())


def potential_width(n_in: int) -> int:
    """Signed bits for a potential in -n_in .. n_in and a threshold up to n_in + 1."""
    return (n_in + 1).bit_length() + 1


@dataclass(frozen=True)
class LayerConfig:
    index: int
    n_in: int
    n_out: int
    lanes: int  # neurons updated per cycle (P)
    is_output: bool
    next_is_hidden: bool  # events at bin 255 are not forwarded to a hidden layer
    events: int = 1  # E: events taken per word, one per input bank (`input_bank(i, E, index)`)
    events_out: int = 1  # the next layer's E (1 for the output layer): the spike words' banks

    @property
    def groups(self) -> int:
        """Cycles per event word: ceil(n_out / lanes)."""
        return -(-self.n_out // self.lanes)

    @property
    def bank_depth(self) -> int:
        """Inputs per bank: ceil(n_in / E)."""
        return -(-self.n_in // self.events)


@dataclass(frozen=True)
class CoreConfig:
    network: Network
    lanes: tuple[int, ...]
    mode: str = "full"
    events: tuple[int, ...] = 1  # E per layer: events per cycle (sw/cycles.py parse_events)

    def __post_init__(self):
        lanes = parse_lanes(self.lanes, [layer.n_out for layer in self.network.layers])
        events = parse_events(self.events, [layer.n_in for layer in self.network.layers])
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        object.__setattr__(self, "lanes", lanes)
        object.__setattr__(self, "events", events)

    @property
    def n_layers(self) -> int:
        return len(self.network.layers)

    @property
    def n_in(self) -> int:
        return self.network.layers[0].n_in

    @property
    def n_classes(self) -> int:
        return self.network.n_classes

    @property
    def skip_input_bin_255(self) -> bool:
        """Input events at bin 255 can never make a hidden neuron fire: layer 0 skips them unless it is
        the output layer."""
        return self.n_layers > 1

    def layer(self, k: int) -> LayerConfig:
        lay = self.network.layers[k]
        last = k == self.n_layers - 1
        return LayerConfig(k, lay.n_in, lay.n_out, self.lanes[k], last, k + 2 < self.n_layers, self.events[k],
                           1 if last else self.events[k + 1])

    def layers(self) -> list[LayerConfig]:
        return [self.layer(k) for k in range(self.n_layers)]

    def describe(self) -> dict:
        return {"sizes": self.network.sizes, "lanes": list(self.lanes), "events": list(self.events),
                "mode": self.mode, "t_max": T_MAX}
