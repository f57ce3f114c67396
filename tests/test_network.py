"""The network API: construction, connectors, and validation messages at the boundary."""

import numpy as np
import pytest

from spikeforge.host.network import (
    STDP,
    AllToAll,
    FixedProbability,
    Network,
    OneToOne,
)


def _net():
    net = Network(dt=1.0)
    src = net.spike_source(3, times=[[1.0], [2.0, 3.0], []], label="src")
    lif = net.population(4, label="lif")
    return net, src, lif


def test_labels_default_and_unique():
    net = Network()
    a = net.population(2)
    b = net.population(2)
    assert a.label != b.label
    with pytest.raises(ValueError, match=r"^label 'x' is already used in this network$"):
        net.population(1, label="x")
        net.population(1, label="x")
    assert net[a.label] is a


@pytest.mark.parametrize("kwargs, message", [
    ({"tau_mem": 0.0}, r"^tau_mem must be greater than 0 ms, not 0.0 ms$"),
    ({"tau_syn": -1}, r"^tau_syn must be greater than 0 ms, not -1.0 ms$"),
    ({"v_th": -1.0}, r"^v_th must be above v_rest \(0.0 mV\), not -1.0 mV$"),
    ({"v_reset": 2.0}, r"^v_reset must be below v_th \(1.0 mV\), not 2.0 mV$"),
    ({"refractory": 20.0},
     r"^refractory must round to 0..15 steps of dt \(1.0 ms\), not 20 steps \(20.0 ms\)$"),
    ({"reset": "zero"}, r"^reset must be 'reset' or 'subtract', not 'zero'$"),
    ({"bias": [1.0, 2.0]}, r"^bias must have shape \(3,\), not \(2,\)$"),
    ({"tau_mem": float("nan")}, r"^tau_mem must be finite, not nan$"),
])
def test_population_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Network().population(3, **kwargs)


def test_population_type_errors():
    with pytest.raises(TypeError, match=r"^n must be an integer, not 2.5$"):
        Network().population(2.5)
    with pytest.raises(TypeError, match=r"^tau_mem must be a number, not 'fast'$"):
        Network().population(2, tau_mem="fast")
    with pytest.raises(ValueError, match=r"^dt must be greater than 0 ms, not 0.0 ms$"):
        Network(dt=0)


def test_refractory_rounds_to_steps():
    pop = Network(dt=0.5).population(1, refractory=7.4)
    assert pop.refractory_steps == 15
    with pytest.raises(ValueError, match=r"not 16 steps \(7.9 ms\)"):
        Network(dt=0.5).population(1, refractory=7.9)


def test_spike_source_forms_agree():
    net = Network(dt=1.0)
    a = net.spike_source(3, times=[[2.0, 1.0], [], [1.0]])
    b = net.spike_source(3, times=np.array([[0, 1.0], [2, 1.0], [0, 2.0]]))
    # Canonical order: by time, then neuron.
    assert a.neurons.tolist() == b.neurons.tolist() == [0, 2, 0]
    assert a.times.tolist() == b.times.tolist() == [1.0, 1.0, 2.0]
    # Two spikes of one neuron rounding to one step merge.
    c = Network(dt=1.0).spike_source(1, times=[[1.0, 1.2, 3.0]])
    assert c.steps().tolist() == [[1, 0], [3, 0]]


def test_spike_source_validation():
    net = Network()
    with pytest.raises(ValueError, match=r"^times must hold one sequence per neuron \(2\), not 3$"):
        net.spike_source(2, times=[[1.0], [2.0], [3.0]])
    with pytest.raises(ValueError, match=r"^spike source neuron 5 is out of range \[0, 1\]$"):
        net.spike_source(2, times=np.array([[5, 1.0]]))
    with pytest.raises(ValueError, match=r"^spike times must not be negative, not -1.0 ms$"):
        net.spike_source(1, times=[[-1.0]])
    with pytest.raises(ValueError, match=r"must have shape \(K, 2\)"):
        net.spike_source(1, times=np.zeros((2, 3)))


def test_poisson_source():
    src = Network(dt=1.0).poisson_source(3, rate_hz=[20.0, 0.0, 500.0], seed=4)
    # p = rate * dt = 0.02 -> round(65536 * 0.02) = 1311
    assert src.gen_prob().tolist() == [1311, 0, 32768]
    with pytest.raises(ValueError, match=r"^rate_hz must be below 999.992 Hz at dt 1.0 ms "
                                         r"\(spike probability per step < 1\), not 1000.0$"):
        Network().poisson_source(1, rate_hz=1000.0)
    with pytest.raises(ValueError, match=r"^rate_hz must not be negative, not -1.0$"):
        Network().poisson_source(1, rate_hz=-1.0)
    with pytest.raises(ValueError, match=r"^seed must fit 32 bits"):
        Network().poisson_source(1, rate_hz=1.0, seed=1 << 32)


