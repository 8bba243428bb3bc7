"""What one generated core is: the network, the lanes per layer and the mode, with derived widths."""
from __future__ import annotations

from dataclasses import dataclass

from bs4nn.sw.cycles import MODES, parse_lanes
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

    @property
    def groups(self) -> int:
        """Cycles per event: ceil(n_out / lanes)."""
        return -(-self.n_out // self.lanes)


@dataclass(frozen=True)
class CoreConfig:
    network: Network
    lanes: tuple[int, ...]
    mode: str = "full"

    def __post_init__(self):
        lanes = parse_lanes(self.lanes, [layer.n_out for layer in self.network.layers])
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        object.__setattr__(self, "lanes", lanes)

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
        return LayerConfig(k, lay.n_in, lay.n_out, self.lanes[k], last, k + 2 < self.n_layers)

    def layers(self) -> list[LayerConfig]:
        return [self.layer(k) for k in range(self.n_layers)]

    def describe(self) -> dict:
        return {"sizes": self.network.sizes, "lanes": list(self.lanes), "mode": self.mode, "t_max": T_MAX}
