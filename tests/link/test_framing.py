# amaranth: UnusedElaboratable=no
"""COBS, CRC and frame (de)framing blocks in Amaranth's simulator, against the ``cobs`` and
``crc`` packages (through ``linkfuzz.ref_encode``) and the host codec."""

import random

import pytest
from amaranth.sim import Simulator
from cobs import cobs
from linkfuzz import RefFrame, fuzz_stream, ref_encode

from spikeforge import protocol
from spikeforge.hdl.framing import CobsDecoder, CobsEncoder, CRCRegister, Deframer, Framer
from spikeforge.host.link import Frame, encode_frame


def simulate(dut, *benches, processes=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in benches:
        sim.add_testbench(bench)
    for proc in processes:
        sim.add_process(proc)
    sim.run()


async def put(ctx, stream, items, rng=None, **fields):
    """Send ``items`` on ``stream`` (a dict item sets payload fields), idling at random."""
    for item in items:
        while rng is not None and rng.random() < 0.3:
            await ctx.tick()
        ctx.set(stream.valid, 1)
        if isinstance(item, dict):
            for name, value in item.items():
                ctx.set(getattr(stream.payload, name), value)
        else:
            ctx.set(stream.payload, item)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)


def collect(stream, sink, rng=None, fields=None):
    """A process that takes everything from ``stream`` (with random back-pressure)."""
    async def proc(ctx):
        ctx.set(stream.ready, 1)
        signals = [getattr(stream.payload, f) for f in fields] if fields else [stream.payload]
        async for _, _, valid, ready, *values in ctx.tick().sample(stream.valid, stream.ready,
                                                                    *signals):
            if valid and ready:
                sink.append(tuple(values) if fields else values[0])
            if rng is not None:
                ctx.set(stream.ready, rng.random() < 0.7)
    return proc


def special_frames(rng):
    frames = [b"\x00", b"\x01", b"\x00\x00", bytes(range(1, 255)), bytes(range(1, 255)) + b"\x00",
              bytes([7]) * 253, bytes([7]) * 255, bytes([9]) * 508, bytes([9]) * 509,
              bytes([5]) * 254 + bytes([0]) + bytes([6]) * 254]
    frames += [bytes(rng.choice([0, rng.randrange(256)]) for _ in range(rng.randrange(1, 600)))
               for _ in range(6)]
    return frames


def test_crc_register_matches_zlib_and_keeps_two_streams():
    """Two byte streams' CRCs in one register, each set back before its bytes and read after
    them (as the firmware link's window is used): both equal ``protocol.crc32``, and a frame
    followed by its CRC leaves the residue."""
    rng = random.Random(3)
    streams = [bytes(rng.randrange(256) for _ in range(n)) for n in (37, 50)]
    residue = protocol.crc32(streams[0] + protocol.crc32(streams[0]).to_bytes(4, "little"))
    dut = CRCRegister()
    seen = {}

    async def bench(ctx):
        saved = [0xFFFFFFFF, 0xFFFFFFFF]
        pos = [0, 0]
        while pos != [len(s) for s in streams]:
            k = rng.randrange(2)
            n = min(rng.randrange(1, 9), len(streams[k]) - pos[k])
            ctx.set(dut.load, 1)
            ctx.set(dut.value, saved[k])
            await ctx.tick()
            ctx.set(dut.load, 0)
            for b in streams[k][pos[k]:pos[k] + n]:
                ctx.set(dut.feed, 1)
                ctx.set(dut.byte, b)
                await ctx.tick()
                ctx.set(dut.feed, 0)
                await ctx.tick().repeat(8)      # a processor's next store comes later still
            pos[k] += n
            saved[k] = ctx.get(dut.crc)
        seen["crcs"] = [s ^ 0xFFFFFFFF for s in saved]
        ctx.set(dut.load, 1)
        ctx.set(dut.value, 0xFFFFFFFF)
        await ctx.tick()
        ctx.set(dut.load, 0)
        for b in streams[0] + protocol.crc32(streams[0]).to_bytes(4, "little"):
            ctx.set(dut.feed, 1)
            ctx.set(dut.byte, b)
            await ctx.tick()
            ctx.set(dut.feed, 0)
            await ctx.tick().repeat(8)
        seen["residue"] = ctx.get(dut.crc)

    simulate(dut, bench)
    assert seen["crcs"] == [protocol.crc32(s) for s in streams]
    assert seen["residue"] == residue ^ 0xFFFFFFFF == 0xDEBB20E3