def test_connectors():
    net, src, lif = _net()
    dense = np.array([[1.0, np.nan, 0.0, 2.0],
                      [np.nan] * 4,
                      [0.5, 0.5, np.nan, np.nan]])
    p = net.connect(src, lif, weight=dense)
    pre, post, w, d = p.connections()
    # NaN is absent; 0.0 is a synapse of weight zero.
    assert list(zip(pre.tolist(), post.tolist(), strict=True)) == [
        (0, 0), (0, 2), (0, 3), (2, 0), (2, 1)]
    assert w.tolist() == [1.0, 0.0, 2.0, 0.5, 0.5]
    assert d.tolist() == [1] * 5

    all_ = net.connect(lif, lif, weight=0.5, connector=AllToAll(allow_self=False))
    pre, post, _, _ = all_.connections()
    assert len(pre) == 12 and not (pre == post).any()

    one = net.connect(src, net.population(3), weight=[1.0, 2.0, 3.0], connector="one-to-one",
                      delay=[0.0, 1.0, 2.0])
    pre, post, w, d = one.connections()
    assert pre.tolist() == post.tolist() == [0, 1, 2]
    assert w.tolist() == [1.0, 2.0, 3.0] and d.tolist() == [0, 1, 2]


def test_fixed_probability_is_seeded():
    net = Network()
    a, b = net.population(50), net.population(40)
    p1 = net.connect(a, b, weight=1.0, connector=FixedProbability(0.2, seed=9))
    p2 = net.connect(a, b, weight=1.0, connector=FixedProbability(0.2, seed=9))
    p3 = net.connect(a, b, weight=1.0, connector=FixedProbability(0.2, seed=10))
    c1, c2, c3 = p1.connections(), p2.connections(), p3.connections()
    assert np.array_equal(c1[0], c2[0]) and np.array_equal(c1[1], c2[1])
    assert not np.array_equal(c1[1], c3[1])
    assert 0.15 < len(c1[0]) / (50 * 40) < 0.25


def test_projection_validation():
    net, src, lif = _net()
    other = Network().population(2)
    with pytest.raises(ValueError, match=r"^pre must be a population of this network"):
        net.connect(other, lif, weight=1.0)
    with pytest.raises(ValueError, match=r"^post must be a LIF population, not the source 'src'$"):
        net.connect(lif, src, weight=1.0)
    with pytest.raises(ValueError,
                       match=r"^one-to-one needs populations of one size, not 3 and 4$"):
        net.connect(src, lif, weight=1.0, connector=OneToOne())
    with pytest.raises(ValueError, match=r"^delay must round to 0..15 steps of dt \(1.0 ms\), "
                                         r"not 16 steps \(16.0 ms\)$"):
        net.connect(src, lif, weight=1.0, delay=16.0)
    with pytest.raises(ValueError, match=r"^delay must not be negative, not -1.0 ms$"):
        net.connect(src, lif, weight=1.0, delay=-1.0)
    with pytest.raises(ValueError, match=r"^weight must have shape \(3, 4\), not \(2,\)$"):
        net.connect(src, lif, weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"^weight must be finite, not nan$"):
        net.connect(src, lif, weight=np.full((3, 4), np.nan), connector="all-to-all")
    with pytest.raises(ValueError, match=r"^connector must be one of \['all-to-all', 'dense', "
                                         r"'one-to-one'\] or a FixedProbability, not 'star'$"):
        net.connect(src, lif, weight=1.0, connector="star")
    with pytest.raises(ValueError, match=r"^p must be a probability in \[0, 1\], not 1.5$"):
        FixedProbability(1.5)
    with pytest.raises(ValueError, match=r"^initial weight 2.0 mV of plastic projection "
                                         r"'src->lif' is outside \[w_min, w_max\] = \[0.0, 1.0\]$"):
        net.connect(src, lif, weight=2.0, stdp=STDP(w_max=1.0))


def test_stdp_validation():
    with pytest.raises(ValueError, match=r"^w_min \(2.0 mV\) must not exceed w_max \(1.0 mV\)$"):
        STDP(w_max=1.0, w_min=2.0)
    with pytest.raises(ValueError, match=r"^A_minus must not be negative \(it is a magnitude\), "
                                         r"not -0.1 mV$"):
        STDP(w_max=1.0, A_minus=-0.1)
    with pytest.raises(ValueError, match=r"^mode must be 'all-to-all' or 'nearest', not 'pair'$"):
        STDP(w_max=1.0, mode="pair")
    with pytest.raises(ValueError, match=r"^tau_plus must be greater than 0 ms, not 0.0 ms$"):
        STDP(w_max=1.0, tau_plus=0)
    assert STDP(w_max=1.0) == STDP(w_max=1.0)


def test_network_equal():
    a, _, _ = _net()
    b, _, _ = _net()
    assert a.equal(b)
    b.population(1)
    assert not a.equal(b)
