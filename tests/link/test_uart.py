# amaranth: UnusedElaboratable=no
"""UART at the pin level against an independent bit-level model (Amaranth simulator).

The model here writes and reads the line as a list of levels, one per clock, from the 8N1
definition (start 0, eight data bits LSB first, stop 1) with a chosen bit time that may differ
from the receiver's by a few percent, so it shares no code or timing with ``hdl.uart``.
"""

import random

import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.uart import UARTReceiver, UARTTransmitter, clocks_per_bit


def line_levels(items, bit_clocks, idle=3):
    """Line levels, one per clock, sending ``items``: a byte, ``("bad", byte)`` (stop bit 0),
    ``("glitch", clocks)`` (a short low pulse), ``("break", bits)`` or ``("idle", clocks)``."""
    levels = [1] * idle
    t = 0.0

    def bits(seq):
        nonlocal t
        for b in seq:
            t += bit_clocks
            levels.extend([b] * (round(t) - len(levels) + idle))

    for item in items:
        t = len(levels) - idle
        if isinstance(item, int):
            bits([0, *((item >> k) & 1 for k in range(8)), 1])
        elif item[0] == "bad":
            bits([0, *((item[1] >> k) & 1 for k in range(8)), 0, 1, 1])
        elif item[0] == "glitch":
            levels.extend([0] * item[1] + [1] * 4)
        elif item[0] == "break":
            bits([0] * item[1] + [1, 1])
        elif item[0] == "idle":
            levels.extend([1] * item[1])
    return levels + [1] * (4 * int(bit_clocks) + 8)


def run_rx(levels, cpb):
    dut = UARTReceiver(cpb, fifo_depth=4)
    got, errors = [], [0]

    async def drive(ctx):
        ctx.set(dut.o.ready, 1)
        for level in levels:
            ctx.set(dut.rx, level)
            await ctx.tick()

    async def watch(ctx):
        async for _, _, valid, payload, error in ctx.tick().sample(dut.o.valid, dut.o.payload,
                                                                   dut.error):
            if valid:
                got.append(payload)
            errors[0] += error

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(drive)
    sim.add_process(watch)
    sim.run()
    return got, errors[0]


@pytest.mark.parametrize("cpb", [4, 16])
@pytest.mark.parametrize("skew", [-0.025, 0.0, 0.025])
def test_receiver_decodes_bytes_at_skewed_baud(cpb, skew):
    rng = random.Random(cpb * 100 + int(skew * 1000))
    data = [0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(40)]
    got, errors = run_rx(line_levels(data, cpb * (1 + skew)), cpb)
    assert got == data
    assert errors == 0


def test_receiver_flags_framing_errors_glitches_and_breaks_and_recovers():
    cpb = 8
    items = [0x12, ("bad", 0x34), 0x56, ("glitch", 3), 0x78, ("break", 25), 0x9A,
             ("idle", 5), 0xBC]
    got, errors = run_rx(line_levels(items, cpb), cpb)
    # The byte with a low stop bit and the break are dropped and counted; a glitch shorter
    # than half a bit is ignored; every good byte after them is received intact.
    assert got == [0x12, 0x56, 0x78, 0x9A, 0xBC]
    assert errors == 2


def sample_line(levels, bit_clocks):
    """Independent 8N1 decoder: finds start edges and samples mid-bit."""
    out, k = [], 0
    while k < len(levels):
        if levels[k] == 0:
            mid = [levels[min(k + int((j + 0.5) * bit_clocks), len(levels) - 1)]
                   for j in range(10)]
            assert mid[0] == 0 and mid[9] == 1, f"bad frame at clock {k}: {mid}"
            out.append(sum(b << j for j, b in enumerate(mid[1:9])))
            k += int(9.5 * bit_clocks)
        else:
            k += 1
    return out


@pytest.mark.parametrize("cpb", [4, 7])
def test_transmitter_timing_and_bytes(cpb):
    rng = random.Random(cpb)
    data = [0x00, 0xFF] + [rng.randrange(256) for _ in range(30)]
    dut = UARTTransmitter(cpb)
    levels = []

    async def feed(ctx):
        for k, byte in enumerate(data):
            if k == 10:                       # a pause between bytes
                for _ in range(3 * cpb):
                    await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, byte)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
        await ctx.tick().until(~dut.busy)
        for _ in range(2 * cpb):
            await ctx.tick()

    async def watch(ctx):
        async for _, _, tx in ctx.tick().sample(dut.tx):
            levels.append(tx)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_process(watch)
    sim.run()
    assert sample_line(levels, cpb) == data
    # Back to back, every bit lasts exactly cpb clocks: the first ten bytes (sent before the
    # pause) match the ideal waveform clock for clock.
    start = levels.index(0)
    ideal = [b for byte in data[:10]
             for b in [0, *((byte >> k) & 1 for k in range(8)), 1] for _ in range(cpb)]
    assert levels[start:start + len(ideal)] == ideal


def test_clocks_per_bit():
    assert clocks_per_bit(48_000_000, 3_000_000) == 16
    assert clocks_per_bit(12_000_000, 115_200) == 104
    with pytest.raises(ValueError, match=r"^baud rate 20000000 is too high \(at most "
                                         r"12000000 at 48 MHz\)$"):
        clocks_per_bit(48_000_000, 20_000_000)
    with pytest.raises(ValueError, match=r"^baud rate 2500000 is off by 4\.0% at 12 MHz"):
        clocks_per_bit(12_000_000, 2_500_000)
    with pytest.raises(ValueError, match="clocks per bit must be an integer of at least 4"):
        UARTReceiver(3)
