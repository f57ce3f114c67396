"""The stepper's input queue: 16-bit words, steps kept as the chunks that change (one to three
words), pushed like the command processor pushes them (a STEP, then an axon every other clock
at best), fed to the core step by step; as on an iCE40 (one block RAM, pushes written at once)
and elsewhere (banks of LUT RAM, registered pushes)."""

import random

import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.stepper import EntryKind, Stepper


async def _push_frame(ctx, dut, step, axons, end=True, abort=False, gap=2):
    ctx.set(dut.push.valid, 1)
    ctx.set(dut.push.payload.kind, EntryKind.STEP)
    ctx.set(dut.push.payload.value, step)
    await ctx.tick()
    ctx.set(dut.push.valid, 0)
    if axons:
        await ctx.tick()                      # the processor's INPUT state reads a byte first
    for a in axons:
        for _ in range(gap - 1):
            await ctx.tick()
        ctx.set(dut.push.valid, 1)
        ctx.set(dut.push.payload.kind, EntryKind.AXON)
        ctx.set(dut.push.payload.value, a)
        await ctx.tick()
        ctx.set(dut.push.valid, 0)
    ctx.set(dut.abort if abort else dut.commit, 1)
    ctx.set(dut.commit_step, step)
    ctx.set(dut.commit_end, end)
    await ctx.tick()
    ctx.set(dut.abort, 0)
    ctx.set(dut.commit, 0)
    for _ in range(6):                        # STORE, DRAIN, ... before the next frame
        await ctx.tick()


def _run(frames, first_step, n_steps, depth=64, gap=2, banks=1):
    """Push ``frames`` (step, axons, end, abort), then run ``n_steps`` steps from
    ``first_step``; returns {step: axons fed} and the last ``free``."""
    dut = Stepper(9, input_depth=depth, queue_banks=banks, fast=banks > 1)
    fed = {}
    out = {}

    async def bench(ctx):
        ctx.set(dut.room, 1)
        ctx.set(dut.core_step, first_step)
        ctx.set(dut.spike_in.ready, 1)
        for step, axons, end, abort in frames:
            await _push_frame(ctx, dut, step, axons, end, abort, gap)
        out["free"] = ctx.get(dut.free)
        ctx.set(dut.run_steps, n_steps)
        ctx.set(dut.run, 1)
        await ctx.tick()
        ctx.set(dut.run, 0)
        t = first_step
        for _ in range(n_steps):
            cur = []
            while not ctx.get(dut.start):
                if ctx.get(dut.spike_in.valid):
                    cur.append(ctx.get(dut.spike_in.payload))
                await ctx.tick()
            fed[t] = cur
            await ctx.tick()
            ctx.set(dut.core_done, 1)
            t += 1
            ctx.set(dut.core_step, t)
            await ctx.tick()
            ctx.set(dut.core_done, 0)
        out["left"] = ctx.get(dut.steps_left)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run_until(1e-2)
    return fed, out


@pytest.mark.parametrize("banks", [1, 4])
@pytest.mark.parametrize("base", [0, 8190, (1 << 26) - 3, 0xFFFFFFF0 - 8])
def test_steps_across_chunks(base, banks):
    # steps that cross the 13- and 26-bit chunk boundaries, several frames per step
    steps = [base + d for d in (0, 1, 1, 3, 5, 6)]
    frames = []
    want = {}
    rng = random.Random(base)
    for i, s in enumerate(steps):
        axons = [rng.randrange(512) for _ in range(rng.randrange(0, 4))]
        end = i + 1 == len(steps) or steps[i + 1] != s
        frames.append((s, axons, end, False))
        want.setdefault(s, []).extend(axons)
    fed, _ = _run(frames, base, 7, banks=banks)
    assert {t: a for t, a in fed.items() if a} == {t: a for t, a in want.items() if a}


@pytest.mark.parametrize("banks", [1, 4])
def test_far_jumps_and_abort(banks):
    frames = [(5, [1, 2], True, False),
              (5 + (1 << 27) + 12345, [3], True, True),    # refused: nothing of it is seen
              (6 + (1 << 13), [4, 5], True, False),        # a two-word step
              (7 + (1 << 30), [6], True, False)]           # a three-word step
    # the core's step jumps like an upload would move it: run each queued step in turn
    fed, _ = _run(frames[:2], 5, 1, banks=banks)
    assert fed == {5: [1, 2]}
    for gap in (2, 1):                                     # pushes every clock still queue
        fed_a, out = _run(frames, 6 + (1 << 13), 1, gap=gap, banks=banks)
        assert fed_a == {6 + (1 << 13): [1, 2, 4, 5]}      # step 5's too: it is past
    fed_b, _ = _run(frames, 7 + (1 << 30), 1, banks=banks)
    assert fed_b == {7 + (1 << 30): [1, 2, 4, 5, 6]}


@pytest.mark.parametrize("banks", [1, 4])
def test_same_step_again_keeps_end(banks):
    # an empty INPUT committed on the clock after its STEP, for a step already complete
    fed, _ = _run([(3, [1], True, False), (3, [], False, False)], 3, 1, banks=banks)
    assert fed == {3: [1]}


def test_free_keeps_two_in_reserve():
    _, out = _run([(3, list(range(10)), True, False)], 0, 0, depth=16)
    assert out["free"] == 16 - 2 - 11
