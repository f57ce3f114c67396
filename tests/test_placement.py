"""Placement across cores: whole populations stay whole, coupled populations share a core, split
populations get the axons, routes, generators and injections they need, and every fit-check
message names its limit."""

import itertools

import numpy as np
import pytest

from spikeforge.host.compiler import compile_network
from spikeforge.host.network import Network
from spikeforge.host.placement import RoutingLimits
from spikeforge.image import CoreConfig

C16 = CoreConfig(n_neurons=16, n_axons=64)


def _crossing(compiled):
    """Cross-core traffic read from the routing table: entries whose destination core is not
    the source neuron's core."""
    r = compiled.chip.routes
    return int((r[:, 0] != r[:, 2]).sum())


def _cores(compiled):
    return {label: set(rows[:, 0].tolist()) for label, rows in compiled.placement.items()}


def test_populations_that_fit_whole_are_never_split():
    for sizes in ([10, 9, 8, 7, 6], [16, 1, 15, 2, 14], [5] * 9):
        net = Network()
        src = net.spike_source(4, label="src")
        pops = [net.population(n, label=f"p{k}") for k, n in enumerate(sizes)]
        for a, b in zip(pops, pops[1:], strict=False):
            net.connect(a, b, weight=0.5, connector="all-to-all")
        net.connect(src, pops[0], weight=1.0)
        c = compile_network(net, C16, n_cores=4)
        assert all(len(cores) == 1 for cores in _cores(c).values()), sizes
        # neurons are distinct (core, index) slots inside the core
        slots = np.concatenate(list(c.placement.values()))
        assert len({tuple(s) for s in slots}) == sum(sizes) and slots[:, 1].max() < 16


def test_coupled_populations_share_a_core_and_placement_is_optimal():
    # Population order interleaves two tightly coupled pairs (a<->b, x<->y): first fit in
    # population order puts a and x on core 0 and b and y on core 1, so every route crosses.
    net = Network()
    a, x = net.population(8, label="a"), net.population(8, label="x")
    b, y = net.population(8, label="b"), net.population(8, label="y")
    for p, q in ((a, b), (b, a), (x, y), (y, x)):
        net.connect(p, q, weight=0.5)
    net.connect(a, x, weight=0.5, connector="one-to-one")      # a weak link between the pairs
    c = compile_network(net, C16, n_cores=2)
    cores = _cores(c)
    assert cores["a"] == cores["b"] and cores["x"] == cores["y"] and cores["a"] != cores["x"]
    # Brute force every whole-population assignment that fits: the heuristic finds the least
    # crossing traffic (the 8 routes of the one-to-one link), first fit in order does not.
    pops = [a, x, b, y]

    def traffic(assign):
        home = dict(zip([p.label for p in pops], assign, strict=True))
        return sum(proj.pre.n for proj in net.projections
                   if home[proj.pre.label] != home[proj.post.label])
    fitting = [s for s in itertools.product(range(2), repeat=4)
               if all(sum(p.n for p, k in zip(pops, s, strict=True) if k == core) <= 16
                      for core in range(2))]
    best = min(traffic(s) for s in fitting)
    assert _crossing(c) == best == 8
    assert traffic((0, 0, 1, 1)) == 32                       # first fit in population order


def test_split_population_axons_routes_generators_and_inputs():
    net = Network()
    gen = net.poisson_source(3, rate_hz=[50.0, 100.0, 150.0], seed=7, label="gen")
    arr = net.spike_source(2, times=[[1.0, 4.0], [2.0]], label="arr")
    exc = net.population(40, label="exc")                       # more than one core
    out = net.population(4, label="out")
    net.connect(gen, exc, weight=0.5)
    net.connect(arr, exc, weight=0.5)
    net.connect(exc, out, weight=0.1, delay=2.0)
    c = compile_network(net, C16, n_cores=3)
    rows = c.placement["exc"]
    assert set(rows[:, 0].tolist()) == {0, 1, 2}                 # split over the three cores
    assert c.n_cores == 3 and len(c.chip.cores) == 3
    assert c.neurons["exc"].tolist() == (rows[:, 0] * 16 + rows[:, 1]).tolist()
    # Poisson neuron k sits at axon k (its index among source neurons) on every core it drives,
    # with the same gen_prob and the chip's one gen_seed.
    for k, core, axon in c.axon_placement["gen"]:
        assert axon == k
        assert c.chip.cores[core].gen_prob[axon] == gen.gen_prob()[k]
    assert sorted(set(c.axon_placement["gen"][:, 1].tolist())) == [0, 1, 2]
    assert {im.gen_seed for im in c.chip.cores} == {7}
    # Array spikes are injected onto every core holding an axon of that neuron.
    expected = sorted((s, core, ax) for n, core, ax in c.axon_placement["arr"]
                      for s, m in arr.steps() if m == n)
    assert c.inputs.tolist() == [list(e) for e in expected]
    # One route per (exc neuron, core with its targets): all exc neurons target out's one core.
    (out_core,) = set(c.placement["out"][:, 0].tolist())
    assert len(c.chip.routes) == 40
    assert set(c.chip.routes[:, 2].tolist()) == {out_core}
    src = {(int(s), int(n)) for s, n, _, _ in c.chip.routes}
    assert src == {(int(s), int(n)) for s, n in rows}
    assert c.chip.routes[:, 3].tolist() == c.axon_placement["exc"][:, 2].tolist()
    # Each synapse is on the post neuron's core, at the pre neuron's axon there.
    axon, neuron, pre, post, core = c.synapses["exc->out"]
    assert (core == out_core).all() and (c.chip.cores[out_core].weight[axon, neuron] != 0).all()
    assert (c.chip.cores[out_core].delay[axon, neuron] == 1).all()


