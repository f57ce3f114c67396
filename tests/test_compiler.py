"""The single-core compiler: fit checks, quantisation against hand computation, placement and
routes, the float twin, reading weights back, and runs of compiled networks on the golden model."""

import math
import os

import numpy as np
import pytest

from spikeforge.host.compiler import alpha, choose_scales, compile_network
from spikeforge.host.netfile import load_network
from spikeforge.host.network import STDP, FixedProbability, Network
from spikeforge.image import CoreConfig
from spikeforge.sim.golden import simulate

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
SMALL = CoreConfig(n_neurons=16, n_axons=16)


def _simple(weight=1.27, v_th=10.0, **stdp):
    net = Network(dt=1.0)
    src = net.spike_source(2, times=[[1.0], [2.0]], label="src")
    pop = net.population(4, tau_mem=20.0, tau_syn=5.0, v_th=v_th, v_reset=-1.0, bias=0.05,
                         label="pop")
    net.connect(src, pop, weight=weight, delay=2.0,
                stdp=STDP(w_max=weight, **stdp) if stdp else None)
    return net


def test_alpha_by_hand():
    assert alpha(1.0, 20.0) == 62340          # round(65536 * exp(-0.05)) = round(62339.7)
    assert alpha(1.0, 5.0) == 53656           # round(65536 * exp(-0.2)) = round(53656.3)
    assert alpha(1.0, 1e9) == 65535           # clipped: exp(-1e-9) rounds to 65536


def test_quantisation_by_hand():
    c = compile_network(_simple(A_plus=0.0127, A_minus=0.0254, tau_plus=10.0), SMALL)
    im = c.chip.cores[0]
    # q_w = 1.27 / 127 = 0.01 mV. Headroom: 8 * 10 mV = 8000 weight LSB; the largest exp with
    # 8000 * 2^e <= 2^23 - 1 is 10 (8,192,000), so q_s = 0.01 / 1024 mV.
    assert c.scales.q_w == pytest.approx(0.01)
    assert im.weight_exp == c.scales.weight_exp == 10
    assert im.alpha_v[0] == 62340 and im.alpha_i[0] == 53656
    assert im.threshold[0] == 1024000                     # 10 / (0.01 / 1024)
    assert im.v_reset[0] == -102400
    assert im.bias[:4].tolist() == [5120] * 4              # 0.05 mV/ms * 1 ms
    assert im.weight[0, :4].tolist() == [127] * 4 and im.delay[0, :4].tolist() == [2] * 4
    assert im.mask[:2, :4].all() and not im.mask[2:].any() and not im.mask[:, 4:].any()
    # a_plus = round(1.27 LSB * 2^22 / 2^14) = round(325.12); a_minus = 2.54 LSB -> 650
    assert (im.a_plus, im.a_minus, im.x_inc, im.y_inc) == (325, 650, 16384, 16384)
    assert im.alpha_x == alpha(1.0, 10.0) == 59299 and im.alpha_y == 62340
    assert (im.w_min, im.w_max, im.learn, im.trace_mode) == (0, 127, 1, 0)

    r = c.report
    row = r.get("tau_mem", "pop")
    assert row.value == 20.0
    assert row.quantised == pytest.approx(-1.0 / math.log(62340 / 65536))
    assert row.rel_error == pytest.approx(abs(row.quantised - 20.0) / 20.0)
    assert r.get("A_plus", "src->pop").quantised == pytest.approx(325 * 0.01 / 256)
    assert r.get("A_plus", "src->pop").rel_error == pytest.approx(abs(325 / 256 - 1.27) / 1.27)
    assert r.get("weight (max)", "src->pop").rel_error == pytest.approx(0.0, abs=1e-12)
    assert r.get("v_th", "pop").quantised == pytest.approx(10.0)
    assert not r.notes                                     # weight_exp 10 >= 9
    assert "weight_exp 10" in str(r)


