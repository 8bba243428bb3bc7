"""The cycle model's event floor and pipeline floor: hand-worked cases, and bounds that no schedule of the core
beats."""
from __future__ import annotations

import numpy as np
import pytest

from bs4nn.sw import reference
from bs4nn.sw.conformance import random_case
from bs4nn.sw.cycles import FloorLatency, event_floor, parse_lanes, pipeline_latency, schedule
from bs4nn.sw.semantics import encode_pixels

NEVER = 256


def _case():
    """3 inputs at bins 3, 3, 5; hidden spikes at bins 4 and 6 (one hidden neuron never fires); output
    neuron 1 fires at bin 7, neuron 0 at 9."""
    input_bins = np.array([[3, 5, 3]])
    spikes = [np.array([[4, NEVER, 6]], np.int16), np.array([[9, 7]], np.int16)]
    return [3, 3, 2], input_bins, spikes


def test_floor_of_a_hand_worked_case():
    sizes, input_bins, spikes = _case()
    # one event per cycle: inputs in cycles 1, 2 (bin 3), 3 (bin 5); the bin-4 spike is ready after the
    # last bin-3 input (cycle 2) -> cycle 3; the bin-6 spike after the bin-5 input (3) -> cycle 4
    full, early = event_floor(sizes, input_bins, spikes)
    assert (full.tolist(), early.tolist()) == ([5], [5])
    # two per cycle: inputs 1, 1, 2; hidden spikes in cycles 2 and 3
    full, early = event_floor(sizes, input_bins, spikes, events_per_cycle=2)
    assert (full.tolist(), early.tolist()) == ([4], [4])
    # per layer: the first layer at 2, the output at 1 changes nothing here (its events arrive one by one)
    assert event_floor(sizes, input_bins, spikes, events_per_cycle=(2, 1))[1].tolist() == [4]


def test_pipeline_floor_of_a_hand_worked_case():
    """The same case with the core's fixed latencies (E 1, every lane; ROMs this small are logic, no stage
    R): inputs from cycle 3 (cycles 3, 4, 5); a spike 3 + HANDOVER = 7 cycles after its layer's last event
    of an earlier bin (bin 4: 4 + 7 = 11; bin 6: 5 + 7 = 12); the result 2 + DECISION_STAGES = 4 cycles
    after the output layer's last needed word (12 + 4 = 16)."""
    sizes, input_bins, spikes = _case()
    latency = pipeline_latency(sizes, None, None)
    assert latency == FloorLatency(first_event=3, handover=(7,), decision=4, end=2)
    assert event_floor(sizes, input_bins, spikes, latency=latency)[1].tolist() == [16]
    spikes[1][0] = [9, 5]  # t* = 5: the bin-4 spike (cycle 11) is the last needed word
    full, early = event_floor(sizes, input_bins, spikes, latency=latency)
    assert (full.tolist(), early.tolist()) == ([15], [15])  # full: its last word (12) + 2, and not before early
    plan = schedule(sizes, None, input_bins, spikes)
    assert plan.pipeline_floor("early").tolist() == [15] and plan.cycles("early")[0] >= 15


def test_pipeline_latency_follows_the_core_configuration():
    """Stage R (ROMs in block RAM) adds a cycle to a layer's hand-over or to the decision."""
    assert pipeline_latency([784, 600, 10], None, None) == FloorLatency(3, (8,), 5, 2)
    assert pipeline_latency([784, 600, 10], None, "4,16") == FloorLatency(3, (8,), 4, 2)  # 38 x 10 bits: logic
    assert pipeline_latency([784, 600, 300, 10], None, None).handover == (8, 8)


def test_early_floor_ignores_events_after_the_first_output_spike():
    sizes, input_bins, spikes = _case()
    spikes[1][0] = [9, 5]  # t* = 5: only the bin-4 hidden spike (cycle 3) is needed
    full, early = event_floor(sizes, input_bins, spikes)
    assert (full.tolist(), early.tolist()) == ([5], [4])


def test_floor_drops_what_a_hidden_layer_never_sees():
    """Bin-255 inputs are skipped in front of a hidden layer, so they cost the floor nothing."""
    sizes, input_bins, spikes = _case()
    padded = np.concatenate([input_bins, np.full((1, 4), 255)], axis=1)
    spikes = [np.concatenate([spikes[0], np.full((1, 4), NEVER, np.int16)], axis=1), spikes[1]]
    sizes = [7, 7, 2]
    assert event_floor(sizes, padded, spikes)[0].tolist() == [5]


def test_floor_rejects_a_bad_events_per_cycle():
    sizes, input_bins, spikes = _case()
    with pytest.raises(ValueError, match="events per cycle"):
        event_floor(sizes, input_bins, spikes, events_per_cycle=(1, 1, 1))
    with pytest.raises(ValueError, match="events per cycle"):
        event_floor(sizes, input_bins, spikes, events_per_cycle=0)


@pytest.mark.parametrize("seed", range(6))
def test_no_schedule_of_the_core_beats_the_floor(seed):
    """On random conformance networks and every lane choice, the core's cycles (one event per cycle per
    layer) are at least the pipeline floor, and that at least the event floor; more events per cycle never
    raise the floor."""
    rng = np.random.default_rng(seed)
    network, pixels = random_case(rng, n_images=8)
    ref = reference.run(network, pixels)
    bins = encode_pixels(pixels)
    sizes_out = [layer.n_out for layer in network.layers]
    random_lanes = [int(rng.integers(1, n + 1)) for n in sizes_out]
    random_events = [int(rng.integers(1, n + 1)) for n in network.sizes[:-1]]
    for lanes, events in ((1, None), (None, None), (random_lanes, None), (None, random_events), (1, random_events)):
        plan = schedule(network.sizes, parse_lanes(lanes, sizes_out), bins, ref.spikes, events)
        for mode in ("full", "early"):
            assert (plan.cycles(mode) >= plan.pipeline_floor(mode)).all(), (lanes, mode)
            assert (plan.pipeline_floor(mode) >= plan.floor(mode)).all(), (lanes, mode)
            assert (plan.floor(mode) >= 1).all()
    one = event_floor(network.sizes, bins, ref.spikes)
    four = event_floor(network.sizes, bins, ref.spikes, events_per_cycle=4)
    assert (four[0] <= one[0]).all() and (four[1] <= one[1]).all()
    assert (one[1] <= one[0]).all()  # early never needs more than full