def test_cobs_encoder_matches_the_cobs_package():
    rng = random.Random(1)
    frames = special_frames(rng)
    items = [dict(data=b, last=int(k == len(f) - 1)) for f in frames for k, b in enumerate(f)]
    dut, got = CobsEncoder(), []

    async def bench(ctx):
        await put(ctx, dut.i, items, rng)
        for _ in range(800):
            await ctx.tick()

    simulate(dut, bench, processes=[collect(dut.o, got, random.Random(2))])
    assert bytes(got) == b"".join(cobs.encode(f) + b"\x00" for f in frames)


def test_cobs_decoder_matches_the_cobs_package():
    rng = random.Random(3)
    frames = special_frames(rng)
    wire = b"\x00\x00" + b"".join(cobs.encode(f) + b"\x00" for f in frames)
    wire += b"\x05\x01\x02\x00"          # a block cut short by the delimiter
    dut, got = CobsDecoder(), []

    async def bench(ctx):
        await put(ctx, dut.i, wire, rng)
        for _ in range(8):
            await ctx.tick()

    simulate(dut, bench, processes=[collect(dut.o, got, random.Random(4),
                                            fields=["data", "end", "bad", "empty"])])
    decoded, cur = [], bytearray()
    for data, end, bad, empty in got:
        if end:
            if not empty:
                decoded.append((bytes(cur), bad))
            cur.clear()
        else:
            cur.append(data)
    assert decoded[:-1] == [(f, 0) for f in frames]
    assert decoded[-1] == (b"\x01\x02", 1)


def test_framer_matches_the_host_codec_and_reference():
    rng = random.Random(5)
    frames = [RefFrame(protocol.VERSION, rng.randrange(256), rng.randrange(256),
                       bytes(rng.choice([0, rng.randrange(256)]) for _ in range(n)))
              for n in [0, 1, 2, 250, 251, 300, 17]]
    dut, got = Framer(), []

    async def headers(ctx):
        await put(ctx, dut.header, [dict(seq=f.seq, cmd=f.cmd, length=len(f.payload),
                                         version=0x55) for f in frames], rng)

    async def payloads(ctx):
        await put(ctx, dut.payload, b"".join(f.payload for f in frames), rng)
        for _ in range(1500):
            await ctx.tick()

    simulate(dut, headers, payloads, processes=[collect(dut.o, got, random.Random(6))])
    assert bytes(got) == b"".join(ref_encode(f, reference=True) for f in frames)
    assert bytes(got) == b"".join(encode_frame(Frame(f.seq, f.cmd, f.payload)) for f in frames)


_PULSES = {"frames": "frame", "crc_errors": "crc_error", "frame_errors": "frame_error",
           "overflows": "overflow"}


def count_pulses(dut, counters):
    """A process that counts the deframer's pulses into ``counters`` (the SoC's StatsBank
    counts them on the board)."""
    counters.update(dict.fromkeys(_PULSES, 0))

    async def process(ctx):
        async for _, _, *pulses in ctx.tick().sample(*(getattr(dut, p) for p in
                                                       _PULSES.values())):
            for name, pulse in zip(_PULSES, pulses, strict=True):
                counters[name] += pulse
    return process