def test_weight_exp_note_and_scale_limits():
    # v_th 100 mV with 1.27 mV weights: 80000 weight LSB of headroom -> 2^e <= 104.9 -> e = 6
    c = compile_network(_simple(v_th=100.0), SMALL)
    assert c.scales.weight_exp == 6
    assert c.report.notes and "weight_exp is 6 (< 9)" in c.report.notes[0]
    with pytest.raises(ValueError, match=r"^state amplitude 10000.0 mV .* even at weight_exp 0"):
        compile_network(_simple(weight=0.001, v_th=10000.0), SMALL)
    # No synapses at all: the scale comes from the thresholds alone.
    s = choose_scales(0.0, 10.0, SMALL)
    assert s.weight_exp == 0 and round(8 * 10.0 / s.q_s) == (1 << 23) - 1


def test_rates_and_report_of_sources():
    net = Network(dt=0.5)
    gen = net.poisson_source(3, rate_hz=[10.0, 20.0, 30.0], seed=42, label="gen")
    pop = net.population(2, label="pop")
    net.connect(gen, pop, weight=0.5)
    c = compile_network(net, SMALL)
    im = c.chip.cores[0]
    # p = rate * dt: 0.005, 0.01, 0.015 -> round(65536 p) = 328, 655, 983
    assert im.gen_prob[:3].tolist() == [328, 655, 983] and not im.gen_prob[3:].any()
    assert im.gen_seed == 42
    row = c.report.get("rate_hz (max)", "gen")
    assert row.quantised == pytest.approx(983 / 65536 / 0.5e-3)


def test_placement_and_routes_for_recurrent_projection():
    net = Network()
    src = net.spike_source(2, times=[[3.0, 1.0], [2.0]], label="src")
    a = net.population(3, label="a")
    b = net.population(2, tau_mem=10.0, label="b")
    net.connect(src, a, weight=1.0)
    net.connect(a, a, weight=-0.5, connector=FixedProbability(1.0, allow_self=False), delay=1.0)
    net.connect(a, b, weight=0.25, delay=3.0)
    c = compile_network(net, SMALL)
    assert c.neurons["a"].tolist() == [0, 1, 2] and c.neurons["b"].tolist() == [3, 4]
    assert c.axons["src"].tolist() == [0, 1] and c.axons["a"].tolist() == [2, 3, 4]
    assert "b" not in c.axons                                 # b projects nowhere
    assert c.chip.routes.tolist() == [[0, 0, 0, 2], [0, 1, 0, 3], [0, 2, 0, 4]]
    assert all(h.all() for h in c.chip.host_out)
    im = c.chip.cores[0]
    q = c.scales.q_w
    assert q == 1.0 / 127
    # recurrent block: axons 2..4 x neurons 0..2, no self-synapses
    # -0.5 mV is -63.5 weight LSB: rounds (to even) to -64
    assert im.weight[2:5, 0:3].tolist() == (-64 * (1 - np.eye(3, dtype=int))).tolist()
    # 3 ms = 3 steps of latency: the route takes 1, the core stores 2
    assert (im.weight[2:5, 3:5] == round(0.25 / q)).all() and (im.delay[2:5, 3:5] == 2).all()
    assert im.profile[:5].tolist() == [0, 0, 0, 1, 1]
    # Array-source spikes: (step, core, axon), sorted.
    assert c.inputs.tolist() == [[1, 0, 0], [2, 0, 1], [3, 0, 0]]
    # The float twin has the same placement in mV.
    fc = c.float_chip.cores[0]
    assert np.array_equal(c.float_chip.routes, c.chip.routes)
    assert np.allclose(fc.weight[2:5, 0:3], -0.5 * (1 - np.eye(3)))
    assert fc.alpha_v[1] == math.exp(-0.1) and fc.threshold[0] == 1.0
    assert np.array_equal(fc.delay, im.delay) and np.array_equal(fc.profile, im.profile)


