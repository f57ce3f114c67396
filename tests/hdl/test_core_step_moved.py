"""The core's ``step_moved``, in Amaranth's simulator: high on the clocks after which ``step``
was written, by the end of a timestep or by the memory port (also with the value it had), so
on every clock after which it changed (the SoC's copy of ``step`` is a clock behind, and the
output buffer's ``room`` takes 0 on such a clock instead of comparing the two)."""

import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.core import Core
from spikeforge.image import REGISTER_FIELDS, CoreConfig
from spikeforge.memmap import Region

CONFIG = CoreConfig(n_neurons=8, n_axons=4, weight_bits=4, delay_bits=1, lanes=2, plastic=True,
                    n_profiles=1)


@pytest.mark.parametrize("pipeline", ["long", "short"])
def test_step_moved_follows_step(pipeline):
    dut = Core(CONFIG, update_pipeline=pipeline)
    mm = dut.memmap
    step_index = list(REGISTER_FIELDS(CONFIG)).index("step")
    seen = {"moved": 0, "done": 0, "clocks": 0}

    async def watch(ctx):
        last = 0                        # the step register's reset value
        async for _, _, step, moved, done in ctx.tick().sample(dut.step, dut.step_moved,
                                                              dut.done):
            # sampled just before the edge: ``moved`` is the flip-flop of the edge before
            assert moved or step == last, (step, last)
            seen["moved"] += moved
            seen["done"] += done
            seen["clocks"] += 1
            last = step

    async def bench(ctx):
        ctx.set(dut.mem_rsp.ready, 1)
        for value in (5, 5, 9):
            ctx.set(dut.mem_req.payload.addr, (Region.REGISTERS << mm.index_bits) | step_index)
            ctx.set(dut.mem_req.payload.write, 1)
            ctx.set(dut.mem_req.payload.data, value)
            ctx.set(dut.mem_req.valid, 1)
            await ctx.tick().until(dut.mem_req.ready)
            ctx.set(dut.mem_req.valid, 0)
            await ctx.tick().repeat(4)
            assert ctx.get(dut.step) == value
        for _ in range(3):              # three timesteps: 9 -> 12
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            await ctx.tick().until(dut.done)
            await ctx.tick().repeat(3)
        assert ctx.get(dut.step) == 12

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(watch)
    sim.add_testbench(bench)
    sim.run_until(2e-3)
    # a clock for each of the three writes and the three timesteps, and no other
    assert seen["moved"] == 6 and seen["done"] == 3
