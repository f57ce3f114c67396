"""The comparison harness itself: it must name the first divergence, with both values.

These run without Verilator: the simulator output is made from the golden model and then
corrupted in one place.
"""

import numpy as np
from compare import _check, _plan
from coresim import Result
from netgen import VARIANTS, first_difference, random_image

from spikeforge.image import CoreConfig
from spikeforge.memmap import MemoryMap
from spikeforge.sim.golden import GoldenCore

CONFIG = CoreConfig(n_neurons=8, n_axons=4, weight_bits=4, delay_bits=1, lanes=2,
                    plastic=True, n_profiles=2)


def _fake_output(plan, mm, corrupt_step=None, corrupt_neuron=None):
    """The player's output text for ``plan`` as a bit-exact core would write it."""
    golden = GoldenCore(plan.image)
    lines = [f"M {plan.seed:x}"]
    lines += [f"R {int(w):x}" for w in _words(mm, plan.image)]
    for t, events in enumerate(plan.inputs):
        if t == plan.change_at:
            for name, value in plan.change.items():
                setattr(golden.image, name, value)
        spikes = golden.step(events)
        if t == corrupt_step:
            spikes[corrupt_neuron] ^= True
        lines += [f"S {n:x}" for n in np.flatnonzero(spikes)]
        lines.append(f"D {10:x}")      # clocks of the step, in hex like every value
        if t + 1 in plan.checkpoints:
            lines += [f"R {int(w):x}" for w in _words(mm, golden.image)]
    return "\n".join(lines) + "\n"


def _words(mm, image):
    addrs, words = mm.image_writes(image)
    by_addr = dict(zip(addrs, words, strict=True))
    return [by_addr[a] for a in mm.read_addresses()]


def test_agreeing_output_passes_and_counts_cycles():
    mm = MemoryMap(CONFIG)
    plan = _plan(CONFIG, 3, 20, [10, 20], None)
    seg = Result(_fake_output(plan, mm)).by_mark()[3]
    cycles = []
    assert _check(CONFIG, mm, plan, seg, cycles) is None
    assert cycles == [10] * 20


def test_first_spike_divergence_is_named():
    mm = MemoryMap(CONFIG)
    plan = _plan(CONFIG, 4, 20, [10, 20], None)
    seg = Result(_fake_output(plan, mm, corrupt_step=7, corrupt_neuron=5)).by_mark()[4]
    msg = _check(CONFIG, mm, plan, seg, [])
    assert msg.startswith("step 7 ") and "spike of neuron 5" in msg
    assert "rtl" in msg and "golden" in msg


def test_first_state_difference_names_variable_index_and_values():
    image, _, _ = random_image(CONFIG, 5)
    other = image.copy()
    other.weight[2, 6] = image.weight[2, 6] + 1 if image.weight[2, 6] < 7 else 6
    assert first_difference(other, image) == (
        f"weight[2, 6]: rtl {int(other.weight[2, 6])}, golden {int(image.weight[2, 6])}")
    other = image.copy()
    other.a_plus = image.a_plus ^ 1
    assert first_difference(other, image).startswith("register a_plus: rtl ")
    assert first_difference(image.copy(), image) is None


def test_seeds_cycle_through_every_variant():
    seen = {random_image(CONFIG, seed)[1] for seed in range(len(VARIANTS))}
    assert seen == set(VARIANTS)