def test_weights_to_user():
    net = Network()
    src = net.spike_source(3, label="src")
    pop = net.population(2, label="pop")
    w = np.array([[0.3, np.nan], [np.nan, -0.7], [0.11, 0.0]])
    net.connect(src, pop, weight=w)
    c = compile_network(net, SMALL)
    back = c.weights_to_user()["src->pop"]
    assert np.array_equal(np.isnan(back), np.isnan(w))
    assert np.nanmax(np.abs(back - w)) <= c.scales.q_w / 2
    learned = c.chip.copy()
    learned.cores[0].weight[2, 1] = 5
    assert c.weights_to_user(learned)["src->pop"][2, 1] == pytest.approx(5 * c.scales.q_w)
    with pytest.raises(TypeError, match=r"^image must be a CoreImage or ChipImage, not int$"):
        c.weights_to_user(3)


@pytest.mark.parametrize("make, config, message", [
    (lambda n: n.population(300), CoreConfig(),
     r"^network needs 300 neurons but a core has 256 \(n_neurons\)$"),
    (lambda n: n.poisson_source(20, rate_hz=1.0), SMALL,
     r"^network needs 20 axons \(sources and projecting neurons\) but a core has 16 "
     r"\(n_axons\)$"),
    (lambda n: [n.population(1, tau_mem=t) for t in (10.0, 20.0, 30.0)],
     CoreConfig(n_neurons=16, n_axons=16, n_profiles=2),
     r"^network needs 3 neuron profiles \(distinct parameter sets\) but a core has 2 "
     r"\(n_profiles\)$"),
    (lambda n: n.connect(n.spike_source(1), n.population(1, label="p"), weight=1.0, delay=5.0,
                         label="slow"), CoreConfig(n_neurons=16, n_axons=16, delay_bits=2),
     r"^projection 'slow' needs delay 5 steps but a core has at most 3 \(delay_bits 2\)$"),
    (lambda n: n.connect(n.spike_source(1), n.population(1), weight=1.0,
                         stdp=STDP(w_max=1.0), label="learn"),
     CoreConfig(n_neurons=16, n_axons=16, plastic=False),
     r"^projection 'learn' has STDP but the core is built without plasticity "
     r"\(plastic=False\)$"),
    (lambda n: n.connect(n.spike_source(1), n.population(1), weight=0.1,
                         stdp=STDP(w_max=0.1, A_plus=0.5)), SMALL,
     r"^A_plus 0.5 mV needs a_plus = 162560, above 65535 \(16 bits\): at most 0.201572 mV "
     r"with a weight LSB of 0.000787402 mV$"),
])
def test_fit_check_errors(make, config, message):
    net = Network()
    make(net)
    with pytest.raises(ValueError, match=message):
        compile_network(net, config)


def test_one_core_register_conflicts():
    net = Network()
    s = net.spike_source(2, label="s")
    p = net.population(2, label="p")
    net.connect(s, p, weight=0.1, stdp=STDP(w_max=0.2), label="one")
    net.connect(s, net.population(1), weight=0.1, stdp=STDP(w_max=0.3), label="two")
    with pytest.raises(ValueError, match=r"^plastic projections 'one' and 'two' have different "
                                         r"STDP parameters; a core has one set of STDP registers$"):
        compile_network(net, SMALL)
    net = Network()
    net.poisson_source(1, rate_hz=1.0, seed=1, label="g1")
    net.poisson_source(1, rate_hz=1.0, seed=2, label="g2")
    net.poisson_source(1, rate_hz=1.0, label="any")
    with pytest.raises(ValueError, match=r"^poisson sources 'g1' \(seed 1\) and 'g2' \(seed 2\) "
                                         r"must share one seed"):
        compile_network(net, SMALL)
    net = Network()
    s = net.spike_source(2, label="s")
    p = net.population(2, label="p")
    net.connect(s, p, weight=0.1, label="first")
    net.connect(s, p, weight=0.2, connector="one-to-one", label="again")
    with pytest.raises(ValueError, match=r"^projection 'again' and an earlier projection both "
                                         r"connect axon 0 to neuron 0: a core holds one synapse"):
        compile_network(net, SMALL)
    with pytest.raises(TypeError, match=r"^compile_network needs a Network, not str$"):
        compile_network("net")


