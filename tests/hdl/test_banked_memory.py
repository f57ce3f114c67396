# amaranth: UnusedElaboratable=no
"""``BankedMemory``'s contract, in Amaranth's simulator: ``addr`` loads ``addr_next`` when
``addr_load``; a read (``en``) of the address held shows its word a clock later, read before
write, and the word stays while no read arrives. One bank (an iCE40's block RAM), several banks
(the ULX3S's routing tables: 1024 words in banks of 256), and a last bank shorter than the rest.

The router on top of it (bit-exact against the golden model) is ``test_router_verilator.py``.
"""

import random

import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.banked import BankedMemory


@pytest.mark.parametrize("depth, bank_depth, banks", [
    (64, None, 1), (64, 256, 1), (64, 16, 4), (48, 16, 3), (40, 16, 3), (1024, 256, 4),
])
def test_reads_follow_the_contract(depth, bank_depth, banks):
    dut = BankedMemory(10, depth, bank_depth=bank_depth)
    assert dut.banks == banks
    rng = random.Random(f"{depth}-{bank_depth}")
    model = [0] * depth
    checked = []

    async def bench(ctx):
        addr, word = 0, None          # the address held; the word a read last returned
        for clock in range(1500):
            load, en, w_en = rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.4
            addr_next, w_addr = rng.randrange(depth), rng.randrange(depth)
            w_data = rng.randrange(1 << 10)
            ctx.set(dut.addr_next, addr_next)
            ctx.set(dut.addr_load, load)
            ctx.set(dut.en, en)
            ctx.set(dut.w_en, w_en)
            ctx.set(dut.w_addr, w_addr)
            ctx.set(dut.w_data, w_data)
            assert ctx.get(dut.addr) == addr, f"clock {clock}"
            if en:
                word = model[addr]                    # read before this clock's write
            if w_en:
                model[w_addr] = w_data
            if load:
                addr = addr_next
            await ctx.tick()
            if word is not None:
                assert ctx.get(dut.data) == word, f"clock {clock}"
                checked.append(clock)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(checked) > 1400


@pytest.mark.parametrize("args, kwargs, message", [
    ((0, 64), {}, "width must be a positive integer, not 0"),
    ((8, 0), {}, "depth must be a positive integer, not 0"),
    ((8, 64), {"bank_depth": 100}, "power of two of at least 2, not 100"),
    ((8, 64), {"bank_depth": 1}, "power of two of at least 2, not 1"),
])
def test_bad_parameters_are_named(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        BankedMemory(*args, **kwargs)
