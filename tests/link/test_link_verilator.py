"""Pin-level fuzz of the receive and transmit path under Verilator (``linkloop.Loopback``).

10,000 frames, a third of them corrupted (bit flips, lost and extra bytes, truncation, bad CRC,
lying length, too long, garbage), then long runs of random bytes each followed by one valid
frame, go in on ``rx`` from an independent line model whose baud is 1.5% slow. Every valid frame
must come back out on ``tx`` exactly once and in order (checked with the ``cobs`` package and
zlib's CRC-32), every corrupted one must be counted and never passed on, and nothing may
overflow.
"""

import logging
import random
import zlib

import pytest
from cobs import cobs
from linkfuzz import RefFrame, fuzz_stream, ref_encode

from spikeforge.toolchain import verilator_available

pytestmark = [pytest.mark.verilator, pytest.mark.slow,
              pytest.mark.skipif(not verilator_available(), reason="needs Verilator")]

log = logging.getLogger(__name__)

N_FRAMES = 10_000
MAX_PAYLOAD = 256
CPB = 4


def parse_output(data):
    frames = []
    for piece in data.split(b"\x00")[:-1]:
        body = cobs.decode(piece)
        assert zlib.crc32(body[:-4]) == int.from_bytes(body[-4:], "little")
        assert int.from_bytes(body[3:5], "little") == len(body) - 9
        frames.append(RefFrame(body[0], body[1], body[2], body[5:-4]))
    return frames


def test_loopback_fuzz_10000_frames_and_random_bytes():
    from linkloop import LoopRun

    wire, expected, bad = fuzz_stream(77, N_FRAMES, MAX_PAYLOAD, bad_fraction=0.33)
    rng = random.Random(78)
    tail = bytearray()
    for k in range(5):                     # long runs of random bytes, then one good frame
        tail += rng.randbytes(20_000)
        frame = RefFrame(1, k, 0x82, rng.randbytes(rng.randrange(MAX_PAYLOAD)))
        tail += b"\x00" + ref_encode(frame)
        expected.append(frame)
    wire += bytes(tail)

    loop = LoopRun(CPB, MAX_PAYLOAD, skew=0.015)
    out, counters, seconds = loop.run(wire)
    clocks = len(wire) * 10 * CPB * 1.015
    log.info("loopback: %d bytes in, %d out, %.1f s, %.2g clocks/s, %s", len(wire), len(out),
             seconds, clocks / seconds, counters)
    got = parse_output(out)
    assert len(got) == len(expected)
    assert got == expected
    assert counters["frames"] == len(expected)
    assert counters["crc_errors"] + counters["frame_errors"] >= bad
    assert counters["crc_errors"] > 100 and counters["frame_errors"] > 1000
    assert counters["overflows"] == counters["uart_errors"] == counters["overruns"] == 0
