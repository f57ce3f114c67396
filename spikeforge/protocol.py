"""The host link protocol, declared once (``docs/protocol.md`` is its prose).

A frame on the wire is ``COBS(header | payload | crc32) 0x00``. The header and every payload are
little-endian byte layouts declared here as ``Layout`` objects; the hardware frame parser reads
field offsets from them, the host codec packs and unpacks with them. This module imports neither
Amaranth nor the host: only ``struct``, ``zlib`` and the neutral memory map.

Sequence rules (what both ends implement):

- Commands (host to board) carry a command sequence number; the board executes a command only
  when its number is the one it expects next, and answers with ``ACK``/``NAK`` echoing it. It keeps
  the replies of the last ``window`` commands and answers a duplicate from them without acting
  again; a number ahead of the expected one is answered ``NAK(SEQUENCE)`` with the expected number.
- After a reset the board is *unsynced*: only ``HELLO`` is executed (any number), which sets the
  expected number and clears the reply history; other commands get ``NAK(NOT_SYNCED)``. A HELLO
  always resynchronises unless it repeats the last one executed (same number and ``client``).
- Output frames (``SPIKES``, ``PROBE_DATA``) carry their own sequence numbers; the host
  acknowledges them cumulatively with ``OUT_ACK`` (never answered). The board resends every
  unacknowledged output frame, oldest first, when no ``OUT_ACK`` arrived for ``out_timeout``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from spikeforge.memmap import TableRegion

__all__ = [
    "VERSION", "MAX_PAYLOAD", "SEQ_MODULO", "MAX_WINDOW", "DELIMITER", "CRC_BYTES",
    "CRC_ALGORITHM", "crc32", "Command", "NakCode", "RunState", "HelloFlags", "StepFlags",
    "Layout", "HEADER", "REQUEST", "REPLY", "NAK_PAYLOAD", "OUTPUT", "word_bytes",
    "memmap_hash", "frame_overhead", "is_duplicate", "link_regions",
]

VERSION = 1              # header byte 0; a board answers another version with NAK(VERSION)
MAX_PAYLOAD = 1024       # protocol cap; a board reports its own (smaller) limit in HELLO
SEQ_MODULO = 256         # sequence numbers are one byte and wrap
MAX_WINDOW = 127         # < SEQ_MODULO / 2, so "already executed" and "ahead" never overlap
DELIMITER = 0x00         # frame delimiter; COBS removes every zero from the frame body
CRC_BYTES = 4

# CRC-32/ISO-HDLC (zlib, Ethernet): the parameters of amaranth.lib.crc.catalog.CRC32_ISO_HDLC
# and crc.Crc32.CRC32. A 32-bit CRC lets a random corruption through with odds 2^-32 per frame,
# so a 10^4-frame fuzz run (or a day at 3 Mbaud) is not expected to see one.
CRC_ALGORITHM = dict(crc_width=32, polynomial=0x04C11DB7, initial_crc=0xFFFFFFFF,
                     reflect_input=True, reflect_output=True, xor_output=0xFFFFFFFF)


def crc32(data):
    """CRC-32/ISO-HDLC of ``data``; appended to a frame little-endian."""
    return zlib.crc32(bytes(data)) & 0xFFFFFFFF


class Command(IntEnum):
    """Header byte 2. Host-to-board commands are below 0x80, board-to-host frames above."""
    HELLO = 0x01
    WRITE = 0x02
    READ = 0x03
    REGION_CRC = 0x04
    RUN = 0x05
    STEP = 0x06
    STOP = 0x07
    INPUT = 0x08
    GENERATORS = 0x09
    PROBE = 0x0A
    TIMER = 0x0B
    STATUS = 0x0C
    RESET = 0x0D
    OUT_ACK = 0x0E       # acknowledges output frames; never answered, takes no command number
    ACK = 0x80
    NAK = 0x81
    SPIKES = 0x82        # output frame: spikes of one step
    PROBE_DATA = 0x83    # output frame: probed words at the end of one step


class NakCode(IntEnum):
    """Why a command was refused (``NAK`` payload byte 1)."""
    VERSION = 1          # header version is not VERSION
    COMMAND = 2          # unknown command code
    LENGTH = 3           # payload length wrong for the command (or too long for the board)
    CORE = 4             # no such core
    REGION = 5           # no such region
    RANGE = 6            # index/count outside the region, or a reply longer than max_payload
    BUSY = 7             # not allowed while running (WRITE, READ, STEP, ...)
    SEQUENCE = 8         # number ahead of the expected one (a frame was lost); resend from it
    NOT_SYNCED = 9       # no HELLO since the last reset
    ARGUMENT = 10        # a field value is out of its range (e.g. step in the past)


class RunState(IntEnum):
    IDLE = 0
    RUNNING = 1
    STEPPING = 2


class HelloFlags(IntFlag):
    LEARNING = 1         # cores are plastic (STDP present)
    GENERATORS = 2       # on-chip Bernoulli input generators present
    TIMER = 4            # step-period timer present
    FIRMWARE = 8         # the link's control is a program: FIRMWARE_WORD_CLOCKS (below)


# A board with ``HelloFlags.FIRMWARE`` (the firmware link: a bit-serial processor carries out the
# commands) takes up to this many of its clocks per memory word of a WRITE, READ or REGION_CRC,
# beyond the line's time: a host waits that much longer for the reply before it resends.
# ``bench/link.py`` measures a REGION_CRC's clocks per word: 1,919 on the SERV link (``tiny-fw``,
# 2026-12-05; 13 on the hardware link), 8.5 times under this.
FIRMWARE_WORD_CLOCKS = 16384


class StepFlags(IntFlag):
    END_OF_STEP = 1      # INPUT: last input frame of the step; SPIKES: last spike frame of it


_FORMAT_BYTES = {"B": 1, "H": 2, "I": 4, "b": 1, "h": 2, "i": 4, "Q": 8}


@dataclass(frozen=True)
class Layout:
    """A little-endian byte layout: fixed fields, then an optional variable-length ``tail``.

    ``fields`` is a tuple of ``(name, struct code)``; ``tail`` is ``None``, a struct code (an
    array of that item, e.g. ``"H"`` for axon numbers) or ``"s"`` (raw bytes, e.g. memory words
    whose size depends on the region).
    """
    name: str
    fields: tuple
    tail: str | None = None
    tail_name: str = "tail"

    @property
    def _struct(self):
        return struct.Struct("<" + "".join(code for _, code in self.fields))

    @property
    def size(self):
        """Bytes of the fixed part."""
        return self._struct.size

    def offsets(self):
        """``{name: (offset, nbytes, signed)}`` of the fixed fields (for the frame parser)."""
        out, pos = {}, 0
        for name, code in self.fields:
            out[name] = (pos, _FORMAT_BYTES[code], code.islower())
            pos += _FORMAT_BYTES[code]
        return out

    def pack(self, tail=b"", **values):
        """Bytes of the fields given by keyword (all required) followed by ``tail``."""
        missing = [n for n, _ in self.fields if n not in values]
        extra = sorted(set(values) - {n for n, _ in self.fields})
        if missing or extra:
            raise TypeError(f"{self.name}: missing fields {missing}, unknown fields {extra}")
        for name, code in self.fields:
            value, nbytes = values[name], _FORMAT_BYTES[code]
            lo, hi = ((-(1 << (8 * nbytes - 1)), (1 << (8 * nbytes - 1)) - 1) if code.islower()
                      else (0, (1 << (8 * nbytes)) - 1))
            if not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{self.name}.{name} value {value!r} is out of range "
                                 f"[{lo}, {hi}]")
        head = self._struct.pack(*(values[n] for n, _ in self.fields))
        if self.tail is None:
            if len(tail):
                raise ValueError(f"{self.name} takes no {self.tail_name}")
            return head
        if self.tail == "s":
            return head + bytes(tail)
        items = list(tail)
        return head + struct.pack(f"<{len(items)}{self.tail}", *items)

    def unpack(self, data):
        """``dict`` of the fields (and ``tail_name`` if the layout has a tail).

        Raises ``ValueError`` if ``data`` is too short, has bytes left over, or a tail that is
        not a whole number of items.
        """
        data = bytes(data)
        if len(data) < self.size or (self.tail is None and len(data) != self.size):
            raise ValueError(f"{self.name} payload of {len(data)} bytes; expected "
                             f"{self.size}{' or more' if self.tail else ''}")
        out = dict(zip((n for n, _ in self.fields), self._struct.unpack_from(data), strict=True))
        rest = data[self.size:]
        if self.tail == "s":
            out[self.tail_name] = rest
        elif self.tail is not None:
            item = _FORMAT_BYTES[self.tail]
            if len(rest) % item:
                raise ValueError(f"{self.name} {self.tail_name} of {len(rest)} bytes is not a "
                                 f"multiple of {item}")
            out[self.tail_name] = list(struct.unpack(f"<{len(rest) // item}{self.tail}", rest))
        return out


def _L(name, *fields, tail=None, tail_name="tail"):
    return Layout(name, tuple(fields), tail, tail_name)


# Unencoded frame: header | payload | crc32 (little-endian), then COBS, then DELIMITER.
HEADER = _L("header", ("version", "B"), ("seq", "B"), ("cmd", "B"), ("length", "H"))

_WHERE = (("core", "B"), ("region", "B"), ("index", "I"))

# Payloads of host-to-board commands.
REQUEST = {
    Command.HELLO: _L("hello", ("client", "I")),             # random per client session
    Command.WRITE: _L("write", *_WHERE, tail="s", tail_name="words"),
    Command.READ: _L("read", *_WHERE, ("count", "H")),
    Command.REGION_CRC: _L("region_crc", *_WHERE, ("count", "I")),
    Command.RUN: _L("run", ("steps", "I")),                  # 0: until STOP
    Command.STEP: _L("step"),
    Command.STOP: _L("stop"),
    Command.INPUT: _L("input", ("step", "I"), ("core", "B"), ("flags", "B"),
                      tail="H", tail_name="axons"),
    Command.GENERATORS: _L("generators", ("core", "B"), ("enable", "B"), ("first", "H"),
                           ("count", "H"), ("prob", "H")),
    Command.PROBE: _L("probe", ("probe", "B"), ("core", "B"), ("region", "B"), ("period", "B"),
                      ("index", "I"), ("count", "H")),      # period 0: probe off
    Command.TIMER: _L("timer", ("period", "I")),            # clocks per step; 0: free-running
    Command.STATUS: _L("status"),
    Command.RESET: _L("reset"),
    Command.OUT_ACK: _L("out_ack", ("next", "B")),          # next output number expected
}

# ACK payloads: the acknowledged command's code, then the reply fields.
_ACKED = ("cmd", "B")
REPLY = {
    Command.HELLO: _L(
        "hello_reply", _ACKED, ("version", "B"), ("window", "B"), ("out_window", "B"),
        ("n_cores", "B"), ("flags", "B"), ("max_payload", "H"), ("n_neurons", "H"),
        ("n_axons", "H"), ("weight_bits", "B"), ("delay_bits", "B"), ("lanes", "B"),
        ("n_profiles", "B"), ("n_probes", "B"), ("out_seq", "B"), ("memmap_hash", "I"),
        ("clock_hz", "I"), ("baud", "I"), ("out_timeout", "I"), ("build_id", "I"),
        ("nonce", "I"), ("route_entries", "I"), ("fan_out", "B"), ("probe_payload", "H")),
    Command.WRITE: _L("write_reply", _ACKED),
    Command.READ: _L("read_reply", _ACKED, tail="s", tail_name="words"),
    Command.REGION_CRC: _L("region_crc_reply", _ACKED, ("crc", "I")),
    Command.RUN: _L("run_reply", _ACKED, ("step", "I")),     # first step of the run
    Command.STEP: _L("step_reply", _ACKED, ("step", "I"), ("busy", "I")),
    Command.STOP: _L("stop_reply", _ACKED, ("step", "I")),   # next step to run
    Command.INPUT: _L("input_reply", _ACKED),
    Command.GENERATORS: _L("generators_reply", _ACKED),
    Command.PROBE: _L("probe_reply", _ACKED),
    Command.TIMER: _L("timer_reply", _ACKED),
    Command.STATUS: _L(
        "status_reply", _ACKED, ("state", "B"), ("step", "I"), ("steps_left", "I"),
        ("crc_errors", "I"), ("frame_errors", "I"), ("uart_errors", "I"), ("overruns", "I"),
        ("naks", "I"), ("duplicates", "I"), ("out_resent", "I"), ("timer_overruns", "I"),
        ("busy_last", "I"), ("busy_max", "I"), ("stalls", "I"),
        ("paced", "B")),
    Command.RESET: _L("reset_reply", _ACKED),
}

NAK_PAYLOAD = _L("nak", _ACKED, ("code", "B"), ("expected", "B"))

# Output frames (board to host, own sequence numbers, acknowledged by OUT_ACK).
OUTPUT = {
    Command.SPIKES: _L("spikes", ("step", "I"), ("core", "B"), ("flags", "B"),
                       tail="H", tail_name="neurons"),
    Command.PROBE_DATA: _L("probe_data", ("step", "I"), ("probe", "B"), ("core", "B"),
                           ("region", "B"), ("index", "I"), tail="s", tail_name="words"),
}


def link_regions(memmap):
    """``{region id: RegionLayout}`` of every region the link reaches on one core.

    ``memmap`` is a core's ``MemoryMap`` (the core regions) or a chip's
    ``spikeforge.routing.ChipMap`` of equal cores (the core regions, then that core's routing
    tables as ``TableRegion.ROUTE_INDEX`` and ``ROUTE_DEST``).
    """
    routes = getattr(memmap, "routes", None)
    if routes is None:
        return dict(memmap.regions)
    if any(mm.config != memmap.configs[0] for mm in memmap.memmaps):
        raise ValueError("the link addresses chips of equal cores only")
    return {**memmap.memmaps[0].regions, TableRegion.ROUTE_INDEX: routes.index,
            TableRegion.ROUTE_DEST: routes.dest}


def word_bytes(memmap, region):
    """Bytes of one memory word of ``region`` on the wire: ``ceil(width / 8)``, little-endian.

    Words travel at their region's own width (a 13-bit synapse word takes 2 bytes, not the
    port's full width), which keeps uploads close to the line rate. ``memmap``: a
    ``MemoryMap`` or a ``ChipMap`` (see ``link_regions``).
    """
    if getattr(memmap, "routes", None) is None:
        return (memmap[region].width + 7) // 8
    return (link_regions(memmap)[region].width + 7) // 8


def memmap_hash(memmap):
    """CRC-32 of a canonical text of the memory map: region ids, depths and fields.

    The board reports it in HELLO; a host whose map differs (another width, another field
    order, other routing tables) refuses to upload instead of writing garbage. ``memmap``: a
    ``MemoryMap`` or a ``ChipMap`` (whose hash covers its routing tables as well).
    """
    parts = []
    for region, layout in sorted(link_regions(memmap).items()):
        name = region.name if hasattr(region, "name") else str(region)
        fields = ",".join(f"{f.name}/{f.bits}{'s' if f.signed else 'u'}" for f in layout.fields)
        parts.append(f"{int(region)}:{name}:{layout.depth}:{fields}")
    return crc32(";".join(parts).encode())


def frame_overhead(payload_len):
    """Wire bytes of a frame beyond its payload: header, CRC, COBS codes and the delimiter."""
    body = HEADER.size + payload_len + CRC_BYTES
    return HEADER.size + CRC_BYTES + body // 254 + 1 + 1


def is_duplicate(seq, expected, window):
    """True if ``seq`` is one of the ``window`` numbers before ``expected`` (mod 256)."""
    return 1 <= (expected - seq) % SEQ_MODULO <= window
