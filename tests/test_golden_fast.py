"""The Numba golden kernel against the NumPy golden model, bit for bit, every step."""

import numpy as np
import pytest

from spikeforge.image import ChipImage, CoreConfig, CoreImage
from spikeforge.sim.golden import GoldenChip, simulate
from spikeforge.sim.golden_fast import FastChip, simulate_fast
from spikeforge.sim.prng import generator_spikes


def random_chip(seed, *, n=64, a=128, plastic=True, learn=True, delay_bits=3, weight_bits=8,
                density=0.3, trace_mode=0, saturate=False):
    """A random one-core chip: recurrent routes, generators, both reset modes, plastic synapses.

    ``saturate`` picks weights, weight_exp and bias large enough that ``i`` and ``v`` hit the
    24-bit rails and traces hit 16 bits.
    """
    rng = np.random.default_rng(seed)
    cfg = CoreConfig(n_neurons=n, n_axons=a, weight_bits=weight_bits, delay_bits=delay_bits,
                     lanes=4, plastic=plastic, n_profiles=4)
    im = CoreImage(cfg)
    wmax = (1 << (weight_bits - 1)) - 1
    exists = rng.random((a, n)) < density
    im.weight = np.where(exists, rng.integers(-wmax // 2, wmax + 1, (a, n)), 0)
    im.delay = rng.integers(0, cfg.n_slots, (a, n))
    if plastic:
        im.mask = (exists & (rng.random((a, n)) < 0.7)).astype(np.int64)
        im.mask[0, :] = 1                   # a masked row with zero weights: must stay listed
        im.weight[0, :] = 0
        im.learn = int(learn)
        im.trace_mode = trace_mode
        im.alpha_x, im.alpha_y = int(rng.integers(40000, 65000)), int(rng.integers(40000, 65000))
        im.x_inc = int(rng.integers(1 << 12, 1 << 16))
        im.y_inc = int(rng.integers(1 << 12, 1 << 16))
        im.a_plus, im.a_minus = int(rng.integers(0, 1 << 16)), int(rng.integers(0, 1 << 16))
        im.w_min, im.w_max = -wmax // 2, wmax
        im.x = rng.integers(0, 1 << 16, a)
        im.y = rng.integers(0, 1 << 16, n)
    im.weight_exp = 15 if saturate else int(rng.integers(4, 10))
    scale = 1 << im.weight_exp
    im.profile = rng.integers(0, 4, n)
    im.threshold = rng.integers(20 * scale, 80 * scale, 4)
    if saturate:
        im.threshold[0] = (1 << 23) - 1
    im.v_reset = rng.integers(-10 * scale, 5 * scale, 4)
    im.alpha_v = rng.integers(50000, 65536, 4)
    im.alpha_i = rng.integers(30000, 65000, 4)
    im.refractory = rng.integers(0, 5, 4)
    im.reset_mode = np.array([0, 1, 0, 1])
    im.bias = rng.integers(-2 * scale, 6 * scale, n)
    if saturate:
        im.bias[: n // 4] = (1 << 23) - 1
        im.bias[n // 4: n // 2] = -(1 << 23)
    im.v = rng.integers(-scale, 30 * scale, n)
    im.i = rng.integers(-scale, scale, n)
    im.gen_prob = np.where(np.arange(a) >= a - a // 4, rng.integers(0, 1 << 14, a), 0)
    im.gen_seed = int(rng.integers(0, 1 << 32))
    im.stdp_seed = int(rng.integers(0, 1 << 32))
    im.step = int(rng.integers(0, 1 << 32)) if seed % 3 == 0 else 0
    # Neurons 0..n-1 route to axons 0..n-1 (recurrence); a few route twice.
    src = np.concatenate([np.arange(n), rng.integers(0, n, 8)])
    dst = np.concatenate([np.arange(n), rng.integers(n, a - a // 4, 8)])
    routes = np.column_stack([np.zeros_like(src), src, np.zeros_like(src), dst])
    host_out = [rng.random(n) < 0.8]
    return ChipImage([im.validate()], routes, host_out)


def external(seed, n_steps, a):
    rng = np.random.default_rng(seed + 1000)
    return [rng.integers(0, a, rng.integers(0, 6)) for _ in range(n_steps)]


def assert_same_images(got, want, step):
    g, w = got.cores[0], want.cores[0]
    for name in w.array_names():
        assert np.array_equal(getattr(g, name), getattr(w, name)), f"{name} differs at {step}"
    assert g.registers() == w.registers(), f"registers differ at {step}"


CASES = [
    dict(seed=1),
    dict(seed=2, trace_mode=1),
    dict(seed=3, plastic=False),
    dict(seed=4, learn=False),
    dict(seed=5, delay_bits=0),
    dict(seed=6, delay_bits=4, weight_bits=4),
    dict(seed=7, saturate=True),
    dict(seed=8, saturate=True, trace_mode=1, weight_bits=16),
    dict(seed=9, n=256, a=512, density=0.1),
    dict(seed=10, n=4, a=16, density=0.5),
]


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_every_state_and_spike_every_step(case):
    chip = random_chip(**case)
    n_steps = 300
    golden, fast = GoldenChip(chip), FastChip(chip)
    ext = external(case["seed"], n_steps, chip.cores[0].config.n_axons)
    total = 0
    for k in range(n_steps):
        want = golden.step([ext[k]])[0]
        got = fast.step([ext[k]])[0]
        assert np.array_equal(got, want), f"spikes differ at step {k}"
        assert_same_images(fast.image, golden.image, k)
        total += int(want.sum())
    assert total > 0, "the case never spikes: it tests nothing"


def test_learning_really_changes_weights():
    chip = random_chip(1)
    fast = FastChip(chip)
    fast.run(200)
    assert not np.array_equal(fast.image.cores[0].weight, chip.cores[0].weight)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_run_matches_simulate(seed):
    chip = random_chip(seed, trace_mode=seed % 2)
    n_steps = 400
    a = chip.cores[0].config.n_axons
    ext = external(seed, n_steps, a)
    first = chip.cores[0].step
    inputs = np.array([(first + k, 0, ax) for k, e in enumerate(ext) for ax in e] +
                      [(first + 3, 0, 5), (first + 3, 0, 5)], np.int64).reshape(-1, 3)
    probes = [(0, 0, "v"), (0, 3, "i"), (0, 5, "ref"), (0, 7, "y")]
    want = simulate(chip, n_steps, inputs, probes)
    fast = FastChip(chip)
    fast._rec_t = np.zeros(8, np.int64)            # force the record to grow mid-run
    fast._rec_n = np.zeros(8, np.int64)
    got = fast.run(n_steps, inputs, probes)
    assert np.array_equal(got.spikes, want.spikes)
    assert np.array_equal(got.probes, want.probes)
    assert got.first_step == want.first_step and got.n_steps == want.n_steps
    assert np.array_equal(simulate_fast(chip, n_steps, inputs, probes).spikes, want.spikes)
    golden = GoldenChip(chip)
    golden.run(n_steps, inputs)
    assert_same_images(fast.image, golden.image, n_steps)


def test_run_in_pieces_equals_one_run():
    chip = random_chip(21)
    one = FastChip(chip)
    t1 = one.run(250)
    two = FastChip(chip)
    t2a, t2b = two.run(100), two.run(150)
    assert np.array_equal(t1.spikes, np.concatenate([t2a.spikes, t2b.spikes]))
    assert_same_images(one.image, two.image, 250)


def test_counts_events_over_existing_synapses():
    chip = random_chip(31, plastic=False)
    im = chip.cores[0]
    fast = FastChip(chip)
    a = im.config.n_axons
    ext = external(31, 50, a)
    golden = GoldenChip(chip)
    expected = 0
    routed = np.zeros(a, bool)
    out_degree = (im.weight != 0).sum(axis=1)
    for k in range(50):
        e = routed.copy()
        e[ext[k]] = True
        e |= generator_spikes(im.gen_seed, im.gen_prob, im.step + k)
        expected += int(out_degree[e].sum())
        s = golden.step([ext[k]])[0]
        routed = np.zeros(a, bool)
        r = chip.routes
        routed[r[s[r[:, 1]], 3]] = True
        fast.step([ext[k]])
    assert fast.events == expected


def test_rejects_multi_core_chips():
    im = CoreImage(CoreConfig(n_neurons=4, n_axons=4))
    with pytest.raises(ValueError, match="one core"):
        FastChip(ChipImage([im, im.copy()]))


def test_dense_rows_past_the_int16_accumulator():
    """More than ``_ACC_ROWS`` dense int8 rows of one delay in one step, every weight at -128
    or +127: the int16 accumulator must flush before it could overflow, and the int32 slot
    sums must saturate ``i`` exactly as the golden model does."""
    from spikeforge.sim.golden_fast import _ACC_ROWS
    rng = np.random.default_rng(21)
    n, a = 32, 1024
    cfg = CoreConfig(n_neurons=n, n_axons=a, weight_bits=8, delay_bits=1, lanes=4,
                     plastic=False, n_profiles=1)
    im = CoreImage(cfg)
    im.weight = np.where(rng.random((a, n)) < 0.5, -128, 127)
    im.weight[:, 0], im.weight[:, 1] = 127, -128          # column sums far past int16
    im.delay = np.where(np.arange(a)[:, None] < 700, 0, 1) * np.ones((1, n), np.int64)
    im.weight_exp = 3
    im.threshold = np.array([1 << 22])
    im.alpha_v = np.array([60000])
    im.alpha_i = np.array([50000])
    chip = ChipImage([im.validate()])
    golden, fast = GoldenChip(chip), FastChip(chip)
    assert fast._planes.shape[0] == a                    # every row is stored densely
    everything = np.arange(a)
    assert (im.delay[:, 0] == 0).sum() > _ACC_ROWS
    for k in range(6):
        ext = [everything if k % 2 == 0 else everything[::3]]
        want, got = golden.step(ext)[0], fast.step(ext)[0]
        assert np.array_equal(got, want), f"spikes differ at step {k}"
        assert_same_images(fast.image, golden.image, k)
    assert np.abs(golden.image.cores[0].i).max() > 0