def test_single_core_layout_unchanged_when_it_fits():
    net = Network()
    s = net.spike_source(2, label="s")
    p = net.population(5, label="p")
    q = net.population(3, label="q")
    net.connect(s, p, weight=1.0)
    net.connect(p, q, weight=1.0)
    one, four = compile_network(net, C16), compile_network(net, C16, n_cores=4)
    assert _cores(four) == {"p": {0}, "q": {0}}
    assert np.array_equal(one.chip.routes, four.chip.routes)
    assert not any(im.weight.any() or im.gen_prob.any() for im in four.chip.cores[1:])
    assert one.chip.cores[0].equal(four.chip.cores[0])


def _errors():
    def too_many(n):
        n.population(40)

    def axons(n):
        n.connect(n.spike_source(20, label="s"), n.population(20, label="p"), weight=1.0)

    def generators(n):
        a, b = n.population(16, label="a"), n.population(16, label="b")
        n.connect(n.spike_source(10, label="arr"), a, weight=1.0)
        n.connect(n.poisson_source(10, rate_hz=5.0, label="gen"), b, weight=1.0)

    def profiles(n):
        for k in range(3):
            n.population(10, tau_mem=10.0 + k, label=f"p{k}")

    def entries(n):
        a = n.population(12, label="a")
        n.connect(a, a, weight=0.1)

    def fan_out(n):
        exc, big = n.population(4, label="exc"), n.population(40, label="big")
        n.connect(exc, big, weight=0.1)

    def collision(n):
        s, p = n.spike_source(2, label="s"), n.population(30, label="p")
        n.connect(s, p, weight=0.1, label="first")
        n.connect(s, p, weight=0.2, label="again")
    small = CoreConfig(n_neurons=16, n_axons=16)
    return [
        (too_many, C16, 2, RoutingLimits(),
         r"^network needs 40 neurons but 2 cores of 16 have 32 \(n_cores x n_neurons\)$"),
        (axons, small, 2, RoutingLimits(),
         r"^network needs 20 axons \(sources and projecting neurons\) on core 0 but a core has "
         r"16 \(n_axons\)$"),
        (generators, small, 2, RoutingLimits(),
         r"^poisson source 'gen' needs generator axons up to 19 \(its index among the source "
         r"neurons, the same on every core\) but a core has 16 \(n_axons\)$"),
        (profiles, CoreConfig(n_neurons=16, n_axons=16, n_profiles=1), 3, RoutingLimits(),
         None),
        (profiles, CoreConfig(n_neurons=16, n_axons=16, n_profiles=1), 2, RoutingLimits(),
         r"^network needs 2 neuron profiles \(distinct parameter sets\) on core 0 but a core "
         r"has 1 \(n_profiles\)$"),
        (entries, C16, 2, RoutingLimits(route_entries=10),
         r"^network needs 12 routing entries on core 0 but a table holds 10 "
         r"\(route_entries\)$"),
        (fan_out, C16, 3, RoutingLimits(fan_out=2),
         r"^neuron 'exc'\[0\] fans out to 3 \(core, axon\) destinations but at most 2 are "
         r"allowed \(fan_out\)$"),
        (collision, C16, 2, RoutingLimits(),
         r"^projection 'again' and an earlier projection both connect axon 0 to neuron 0 on "
         r"core 0: a core holds one synapse per \(axon, neuron\)$"),
    ]


@pytest.mark.parametrize("make, config, n_cores, limits, message", _errors())
def test_fit_check_errors_name_the_limit(make, config, n_cores, limits, message):
    net = Network()
    make(net)
    if message is None:           # the same network fits one more core: no error
        c = compile_network(net, config, n_cores=n_cores, limits=limits)
        assert all(len(v) == 1 for v in _cores(c).values())
        return
    with pytest.raises(ValueError, match=message):
        compile_network(net, config, n_cores=n_cores, limits=limits)


def test_argument_errors():
    net = Network()
    net.population(2, label="p")
    with pytest.raises(ValueError, match=r"^n_cores must be a positive integer, not 0$"):
        compile_network(net, C16, n_cores=0)
    with pytest.raises(TypeError, match=r"^limits must be a RoutingLimits, not dict$"):
        compile_network(net, C16, limits={})
    with pytest.raises(ValueError, match=r"^fan_out must be a positive integer, not 0$"):
        RoutingLimits(fan_out=0)
    with pytest.raises(ValueError, match=r"^record names 'q', which is not a LIF population of "
                                         r"the network \(p\)$"):
        compile_network(net, C16, record=["q"])
    big = Network()
    big.population(20, label="p")
    c = compile_network(big, C16, n_cores=2)
    with pytest.raises(ValueError, match=r"^a CoreImage holds one core but the network spans 2 "
                                         r"cores: pass a ChipImage$"):
        c.weights_to_user(c.chip.cores[0])
