"""Hand-computed cases for every rule of docs/numerics.md, and properties of the golden model."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeforge.image import ChipImage, CoreConfig, CoreImage
from spikeforge.sim.golden import GoldenChip, GoldenCore, decay, simulate
from spikeforge.sim.prng import generator_spikes

HALF = 1 << 15


def core(n=4, a=4, **kw):
    cfg = CoreConfig(n_neurons=n, n_axons=a, lanes=1, n_profiles=2,
                     **{k: kw.pop(k) for k in ("delay_bits", "weight_bits", "plastic") if k in kw})
    im = CoreImage(cfg)
    im.threshold[:] = 1000
    for k, v in kw.items():
        setattr(im, k, v)
    return im


def test_decay_rounds_half_up():
    assert decay(np.int64(3), 32768) == 2          # 1.5 -> 2
    assert decay(np.int64(-3), 32768) == -1        # -1.5 -> -1 (half up)
    assert decay(np.int64(400), 50000) == 305      # 305.18
    assert decay(np.int64(1), 65535) == 1          # the stall band at the slowest decay


def test_first_spike_step_with_bias():
    # alpha_v = 1/2, bias 100, threshold 150: v = 100, 150 (not > 150), 175 -> spike at step 2.
    im = core(alpha_v=np.full(2, 32768), bias=np.full(4, 100), threshold=np.full(2, 150))
    g = GoldenCore(im)
    fired = [bool(g.step()[0]) for _ in range(3)]
    assert fired == [False, False, True]
    assert g.image.v[0] == 0                        # reset to v_reset = 0


def test_refractory_holds_v_and_counts_down():
    im = core(bias=np.full(4, 600), threshold=np.full(2, 1000), refractory=np.full(2, 3),
              alpha_v=np.full(2, 65535))
    g = GoldenCore(im)
    spikes, vs, refs = [], [], []
    for _ in range(8):
        spikes.append(bool(g.step()[0]))
        vs.append(int(g.image.v[0]))
        refs.append(int(g.image.ref[0]))
    # v: 600, then decay(600)+600 = 1200 > 1000 -> spike, v=0, ref=3; held 3 steps; 600; 1200 spike
    assert spikes == [False, True, False, False, False, False, True, False]
    assert vs[:6] == [600, 0, 0, 0, 0, 600]
    assert refs[:6] == [0, 3, 2, 1, 0, 0]


def test_reset_modes():
    im = core(bias=np.full(4, 1300), threshold=np.full(2, 1000), alpha_v=np.zeros(2),
              reset_mode=np.array([0, 1]), v_reset=np.array([-50, 0]), profile=[0, 1, 0, 1])
    g = GoldenCore(im)
    assert g.step().tolist() == [True] * 4
    assert g.image.v.tolist() == [-50, 300, -50, 300]


@pytest.mark.parametrize("d", range(16))
def test_each_delay_reaches_the_neuron_d_steps_later(d):
    im = core(delay_bits=4, weight=np.full((4, 4), 0), alpha_i=np.zeros(2), weight_exp=3)
    im.weight[2, 1] = 5
    im.delay[2, 1] = d
    g = GoldenCore(im)
    currents = []
    for t in range(18):
        g.step([2] if t == 0 else None)
        currents.append(int(g.image.i[1]))
    assert currents == [40 if t == d else 0 for t in range(18)]


def test_recurrent_route_arrives_next_step():
    im = core(bias=np.array([2000, 0, 0, 0]), alpha_i=np.zeros(2), alpha_v=np.zeros(2),
              weight_exp=0, refractory=np.full(2, 15))
    im.weight[3, 2] = 7                      # neuron 0 -> axon 3 -> neuron 2
    chip = GoldenChip(ChipImage([im], routes=[[0, 0, 0, 3]]))
    out0 = chip.step()
    assert out0[0].tolist() == [True, False, False, False]
    assert chip.cores[0].image.i[2] == 0
    chip.step()
    assert chip.cores[0].image.i[2] == 7


def stdp_core(**kw):
    base = dict(learn=1, x_inc=1 << 14, y_inc=1 << 14, alpha_x=65535, alpha_y=65535,
                w_min=-128, w_max=127)
    im = core(plastic=True, **{**base, **kw})
    im.mask[:] = 1
    return im


def test_potentiation_exact_value():
    # Pre and post in the same step: x = x_inc = 2^14; a_plus * x = 3 * 2^22 -> +3 exactly.
    im = stdp_core(a_plus=768, bias=np.array([5000, 0, 0, 0]), weight=np.full((4, 4), 10))
    g = GoldenCore(im)
    assert g.step([1])[0]
    assert g.image.weight[:, 0].tolist() == [10, 13, 10, 10]   # only axon 1 has a trace
    assert g.image.weight[:, 1:].tolist() == [[10] * 3] * 4      # non-spiking columns untouched


def test_depression_exact_value():
    # Post spike at step 0 (y = 2^14); pre spike at step 1 reads decay(y) = 2^14:
    # a_minus * y = 2 * 2^22 -> -2 exactly, for every neuron that spiked.
    im = stdp_core(a_minus=512, bias=np.array([5000, 0, 0, 0]), weight=np.full((4, 4), 10),
                   refractory=np.full(2, 15))
    g = GoldenCore(im)
    g.step()
    assert decay(g.image.y[0], 65535) == 1 << 14
    g.step([2])
    assert g.image.weight[2].tolist() == [8, 10, 10, 10]


def test_clipping_and_mask():
    im = stdp_core(a_plus=65535, a_minus=65535, bias=np.array([5000, 0, 0, 0]),
                   weight=np.full((4, 4), 120), refractory=np.full(2, 15))
    im.mask[3, 0] = 0
    im.weight[0, 0] = -125
    g = GoldenCore(im)
    g.step([0, 1, 2, 3])      # large potentiation on column 0
    assert g.image.weight[1, 0] == 127 and g.image.weight[2, 0] == 127
    assert g.image.weight[3, 0] == 120                  # mask 0: untouched
    g.step([0])                                          # large depression on row 0 (y[0] > 0)
    assert g.image.weight[0, 0] == -128                  # clipped at w_min


def test_stochastic_rounding_is_unbiased():
    # a_plus * x = 0.3 * 2^22: each potentiation is 0 or 1 with P(1) = 0.3.
    n, a = 64, 256
    cfg = CoreConfig(n_neurons=n, n_axons=a, lanes=1, n_profiles=1)
    im = CoreImage(cfg, learn=1, x_inc=1 << 14, alpha_x=65535, w_min=-128, w_max=127,
                   a_plus=round(0.3 * 256), bias=np.full(n, 5000), refractory=np.full(1, 15))
    im.threshold[:] = 1000
    im.mask[:] = 1
    g = GoldenCore(im)
    g.step(np.arange(a))
    dw = g.image.weight
    p = 77 / 256   # the exact expectation of a_plus * 2^14 / 2^22
    assert set(np.unique(dw)) <= {0, 1}
    # binomial: n*a = 16384 draws, 5 sigma bound
    assert abs(dw.mean() - p) < 5 * np.sqrt(p * (1 - p) / dw.size)


def test_trace_saturates_and_nearest_resets():
    im = stdp_core(x_inc=40000, alpha_x=65535)
    g = GoldenCore(im)
    g.step([0])
    g.step([0])
    assert g.image.x[0] == 65535                          # usat16, all-to-all
    im2 = stdp_core(x_inc=40000, alpha_x=65535, trace_mode=1)
    g2 = GoldenCore(im2)
    g2.step([0])
    g2.step([0])
    assert g2.image.x[0] == 40000                         # nearest: set, not added


def test_saturation_at_both_ends():
    cfg = CoreConfig(n_neurons=2, n_axons=1024, lanes=1, n_profiles=1, plastic=False)
    im = CoreImage(cfg, weight_exp=15)
    im.threshold[:] = (1 << 23) - 1
    im.alpha_i[:] = im.alpha_v[:] = 65535
    im.weight[:, 0] = 127
    im.weight[:, 1] = -128
    g = GoldenCore(im)
    g.step(np.arange(1024))
    assert g.image.i.tolist() == [(1 << 23) - 1, -(1 << 23)]
    assert g.image.v.tolist() == [(1 << 23) - 1, -(1 << 23)]
    assert g.image.slots.max() == 0                        # consumed
    g.image.validate()


def test_generators_fire_at_their_rate():
    prob = np.array([0, 65535, 6554, 32768])
    fired = np.array([generator_spikes(99, prob, t) for t in range(4000)])
    assert not fired[:, 0].any()
    assert fired[:, 1].mean() > 0.999
    assert abs(fired[:, 2].mean() - 0.1) < 5 * np.sqrt(0.09 / 4000)
    assert abs(fired[:, 3].mean() - 0.5) < 5 * np.sqrt(0.25 / 4000)


def test_simulate_trace_and_probes():
    im = core(bias=np.array([600, 0, 0, 0]), alpha_v=np.full(2, 65535))
    tr = simulate(im, 4, probes=[(0, 0, "v")])
    assert tr.spikes.tolist() == [[1, 0, 0], [3, 0, 0]]
    assert tr.probes[:, 0].tolist() == [600, 0, 600, 0]


def test_bad_input_is_named():
    g = GoldenCore(core())
    with pytest.raises(ValueError, match="input axon 7 is out of range"):
        g.step([7])
    with pytest.raises(ValueError, match="probe variable 'q'"):
        simulate(core(), 1, probes=[(0, 0, "q")])


# ---- properties -------------------------------------------------------------------------

def random_image(seed, plastic=True, learn=True):
    rng = np.random.default_rng(seed)
    n, a = 2 ** rng.integers(1, 6), 2 ** rng.integers(1, 6)
    cfg = CoreConfig(n_neurons=int(n), n_axons=int(a), delay_bits=int(rng.integers(0, 5)),
                     weight_bits=int(rng.integers(2, 10)), lanes=1, n_profiles=4,
                     plastic=plastic)
    wb = cfg.weight_bits
    im = CoreImage(cfg)
    im.weight = rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), (a, n))
    im.delay = rng.integers(0, cfg.n_slots, (a, n))
    im.profile = rng.integers(0, 4, n)
    im.bias = rng.integers(-3000, 3000, n)
    im.threshold = rng.integers(0, 1 << 23, 4) >> rng.integers(0, 20, 4)
    im.v_reset = rng.integers(-(1 << 20), 1 << 20, 4)
    im.alpha_v = rng.integers(0, 1 << 16, 4)
    im.alpha_i = rng.integers(0, 1 << 16, 4)
    im.refractory = rng.integers(0, 16, 4)
    im.reset_mode = rng.integers(0, 2, 4)
    im.weight_exp = int(rng.integers(0, 16))
    im.gen_prob = rng.integers(0, 1 << 14, a)
    im.gen_seed, im.stdp_seed = (int(s) for s in rng.integers(0, 1 << 32, 2))
    if plastic:
        im.mask = rng.integers(0, 2, (a, n))
        im.learn = int(learn)
        im.alpha_x, im.alpha_y, im.x_inc, im.y_inc = (int(s) for s in
                                                      rng.integers(0, 1 << 16, 4))
        im.a_plus, im.a_minus = (int(s) for s in rng.integers(0, 1 << 16, 2))
        lo, hi = sorted(rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), 2))
        im.w_min, im.w_max = int(lo), int(hi)
        im.trace_mode = int(rng.integers(0, 2))
    return im.validate(), rng


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.booleans())
def test_no_value_ever_leaves_its_range(seed, learn):
    im, rng = random_image(seed, learn=learn)
    g = GoldenCore(im)
    for _ in range(30):
        g.step(rng.random(im.config.n_axons) < 0.3)
        g.image.validate()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2 ** 32 - 1))
def test_learning_off_leaves_weights_untouched(seed):
    im, rng = random_image(seed, learn=False)
    g = GoldenCore(im)
    for _ in range(30):
        g.step(rng.random(im.config.n_axons) < 0.5)
    assert np.array_equal(g.image.weight, im.weight)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2 ** 32 - 1))
def test_neuron_without_input_or_bias_never_fires(seed):
    im, _ = random_image(seed)
    im.bias[:] = 0
    im.gen_prob[:] = 0
    rng = np.random.default_rng(seed)
    im.v = np.minimum(rng.integers(-(1 << 23), 1 << 23, im.config.n_neurons),
                      im.threshold[im.profile])
    g = GoldenCore(im)
    for _ in range(50):
        assert not g.step().any()
