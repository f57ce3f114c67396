"""Fuzz streams for the deframers: valid frames mixed with corrupted frames and garbage.

Frames are built here with the reference packages (``cobs``, and ``crc`` when ``reference``
is set; the pure-Python ``crc`` package runs ~1 MB/min, so bulk fuzzing uses ``zlib``, which
``test_crc_matches_the_crc_package`` ties to it), not with the project's codec. Every
corrupted item is followed by a delimiter, as a sender does after an error; the valid frames
of a stream are its expected output, in order.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

from cobs import cobs
from crc import Calculator, Crc32

__all__ = ["RefFrame", "ref_encode", "fuzz_stream", "KINDS"]

_CRC = Calculator(Crc32.CRC32, optimized=True)

KINDS = ("flip", "delete", "insert", "truncate", "badcrc", "badlength", "toolong", "garbage")


@dataclass(frozen=True)
class RefFrame:
    version: int
    seq: int
    cmd: int
    payload: bytes


def ref_body(frame, length=None, reference=False):
    length = len(frame.payload) if length is None else length
    head = bytes([frame.version, frame.seq, frame.cmd]) + length.to_bytes(2, "little")
    body = head + frame.payload
    crc = _CRC.checksum(body) if reference else zlib.crc32(body)
    return body + crc.to_bytes(4, "little")


def ref_encode(frame, length=None, reference=False):
    """Wire bytes of ``frame`` (``length`` overrides the header's length field)."""
    return cobs.encode(ref_body(frame, length, reference)) + b"\x00"


def _payload(rng, max_payload):
    n = rng.choice([0, 1, rng.randrange(max_payload + 1), rng.randrange(min(64, max_payload))])
    style = rng.random()
    if style < 0.2:
        return bytes(n)                                          # all zeros
    if style < 0.4:
        return rng.randbytes(n).replace(b"\x00", b"\x01")      # no zeros: 0xFF blocks
    return rng.randbytes(n)


def random_frame(rng, max_payload, version=1):
    return RefFrame(version, rng.randrange(256), rng.randrange(256), _payload(rng, max_payload))


def corrupt(rng, kind, frame, max_payload):
    """Wire bytes of a corrupted version of ``frame`` (ends with a delimiter)."""
    wire = bytearray(ref_encode(frame)[:-1])
    if kind == "flip":
        k = rng.randrange(len(wire))
        wire[k] ^= 1 << rng.randrange(8)
    elif kind == "delete":
        del wire[rng.randrange(len(wire))]
    elif kind == "insert":
        wire.insert(rng.randrange(len(wire) + 1), rng.randrange(256))
    elif kind == "truncate":
        wire = wire[:rng.randrange(1, len(wire))]
    elif kind == "badcrc":
        body = bytearray(ref_body(frame))
        body[-1 - rng.randrange(4)] ^= 1 << rng.randrange(8)
        wire = bytearray(cobs.encode(bytes(body)))
    elif kind == "badlength":
        wrong = (len(frame.payload) + rng.choice([-1, 1, 2, 300])) % 65536
        wire = bytearray(ref_encode(frame, wrong)[:-1])
    elif kind == "toolong":
        long = RefFrame(frame.version, frame.seq, frame.cmd,
                        rng.randbytes(max_payload + rng.randrange(1, 9)))
        wire = bytearray(ref_encode(long)[:-1])
    elif kind == "garbage":
        wire = bytearray([rng.randrange(1, 256)])          # never only empty frames
        wire += rng.randbytes(rng.randrange(300))
    return bytes(wire) + b"\x00"


def fuzz_stream(seed, n_frames, max_payload, *, bad_fraction=0.3, versions=(1,)):
    """``(stream bytes, expected valid frames, number of corrupted items)``."""
    rng = random.Random(seed)
    out, expected, bad = bytearray(), [], 0
    for _ in range(n_frames):
        frame = random_frame(rng, max_payload, rng.choice(versions))
        if rng.random() < bad_fraction:
            out += corrupt(rng, rng.choice(KINDS), frame, max_payload)
            bad += 1
        else:
            if rng.random() < 0.1:
                out += b"\x00"                    # an empty frame is ignored
            out += ref_encode(frame)
            expected.append(frame)
    return bytes(out), expected, bad
