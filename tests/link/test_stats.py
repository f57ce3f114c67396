"""The statistics bank: every event counted, reads never torn, ``clear`` only its counters."""

import random

import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.stats import StatsBank


@pytest.mark.parametrize("shared", [0, 64])
def test_stats_bank_counts_every_event_and_reads_whole_values(shared):
    """With ``shared``, another block takes the RAM at random (bursts of up to 11 clocks, as
    the processor's history does) and finds what it wrote."""
    amounts = [1, 1, 2, 8]          # counter 3 carries into its high half-word many times
    dut = StatsBank(amounts, gaps=[4, 40, 4, 4], first_cleared=2, shared=shared,
                    shared_stall=11 if shared else 0)
    rng = random.Random(3)
    expected = [0] * len(amounts)
    checked = []
    history = []                # the counts after each clock
    lent = {}                   # the other block's half-words

    async def bench(ctx):
        last = [-4] * len(amounts)
        asked = None                # (counter, its count when asked)
        check = None
        burst, gap = 0, 0
        for clock in range(8000):
            if shared:
                if burst == 0 and gap == 0 and rng.random() < 0.01:
                    burst, gap = rng.randrange(1, 12), 300    # one command's history at most
                use = burst > 0
                burst, gap = max(burst - 1, 0), max(gap - 1, 0)
                we = use and rng.random() < 0.5
                addr, word = rng.randrange(shared), rng.randrange(1 << 16)
                ctx.set(dut.sh_we, we)
                ctx.set(dut.sh_en, use and not we)
                ctx.set(dut.sh_addr, addr)
                ctx.set(dut.sh_data, word)
                if we:
                    lent[addr] = word
                reading = addr if use and not we else None
            for k, w in enumerate(amounts):
                # the fastest a source may be: counter 1 an event every 40 clocks at most, the
                # others every 4
                amount = 0
                if clock - last[k] >= (40 if k == 1 else 4) and clock < 7800:
                    amount = rng.choice([0, 1, (1 << w) - 1])
                ctx.set(getattr(dut, f"inc{k}"), amount)
                if amount:
                    last[k] = clock
                    expected[k] += amount
            clear = clock in (3000, 5000)
            ctx.set(dut.clear, clear)
            if clear:
                expected[2:] = [0] * (len(amounts) - 2)
            history.append(list(expected))
            if asked is None and check is None and clock % 97 == 0:
                # events may still wait for the engine: at most a round of them
                k = rng.randrange(len(amounts))
                asked = (k, history[clock - dut.round][k] if clock >= dut.round else 0)
                ctx.set(dut.rd_req, 1)
                ctx.set(dut.rd_index, asked[0])
            await ctx.tick()
            if shared:
                if reading is not None:     # the read port's data after the clock
                    assert ctx.get(dut.sh_q) == lent.get(reading, 0)
            if check is not None:
                k, low, clock_asked = check
                value = ctx.get(dut.value)
                # whole: no less than a round before it was asked, no more than counted now
                if k < 2 or not any(clock_asked - dut.round <= c <= clock for c in (3000, 5000)):
                    assert low <= value <= expected[k], (k, low, value, expected[k], clock)
                checked.append(k)
                check = None
            if asked is not None and ctx.get(dut.rd_done):
                ctx.set(dut.rd_req, 0)
                check = (asked[0], asked[1], clock)
                asked = None
        ctx.set(dut.rd_req, 0)
        if shared:
            ctx.set(dut.sh_we, 0)
            ctx.set(dut.sh_en, 0)
        await ctx.tick().repeat(100)
        for k in range(len(amounts)):
            ctx.set(dut.rd_req, 1)
            ctx.set(dut.rd_index, k)
            await ctx.tick().until(dut.rd_done)
            ctx.set(dut.rd_req, 0)
            await ctx.tick()
            assert ctx.get(dut.value) == expected[k], k
        assert expected[3] > 1 << 16 and set(checked) == set(range(len(amounts)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