def run_deframer(wire, dut, rng):
    got_headers, got_bytes, counters = [], [], {}

    async def bench(ctx):
        await put(ctx, dut.i, wire, rng)
        await ctx.tick().repeat(4 * dut.max_payload + 50)      # let the last frames drain

    simulate(dut, bench,
             processes=[collect(dut.header, got_headers, random.Random(7),
                                fields=["version", "seq", "cmd", "length"]),
                        collect(dut.payload, got_bytes, random.Random(8)),
                        count_pulses(dut, counters)])
    frames, pos = [], 0
    for version, seq, cmd, length in got_headers:
        frames.append(RefFrame(version, seq, cmd, bytes(got_bytes[pos:pos + length])))
        pos += length
    assert pos == len(got_bytes)
    return frames, counters


def test_deframer_counts_each_kind_of_error_exactly():
    max_payload = 64
    good = RefFrame(1, 3, 4, bytes(range(40)))
    body = bytearray(cobs.decode(ref_encode(good, reference=True)[:-1]))
    body[7] ^= 0x10
    items = [
        ref_encode(good),
        cobs.encode(bytes(body)) + b"\x00",                              # CRC error
        ref_encode(good, length=41),                                     # length mismatch
        ref_encode(RefFrame(1, 1, 1, bytes(max_payload + 1))),           # too long
        b"\x07\x01\x02\x00",                                             # COBS block cut short
        b"\x02\x01\x00",                                                 # too short
        b"\x00\x00",                                                     # empty: ignored
        ref_encode(RefFrame(2, 5, 6, b"")),                              # other version
        ref_encode(RefFrame(1, 9, 9, bytes([0xAB]) * max_payload)),     # longest allowed
    ]
    frames, counters = run_deframer(b"".join(items), Deframer(max_payload=max_payload),
                                    random.Random(9))
    assert frames == [good, RefFrame(2, 5, 6, b""), RefFrame(1, 9, 9, bytes([0xAB]) * 64)]
    assert counters == dict(frames=3, crc_errors=1, frame_errors=4, overflows=0)


def test_deframer_fuzz_short():
    wire, expected, bad = fuzz_stream(11, 150, 48, versions=(1, 2))
    frames, counters = run_deframer(wire, Deframer(max_payload=48), random.Random(12))
    assert frames == expected
    assert counters["frames"] == len(expected)
    assert counters["overflows"] == 0
    assert counters["crc_errors"] + counters["frame_errors"] >= bad


def test_deframer_rejects_bad_sizes():
    with pytest.raises(ValueError, match="max payload must be from 1 to 1024, not 0"):
        Deframer(max_payload=0)
    with pytest.raises(ValueError, match="buffer bytes must be a power of two of at least 69"):
        Deframer(max_payload=64, buffer_bytes=96)


def test_deframer_drops_a_frame_that_finds_the_ring_full_and_recovers():
    dut = Deframer(max_payload=32, buffer_bytes=64)
    a, b, c, d = (RefFrame(1, k, 7, bytes([k + 1]) * n) for k, n in enumerate([25, 25, 10, 20]))
    got, counters = [], {}

    async def bench(ctx):
        # Nobody reads while A, B and C arrive: A and B fill 60 of 64 bytes (headers and
        # payloads), C finds no room.
        await put(ctx, dut.i, ref_encode(a) + ref_encode(b) + ref_encode(c))
        await ctx.tick().repeat(50)         # the CRC takes a byte in 8 clocks
        assert counters["overflows"] == 1 and counters["frames"] == 2
        ctx.set(dut.payload.ready, 1)
        for _ in range(2):
            ctx.set(dut.header.ready, 1)
            (length,) = await ctx.tick().sample(dut.header.p.length).until(dut.header.valid)
            ctx.set(dut.header.ready, 0)
            data = []
            while len(data) < length:
                _, _, valid, byte = await ctx.tick().sample(dut.payload.valid, dut.payload.p)
                if valid:
                    data.append(byte)
            got.append(bytes(data))
        await put(ctx, dut.i, ref_encode(d))
        await ctx.tick().repeat(50)         # the CRC, then the header out of the ring
        assert counters["frames"] == 3 and counters["overflows"] == 1
        assert ctx.get(dut.header.valid) and ctx.get(dut.header.p.length) == 20

    simulate(dut, bench, processes=[count_pulses(dut, counters)])
    assert got == [a.payload, b.payload]
