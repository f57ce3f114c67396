"""Unit tests of the float reference model (``spikeforge.sim.reference``) on hand-built cores.

Each test states the closed form or the exact float it expects; parameters are chosen as binary
fractions wherever a result is compared with ``==``, so the expected value is exact in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from spikeforge.image import ChipImage, CoreConfig, CoreImage
from spikeforge.sim.golden import simulate
from spikeforge.sim.prng import generator_spikes
from spikeforge.sim.reference import (
    FloatChip,
    FloatCore,
    ReferenceChip,
    ReferenceCore,
    simulate_reference,
)
from spikeforge.sim.trace import Trace

CFG = CoreConfig(n_neurons=8, n_axons=8, weight_bits=8, delay_bits=2, lanes=1, plastic=True,
                 n_profiles=2)


def _core(**kw):
    """A core with one profile of no decay, threshold 1, no bias, no synapses, unless given."""
    base = dict(config=CFG, threshold=[1.0, 1.0], alpha_v=[1.0, 1.0], alpha_i=[0.0, 0.0])
    base.update(kw)
    return FloatCore(**base)


def _spike_steps(trace, neuron, core=0):
    s = trace.spikes
    return s[(s[:, 1] == core) & (s[:, 2] == neuron), 0]


# ----------------------------------------------------------------------------- leaky integration

def test_first_spike_of_constant_bias_matches_closed_form():
    # v_k = b (1 - a^k) / (1 - a) after k steps from rest; the first spike is in the step that
    # makes k the smallest integer with v_k > theta: k* = floor(ln(1 - theta (1-a)/b) / ln a) + 1.
    # After a reset to 0 and r refractory steps the same climb repeats: period k* + r.
    a, theta = 0.9, 1.0
    bias = np.array([0.11, 0.13, 0.17, 0.2, 0.25, 0.31, 0.5, 1.5])
    refractory = 3
    fc = _core(alpha_v=[a, a], threshold=[theta, theta], bias=bias,
               refractory=[refractory, refractory])
    n_steps = 120
    trace = simulate_reference(fc, n_steps)
    for n, b in enumerate(bias):
        k_star = math.floor(math.log(1 - theta * (1 - a) / b) / math.log(a)) + 1
        # the closed form needs no tie at the threshold: keep v well away from it
        assert abs(b * (1 - a ** k_star) / (1 - a) - theta) > 1e-9
        expected = np.arange(k_star - 1, n_steps, k_star + refractory)
        np.testing.assert_array_equal(_spike_steps(trace, n), expected)


def test_bias_below_rheobase_never_spikes():
    # v tends to b / (1 - a) = 0.95 < theta = 1: no spike, ever; v approaches the fixed point.
    fc = _core(alpha_v=[0.9, 0.9], bias=np.full(8, 0.095))
    trace = simulate_reference(fc, 400, probes=[(0, 0, "v")])
    assert trace.spike_count() == 0
    assert trace.probes[-1, 0] == pytest.approx(0.95, rel=1e-12)


def test_current_decays_by_alpha_i_and_adds_slot():
    # One event of weight 1 at step 0 (delay 0) into a current with alpha_i = 0.5: i = 0.5^t.
    w = np.zeros((8, 8))
    w[0, 0] = 1.0
    fc = _core(alpha_i=[0.5, 0.5], alpha_v=[0.0, 0.0], threshold=[100.0, 100.0], weight=w)
    trace = simulate_reference(fc, 6, inputs=[(0, 0, 0)], probes=[(0, 0, "i"), (0, 0, "v")])
    np.testing.assert_array_equal(trace.probes[:, 0], 0.5 ** np.arange(6))
    np.testing.assert_array_equal(trace.probes[:, 1], 0.5 ** np.arange(6))   # alpha_v = 0


# ----------------------------------------------------------------------------- reset and refractory

def test_reset_modes_exact_values():
    # No decay, bias 0.375, threshold 1: v = 0.375, 0.75, 1.125 -> spike at step 2.
    # Mode 0 resets to v_reset = -0.5; mode 1 subtracts the threshold: 0.125, then 0.5, 0.875,
    # 1.25 -> spike at step 5 -> 0.25.
    fc = _core(profile=[0, 1] + [0] * 6, bias=np.full(8, 0.375), v_reset=[-0.5, -0.5],
               reset_mode=[0, 1])
    trace = simulate_reference(fc, 6, probes=[(0, 0, "v"), (0, 1, "v")])
    np.testing.assert_array_equal(
        trace.probes[:, 0], [0.375, 0.75, -0.5, -0.125, 0.25, 0.625])
    np.testing.assert_array_equal(
        trace.probes[:, 1], [0.375, 0.75, 0.125, 0.5, 0.875, 0.25])
    np.testing.assert_array_equal(_spike_steps(trace, 0), [2])
    np.testing.assert_array_equal(_spike_steps(trace, 1), [2, 5])


def test_refractory_holds_v_while_current_integrates():
    # Neuron 0 spikes at step 0 (bias 2 > 1) and is refractory for 4 steps: v stays at v_reset,
    # ref counts 4, 3, 2, 1, 0, while an input at step 2 still enters i (alpha_i = 0.5).
    w = np.zeros((8, 8))
    w[0, 0] = 0.25
    fc = _core(bias=np.array([2.0] + [0.0] * 7), v_reset=[0.0, 0.0], refractory=[4, 4],
               alpha_i=[0.5, 0.5], alpha_v=[0.0, 0.0], weight=w)
    trace = simulate_reference(fc, 7, inputs=[(2, 0, 0)],
                               probes=[(0, 0, "v"), (0, 0, "ref"), (0, 0, "i")])
    v, ref, i = trace.probes.T
    np.testing.assert_array_equal(ref, [4, 3, 2, 1, 0, 4, 3])
    np.testing.assert_array_equal(v[:5], [0.0] * 5)
    np.testing.assert_array_equal(i, [0.0, 0.0, 0.25, 0.125, 0.0625, 0.03125, 0.015625])
    # step 5: v = 0 * v + i + bias = 2.03125 > 1 -> the second spike, 5 steps after the first
    np.testing.assert_array_equal(_spike_steps(trace, 0), [0, 5])


# ----------------------------------------------------------------------------- delays and routing

def test_delays_reach_the_neuron_d_steps_later():
    # Axon 0 to neuron n with delay n (0..3): an event at step 1 enters i at step 1 + n.
    w = np.zeros((8, 8))
    w[0, :4] = 1.0
    delay = np.zeros((8, 8), dtype=np.int64)
    delay[0, :4] = np.arange(4)
    fc = _core(weight=w, delay=delay, threshold=[10.0, 10.0], alpha_v=[0.0, 0.0])
    trace = simulate_reference(fc, 8, inputs=[(1, 0, 0)],
                               probes=[(0, n, "i") for n in range(4)])
    for n in range(4):
        expected = np.zeros(8)
        expected[1 + n] = 1.0
        np.testing.assert_array_equal(trace.probes[:, n], expected)


def test_routed_spike_arrives_one_step_later_plus_delay():
    # Core 0 neuron 0 spikes at step 0 (bias); the route sends it to core 1 axon 3, whose
    # synapse to neuron 2 has delay 2: i of core 1 neuron 2 jumps at step 0 + 1 + 2 = 3.
    src = _core(bias=np.array([1.5] + [0.0] * 7), refractory=[15, 15], v_reset=[0.0, 0.0])
    w = np.zeros((8, 8))
    w[3, 2] = 0.5
    d = np.zeros((8, 8), dtype=np.int64)
    d[3, 2] = 2
    dst = _core(weight=w, delay=d, threshold=[10.0, 10.0])
    chip = FloatChip([src, dst], routes=[[0, 0, 1, 3]])
    trace = simulate_reference(chip, 6, probes=[(1, 2, "i")])
    np.testing.assert_array_equal(trace.probes[:, 0], [0, 0, 0, 0.5, 0, 0])
    np.testing.assert_array_equal(_spike_steps(trace, 0, core=0), [0])


# ----------------------------------------------------------------------------- STDP

def _stdp_core(mode=0, learn=1, w0=0.5, **kw):
    """Axon 0 -> neuron 0 plastic (w0); axon 1 -> neuron 0 a static driver far over threshold,
    so neuron 0 spikes exactly in the steps axon 1 fires (alpha_i = alpha_v = 0, no bias)."""
    w = np.zeros((8, 8))
    w[0, 0], w[1, 0] = w0, 10.0
    mask = np.zeros((8, 8), dtype=np.int64)
    mask[0, 0] = 1
    base = dict(weight=w, mask=mask, learn=learn, trace_mode=mode, alpha_x=0.5, alpha_y=0.25,
                a_plus=0.125, a_minus=0.0625, w_min=0.0, w_max=1.0, alpha_v=[0.0, 0.0],
                alpha_i=[0.0, 0.0])
    base.update(kw)
    return _core(**base)


def _weight_after(fc, inputs, n_steps):
    chip = ReferenceChip(fc)
    chip.run(n_steps, inputs)
    return chip.cores[0].core.weight[0, 0], chip.cores[0].core


def test_stdp_pre_before_post_potentiates_by_a_plus_x():
    # pre at 2, post at 5: x = 1 at step 2, decayed by 0.5 in steps 3, 4, 5 -> 0.125.
    w, core = _weight_after(_stdp_core(), [(2, 0, 0), (5, 0, 1)], 7)
    assert w == 0.5 + 0.125 * 0.125
    assert core.x[0] == 0.5 ** 4          # one more decay, in step 6


def test_stdp_post_before_pre_depresses_by_a_minus_decayed_y():
    # post at 2 (y = 1), pre at 6: the depression uses y decayed to step 6 (four decays), 0.25^4.
    w, core = _weight_after(_stdp_core(), [(2, 0, 1), (6, 0, 0)], 7)
    assert w == 0.5 - 0.0625 * 0.25 ** 4


def test_stdp_same_step_counts_as_pre_before_post():
    # pre and post both at step 3: potentiation with x = 1 and no depression (y was 0 before).
    w, _ = _weight_after(_stdp_core(), [(3, 0, 0), (3, 0, 1)], 4)
    assert w == 0.5 + 0.125


def test_stdp_all_to_all_adds_traces_nearest_resets_them():
    # pre at 1 and 2, post at 3: x(3) = (0.5 + 1) * 0.5 = 0.75 all-to-all, 0.5 nearest.
    inputs = [(1, 0, 0), (2, 0, 0), (3, 0, 1)]
    w_all, _ = _weight_after(_stdp_core(mode=0), inputs, 4)
    w_near, _ = _weight_after(_stdp_core(mode=1), inputs, 4)
    assert w_all == 0.5 + 0.125 * 0.75
    assert w_near == 0.5 + 0.125 * 0.5


def test_stdp_clips_to_the_weight_bounds():
    # From 0.95 a potentiation of 0.125 stops at w_max = 1; from 0.01 a depression stops at 0.
    w, _ = _weight_after(_stdp_core(w0=0.95), [(3, 0, 0), (3, 0, 1)], 4)
    assert w == 1.0
    w, _ = _weight_after(_stdp_core(w0=0.01, a_minus=0.5), [(2, 0, 1), (3, 0, 0)], 4)
    assert w == 0.0


def test_learning_off_updates_traces_but_not_weights():
    w, core = _weight_after(_stdp_core(learn=0), [(2, 0, 0), (5, 0, 1), (6, 0, 0)], 7)
    assert w == 0.5
    # all-to-all: x = 0.5^4 (pre at 2, four decays) + 1 (pre at 6); y = 0.25 (post at 5)
    assert core.x[0] == 1.0 + 0.5 ** 4 and core.y[0] == 0.25


def test_delivered_weight_is_the_one_read_before_depression():
    # post at 1, then pre at 2: the slot receives the old weight 0.5 although depression lowers
    # the stored weight in the same step.
    fc = _stdp_core(a_minus=0.25)
    trace = simulate_reference(fc, 3, inputs=[(1, 0, 1), (2, 0, 0)], probes=[(0, 0, "i")])
    assert trace.probes[2, 0] == 0.5


def test_static_synapses_never_learn():
    # mask 0 on the driver synapse: it keeps its weight through many pre/post pairs.
    inputs = [(t, 0, a) for t in range(0, 20, 3) for a in (0, 1)]
    chip = ReferenceChip(_stdp_core())
    chip.run(20, inputs)
    assert chip.cores[0].core.weight[1, 0] == 10.0


# ----------------------------------------------------------------------------- inputs and API

def test_generators_fire_the_golden_models_spikes():
    # alpha_i = 0, weight 1 from axon n to neuron n: i[n] is 1 exactly when generator n fired.
    gen_prob = np.array([0, 1000, 8000, 20000, 40000, 60000, 65535, 30000])
    fc = _core(weight=np.eye(8), gen_prob=gen_prob, gen_seed=1234, threshold=[1e9, 1e9],
               step=17)
    core = ReferenceCore(fc)
    for t in range(17, 217):
        core.step()
        fired = generator_spikes(1234, gen_prob, t)
        np.testing.assert_array_equal(core.core.i, fired.astype(float))


def _integer_pair(rng, reset_mode):
    """A random 2-core chip whose arithmetic is exact in both models (alpha_v = alpha_i = 0, no
    learning): the golden image and the float chip with the same numbers."""
    cfg = CoreConfig(n_neurons=16, n_axons=16, weight_bits=8, delay_bits=2, lanes=1,
                     plastic=False, n_profiles=2)
    images, floats = [], []
    for _ in range(2):
        kw = dict(
            weight=rng.integers(-40, 90, (16, 16)) * (rng.random((16, 16)) < 0.4),
            delay=rng.integers(0, 4, (16, 16)),
            bias=rng.integers(-5, 30, 16), profile=rng.integers(0, 2, 16),
            threshold=[100, 60], v_reset=[-20, 5], refractory=[2, 0],
            reset_mode=reset_mode, gen_prob=rng.integers(0, 20000, 16), gen_seed=99, step=5)
        images.append(CoreImage(config=cfg, **kw))
        floats.append(FloatCore(config=cfg, alpha_v=[0.0, 0.0], alpha_i=[0.0, 0.0], **kw))
    routes = [[c, n, 1 - c, n] for c in range(2) for n in range(0, 16, 2)]
    return ChipImage(images, routes), FloatChip(floats, routes)


@pytest.mark.parametrize("reset_mode", [[0, 0], [1, 1], [0, 1]])
def test_exact_arithmetic_gives_the_golden_spikes(reset_mode):
    # With alpha = 0 and integer weights nothing rounds, so any difference from the golden model
    # would be a difference of order or structure (inputs, delays, routing, refractory, reset).
    chip, fchip = _integer_pair(np.random.default_rng(7), reset_mode)
    inputs = [(t, c, a) for t in range(5, 105, 3) for c in range(2) for a in (1, 5, 9)]
    probes = [(c, n, var) for c in range(2) for n in (0, 3, 7) for var in ("v", "i", "ref")]
    g = simulate(chip, 100, inputs, probes)
    r = simulate_reference(fchip, 100, inputs, probes)
    assert g.spike_count() > 50
    np.testing.assert_array_equal(r.spikes, g.spikes)
    np.testing.assert_array_equal(r.probes, g.probes)


def test_trace_layout_and_host_out():
    fc = _core(bias=np.full(8, 0.6))
    chip = FloatChip([fc], host_out=[np.arange(8) < 4])
    trace = simulate_reference(chip, 4, probes=[(0, 1, "v")])
    assert isinstance(trace, Trace)
    assert trace.first_step == 0 and trace.n_steps == 4
    assert set(trace.spikes[:, 2]) == {0, 1, 2, 3}   # neurons 4..7 spike but are not sent out
    assert trace.probes.shape == (4, 1)
    assert trace.meta["engine"] == "reference"


def test_reference_core_does_not_alias_its_input():
    fc = _core(bias=np.full(8, 0.6))
    ReferenceCore(fc).step()
    assert not fc.v.any() and fc.step == 0


@pytest.mark.parametrize("bad, message", [
    (dict(probes=[(0, 0, "q")]), "probe variable 'q' is not one of v, i, ref, y"),
    (dict(probes=[(1, 0, "v")]), "probe core 1 is out of range"),
    (dict(probes=[(0, 8, "v")]), "probe neuron 8 is out of range"),
    (dict(inputs=[(0, 0, 8)]), "input axon 8 is out of range"),
])
def test_bad_arguments_are_named(bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        simulate_reference(_core(), 2, **bad)


def test_bad_route_is_named():
    with pytest.raises(ValueError, match="route destination axon 9 is out of range"):
        ReferenceChip(FloatChip([_core()], routes=[[0, 0, 0, 9]]))
    with pytest.raises(TypeError, match="ReferenceCore needs a FloatCore"):
        ReferenceCore(CoreImage(config=CFG))