def _float_run(net, n_steps):
    """The reference semantics of host.network's docstring for one feed-forward layer from
    array sources, written out directly: (step, neuron) spike pairs."""
    (proj,) = net.projections
    pop, dt = proj.post, net.dt
    pre, post, w, d = proj.connections()
    drive = np.zeros((n_steps + 16, pop.n))
    for step, k in proj.pre.steps():
        sel = pre == k
        np.add.at(drive, (step + d[sel], post[sel]), w[sel])
    v, i, ref, out = np.zeros(pop.n), np.zeros(pop.n), np.zeros(pop.n, int), []
    th, reset = pop.v_th - pop.v_rest, pop.v_reset - pop.v_rest
    for t in range(n_steps):
        i = i * math.exp(-dt / pop.tau_syn) + drive[t]
        held = ref > 0
        v_new = v * math.exp(-dt / pop.tau_mem) + i + pop.bias_array() * dt
        spikes = ~held & (v_new > th)
        v = np.where(held, v, np.where(spikes, reset, v_new))
        ref = np.where(held, ref - 1, np.where(spikes, pop.refractory_steps, 0))
        out += [(t, int(n)) for n in np.flatnonzero(spikes)]
    return out


def test_feedforward_example_matches_float_semantics():
    net = load_network(os.path.join(EXAMPLES, "feedforward.json"))
    c = compile_network(net, SMALL)
    trace = simulate(c.chip, 80, inputs=c.inputs)
    golden = [(int(t), int(n)) for t, _, n in trace.spikes]
    assert golden == _float_run(net, 80)
    assert len(golden) >= 5


def test_stdp_demo_runs_and_learns():
    net = load_network(os.path.join(EXAMPLES, "stdp_demo.json"))
    c = compile_network(net, CoreConfig(n_neurons=128, n_axons=256))
    im = c.chip.cores[0]
    assert im.learn == 1 and int(im.mask.sum()) == 100 * 64
    trace = simulate(c.chip, 400, inputs=c.inputs)
    rate = len(trace.spikes) / 64 / 0.4
    assert 3.0 < rate < 60.0, rate                   # a few Hz to tens of Hz per neuron
    assert len(np.unique(trace.spikes[:, 2])) > 32   # most neurons take part


@pytest.mark.parametrize("delay_ms", [1.0, 2.0, 5.0, 16.0])
def test_delay_is_the_whole_latency_for_neuron_projections(delay_ms):
    from spikeforge.sim.golden import GoldenChip

    net = Network(dt=1.0)
    src = net.spike_source(1, times=[[0.0]])
    a = net.population(1, tau_mem=20.0, tau_syn=5.0, v_th=1.0, refractory=15.0)
    b = net.population(1, tau_mem=20.0, tau_syn=5.0, v_th=100.0)
    net.connect(src, a, weight=50.0, delay=0.0)
    net.connect(a, b, weight=1.0, delay=delay_ms)
    compiled = compile_network(net)
    chip = GoldenChip(compiled.chip)
    inputs = {int(s): int(ax) for s, _, ax in compiled.inputs}
    fired_at, arrived_at = None, None
    for t in range(20):
        out = chip.step([[inputs[t]] if t in inputs else []])
        if out[0][compiled.neurons[a.label][0]] and fired_at is None:
            fired_at = t
        if chip.cores[0].image.i[compiled.neurons[b.label][0]] != 0 and arrived_at is None:
            arrived_at = t
    assert fired_at == 0
    assert arrived_at == fired_at + int(delay_ms)


def test_neuron_projection_needs_at_least_one_step():
    net = Network(dt=1.0)
    a = net.population(2)
    with pytest.raises(ValueError, match="must be at least dt"):
        net.connect(a, a, weight=1.0, delay=0.0)
