"""The PRNG logic of ``hdl/prng.py`` against ``sim/prng.py`` in Amaranth's simulator."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from spikeforge.hdl.prng import mix32, rand_word
from spikeforge.sim.prng import mix32 as mix32_ref
from spikeforge.sim.prng import rand, step_key


def _evaluate(build, inputs):
    """Evaluate combinational logic ``build(m, *signals) -> out`` on rows of ``inputs``."""
    m = Module()
    ins = [Signal(32, name=f"in{k}") for k in range(len(inputs[0]))]
    out = build(m, *ins)
    results = []

    async def bench(ctx):
        for row in inputs:
            for sig, value in zip(ins, row, strict=True):
                ctx.set(sig, int(value))
            results.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return results


def test_mix32_matches_reference():
    rng = np.random.default_rng(1)
    xs = [0, 1, 0xFFFFFFFF, 0x9E3779B9, *rng.integers(0, 1 << 32, 200).tolist()]
    got = _evaluate(lambda m, x: mix32(m, x), [[x] for x in xs])
    assert got == [int(mix32_ref(x)) for x in xs]


def test_rand_matches_reference_for_every_kind():
    rng = np.random.default_rng(2)
    rows = []
    for _ in range(150):
        seed, t = (int(v) for v in rng.integers(0, 1 << 32, 2))
        kind, a, n = int(rng.integers(0, 3)), int(rng.integers(0, 1024)), int(rng.integers(0, 1024))
        rows.append((seed, t, kind, a, n))
    rows.append((0xFFFFFFFF, 0xFFFFFFFF, 2, 1023, 1023))

    def build(m, key, a, n, kind):
        out = Signal(32)
        words = [rand_word(k, a[:10], n[:10]) for k in range(3)]
        word = Signal(32)
        with m.Switch(kind):
            for k in range(3):
                with m.Case(k):
                    m.d.comb += word.eq(words[k])
        m.d.comb += out.eq(mix32(m, key ^ word))
        return out

    inputs = [(int(step_key(s, t)), a, n, k) for s, t, k, a, n in rows]
    got = _evaluate(build, inputs)
    assert got == [int(rand(s, t, k, a, n)) for s, t, k, a, n in rows]


@pytest.mark.parametrize("choice", [False, True])
def test_pipelined_mix32_matches_reference_two_clocks_later(choice):
    """``mix32_pipelined`` takes a new input every clock; its output is the mix of the input of
    ``MIX_LATENCY`` clocks earlier. With a choice of two inputs (``alt``, ``use_alt``), the
    mix of the chosen one, whichever is chosen on each clock."""
    from spikeforge.hdl.prng import MIX_LATENCY, mix32_pipelined

    rng = np.random.default_rng(3)
    xs = [0, 0xFFFFFFFF, 0x9E3779B9, *rng.integers(0, 1 << 32, 100).tolist()]
    decoys = rng.integers(0, 1 << 32, len(xs)).tolist()
    picks = rng.integers(0, 2, len(xs)).tolist() if choice else [0] * len(xs)
    m = Module()
    x, alt, use_alt = Signal(32), Signal(32), Signal()
    out = (mix32_pipelined(m, x, alt=alt, use_alt=use_alt) if choice
           else mix32_pipelined(m, x))
    got = []

    async def bench(ctx):
        for k in range(len(xs) + MIX_LATENCY):
            pick = picks[k] if k < len(xs) else 0
            value = xs[k] if k < len(xs) else 0
            ctx.set(use_alt, pick)
            decoy = decoys[k] if k < len(xs) else 0
            ctx.set(x, decoy if pick else value)
            ctx.set(alt, value if pick else decoy)
            if k >= MIX_LATENCY:
                got.append(ctx.get(out))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [int(mix32_ref(v)) for v in xs]


def test_serial_mix32_matches_reference():
    """``SerialMix32``: ``busy`` for ``MIX_SERIAL_CLOCKS`` clocks after ``start``, then ``out``
    is ``mix32`` of the input, and stays so until the next ``start``."""
    from spikeforge.hdl.prng import MIX_SERIAL_CLOCKS, SerialMix32

    rng = np.random.default_rng(4)
    xs = [0, 1, 0xFFFFFFFF, 0x9E3779B9, *rng.integers(0, 1 << 32, 60).tolist()]
    dut = SerialMix32()
    got, clocks = [], []

    async def bench(ctx):
        for x in xs:
            ctx.set(dut.x, int(x))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.x, 0)
            k = 0
            while ctx.get(dut.busy):
                await ctx.tick()
                k += 1
            clocks.append(k)
            await ctx.tick()                    # held while not started again
            got.append(ctx.get(dut.out))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [int(mix32_ref(x)) for x in xs]
    assert set(clocks) == {MIX_SERIAL_CLOCKS}
