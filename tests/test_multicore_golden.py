"""Same semantics on several cores: a network split over 2-4 cores gives exactly the spikes
(every step, every neuron, by population index) and the state of the same network on one big
core, with delays and recurrent projections crossing cores, learning off and on."""

import numpy as np
import pytest

from spikeforge.host.compiler import compile_network
from spikeforge.host.network import STDP, FixedProbability, Network
from spikeforge.image import CoreConfig
from spikeforge.sim.golden import GoldenChip

BIG = CoreConfig(n_neurons=64, n_axons=128)
SMALL = CoreConfig(n_neurons=16, n_axons=128)
SPLITS = [(CoreConfig(n_neurons=32, n_axons=128), 2), (SMALL, 3), (SMALL, 4)]
STEPS, CHUNKS = 60, 4


def _network(learn):
    """Poisson and array inputs, a recurrent excitatory population larger than a small core,
    inhibition, and an output layer with delays 1..16 steps. With ``learn`` the output synapses
    follow STDP whose updates are whole LSB (a_plus * x_inc = 2^22: the stochastic rounding
    cannot change them), so learned weights must agree bit for bit."""
    net = Network(dt=1.0)
    rng = np.random.default_rng(3)
    gen = net.poisson_source(12, rate_hz=60.0, seed=11, label="gen")
    arr = net.spike_source(6, times=[rng.uniform(0, 200, 8).round() for _ in range(6)],
                           label="arr")
    exc = net.population(24, tau_mem=15.0, tau_syn=4.0, v_th=1.0, refractory=2.0, label="exc")
    inh = net.population(8, tau_mem=10.0, tau_syn=3.0, v_th=2.0, reset="subtract",
                         label="inh")
    out = net.population(12, tau_mem=20.0, tau_syn=5.0, v_th=1.0, bias=0.002, label="out")
    net.connect(gen, exc, weight=0.6, connector=FixedProbability(0.5, seed=1))
    net.connect(arr, inh, weight=0.5, delay=rng.integers(0, 4, (6, 8)).astype(float))
    net.connect(exc, exc, weight=0.25, delay=rng.integers(1, 4, (24, 24)).astype(float),
                connector=FixedProbability(0.3, seed=2, allow_self=False))
    net.connect(exc, inh, weight=0.1, delay=2.0)
    net.connect(inh, exc, weight=-0.2, delay=1.0, connector=FixedProbability(0.6, seed=4))
    stdp = (STDP(w_max=1.27, w_min=0.0, tau_plus=1e9, tau_minus=1e9, A_plus=0.01, A_minus=0.02,
                 mode="nearest") if learn else None)
    net.connect(exc, out, weight=rng.uniform(0.02, 0.12, (24, 12)),
                delay=rng.integers(1, 17, (24, 12)).astype(float), stdp=stdp)
    net.connect(gen, out, weight=0.1, connector=FixedProbability(0.3, seed=5))
    return net


def _run(compiled):
    """Spikes by population and the state after every chunk of steps."""
    chip = GoldenChip(compiled.chip)
    spikes, states = [], []
    for _ in range(CHUNKS):
        trace = chip.run(STEPS, compiled.inputs)
        spikes.append(compiled.population_spikes(trace))
        image = chip.image
        states.append({var: compiled.neuron_state(var, image) for var in ("v", "i", "ref", "y")})
    return spikes, states, chip.image


@pytest.mark.parametrize("learn", [False, True])
def test_split_network_matches_one_big_core(learn):
    net = _network(learn)
    one = compile_network(net, BIG)
    ref_spikes, ref_states, ref_image = _run(one)
    if learn:
        assert one.chip.cores[0].a_plus == 256 and one.chip.cores[0].a_minus == 512
    counts = {k: sum(len(s[k]) for s in ref_spikes) for k in ("exc", "inh", "out")}
    assert min(counts.values()) > 20, counts                 # every population is active
    for config, n_cores in SPLITS:
        split = compile_network(net, config, n_cores=n_cores)
        if config.n_neurons < 24:
            assert len({c for c, _ in split.placement["exc"]}) >= 2   # exc itself is split
        routes = split.chip.routes
        assert (routes[:, 0] != routes[:, 2]).any()              # spikes cross cores
        assert split.scales == one.scales
        spikes, states, image = _run(split)
        for k in range(CHUNKS):
            for label in ("exc", "inh", "out"):
                assert np.array_equal(spikes[k][label], ref_spikes[k][label]), (n_cores, k)
                for var in ("v", "i", "ref", "y"):
                    assert np.array_equal(states[k][var][label], ref_states[k][var][label]), \
                        (n_cores, k, label, var)
        w_split, w_one = split.weights_to_user(image), one.weights_to_user(ref_image)
        for label, w in w_one.items():
            assert np.array_equal(w_split[label], w, equal_nan=True), label
        if learn:
            before = one.weights_to_user()["exc->out"]
            assert (w_one["exc->out"] != before).sum() > 10       # learning happened
        # The presynaptic trace of every axon copy equals the one-core axon's.
        for label, rows in split.axon_placement.items():
            ref_axon = {int(k): int(a) for k, _, a in one.axon_placement[label]}
            for k, c, a in rows:
                assert image.cores[c].x[a] == ref_image.cores[0].x[ref_axon[int(k)]]


@pytest.mark.parametrize("delay", [1, 4, 16])
def test_delay_across_cores_is_the_whole_latency(delay):
    net = Network(dt=1.0)
    src = net.spike_source(1, times=[[0.0]])
    a = net.population(16, tau_mem=20.0, tau_syn=5.0, v_th=1.0, refractory=15.0, label="a")
    b = net.population(16, tau_mem=20.0, tau_syn=5.0, v_th=100.0, label="b")
    net.connect(src, a, weight=50.0, delay=0.0, connector=FixedProbability(1.0))
    net.connect(a, b, weight=1.0, delay=float(delay), connector="one-to-one")
    c = compile_network(net, SMALL, n_cores=2)
    (core_a,), (core_b,) = ({int(x) for x in c.placement[k][:, 0]} for k in ("a", "b"))
    assert core_a != core_b
    chip = GoldenChip(c.chip)
    trace = chip.run(delay, c.inputs)
    fired = c.population_spikes(trace)["a"]
    assert fired[:, 0].tolist() == [0] * 16                   # a fires in step 0
    assert not c.neuron_state("i", chip.image)["b"].any()     # nothing arrived before t + d
    chip.run(1, c.inputs)
    assert (c.neuron_state("i", chip.image)["b"] > 0).all()   # everything arrives at t + d


def test_record_sets_host_out():
    net = _network(False)
    full = compile_network(net, SMALL, n_cores=4)
    only = compile_network(net, SMALL, n_cores=4, record=["out"])
    flags = np.concatenate(only.chip.host_out)
    out_flat = only.placement["out"][:, 0] * 16 + only.placement["out"][:, 1]
    assert np.flatnonzero(flags).tolist() == sorted(out_flat.tolist())
    assert all(h.all() for h in full.chip.host_out)
    t_full = GoldenChip(full.chip).run(120, full.inputs)
    t_only = GoldenChip(only.chip).run(120, only.inputs)
    s_full, s_only = full.population_spikes(t_full), only.population_spikes(t_only)
    assert np.array_equal(s_only["out"], s_full["out"]) and len(s_full["out"]) > 0
    assert len(s_only["exc"]) == len(s_only["inh"]) == 0 and len(s_full["exc"]) > 0
