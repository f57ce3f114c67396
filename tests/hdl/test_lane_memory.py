# amaranth: UnusedElaboratable=no
"""``LaneMemory``'s contract, in Amaranth's simulator: read data ``latency`` clocks after the
address and held while no read arrives, read-before-write, writes seen by later reads; with
``latency=2`` across several banks (the ULX3S lane: 4 banks of 16,384 words).

The core on top of it (bit-exact against the golden model) is ``test_core_verilator.py``.
"""

import random

import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.memory import LaneMemory


@pytest.mark.parametrize("latency, depth, bank_depth", [
    (1, 64, 16384), (2, 64, 16384), (2, 64, 16), (2, 48, 16), (2, 1, 16384),
])
def test_reads_follow_the_contract(latency, depth, bank_depth):
    dut = LaneMemory(10, depth, latency=latency, bank_depth=bank_depth)
    assert dut.latency == latency
    rng = random.Random(f"{latency}-{depth}-{bank_depth}")
    model = [0] * depth
    checked = []

    async def bench(ctx):
        # (clock, expected word) of each read; the word shows ``latency`` clocks later and
        # stays until the next read's word replaces it
        issued = []
        expect = None
        for clock in range(600):
            r_en, w_en = rng.random() < 0.6, rng.random() < 0.5
            r_addr, w_addr = rng.randrange(depth), rng.randrange(depth)
            w_data = rng.randrange(1 << 10)
            ctx.set(dut.r_en, r_en)
            ctx.set(dut.r_addr, r_addr)
            ctx.set(dut.w_en, w_en)
            ctx.set(dut.w_addr, w_addr)
            ctx.set(dut.w_data, w_data)
            if r_en:
                issued.append((clock, model[r_addr]))       # read before this clock's write
            if w_en:
                model[w_addr] = w_data
            await ctx.tick()
            ready = [word for at, word in issued if at == clock + 1 - latency]
            if ready:
                expect = ready[0]
            if expect is not None:
                assert ctx.get(dut.r_data) == expect, f"clock {clock}"
                checked.append(clock)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(checked) > 500


@pytest.mark.parametrize("kwargs, message", [
    ({"latency": 3}, "latency must be 1 or 2, not 3"),
    ({"bank_depth": 1000}, "power of two, not 1000"),
])
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LaneMemory(8, 64, **kwargs)
