"""The host side of the link: a byte transport, the frame codec, and a client.

- ``Transport`` is the abstract byte pipe; ``SerialTransport`` opens any pyserial URL
  (``/dev/ttyUSB1``, ``socket://127.0.0.1:7000``, ``rfc2217://...``). A virtual board is another
  implementation of the same interface, so code above cannot tell them apart.
- ``encode_frame`` / ``FrameDecoder`` turn frames into wire bytes and back (``docs/protocol.md``).
- ``LinkClient`` numbers commands, keeps up to ``window`` of them in flight, retries lost ones a
  bounded number of times with timeouts derived from the baud rate (doubling with each resend),
  and acknowledges output frames (spikes, probes), keeping them in ``outputs`` in order and
  without duplicates.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass

from cobs import cobs

from spikeforge import protocol
from spikeforge.protocol import (
    HEADER,
    NAK_PAYLOAD,
    OUTPUT,
    REPLY,
    REQUEST,
    Command,
    HelloFlags,
    NakCode,
)

__all__ = ["Frame", "FrameError", "encode_frame", "decode_frame", "FrameDecoder", "Transport",
           "SerialTransport", "LinkError", "NakError", "BoardResetError", "LinkClient"]

log = logging.getLogger(__name__)

# Bytes of the largest frame on the wire (COBS adds one byte per 254, plus the delimiter).
MAX_WIRE_FRAME = (HEADER.size + protocol.MAX_PAYLOAD + protocol.CRC_BYTES) * 255 // 254 + 2
# USB-serial bridges hold bytes up to their latency timer (16 ms by default on FTDI parts).
LATENCY = 0.05
# A command's wait for its answer doubles with each resend, up to this many timeouts.
BACKOFF_MAX = 8


@dataclass(frozen=True)
class Frame:
    seq: int
    cmd: int
    payload: bytes = b""
    version: int = protocol.VERSION


class FrameError(ValueError):
    """A received frame is corrupted (bad COBS, CRC, or length)."""


def encode_frame(frame):
    """Wire bytes of ``frame``: ``COBS(header | payload | crc32) 0x00``."""
    if len(frame.payload) > protocol.MAX_PAYLOAD:
        raise ValueError(f"payload of {len(frame.payload)} bytes is too long "
                         f"(at most {protocol.MAX_PAYLOAD})")
    body = HEADER.pack(version=frame.version, seq=frame.seq, cmd=int(frame.cmd),
                       length=len(frame.payload)) + bytes(frame.payload)
    body += protocol.crc32(body).to_bytes(protocol.CRC_BYTES, "little")
    return cobs.encode(body) + bytes([protocol.DELIMITER])


def decode_frame(encoded):
    """The ``Frame`` in ``encoded`` (one frame without its delimiter); ``FrameError`` if bad."""
    try:
        body = cobs.decode(bytes(encoded))
    except cobs.DecodeError as exc:
        raise FrameError(f"bad COBS: {exc}") from None
    if len(body) < HEADER.size + protocol.CRC_BYTES:
        raise FrameError(f"frame of {len(body)} bytes is too short")
    data, crc = body[:-protocol.CRC_BYTES], body[-protocol.CRC_BYTES:]
    if protocol.crc32(data) != int.from_bytes(crc, "little"):
        raise FrameError("CRC mismatch")
    head = HEADER.unpack(data[:HEADER.size])
    payload = data[HEADER.size:]
    if len(payload) > protocol.MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes is too long "
                         f"(at most {protocol.MAX_PAYLOAD})")
    if head["length"] != len(payload):
        raise FrameError(f"length field {head['length']} but {len(payload)} payload bytes")
    return Frame(head["seq"], head["cmd"], payload, head["version"])


class FrameDecoder:
    """Splits a byte stream at delimiters into frames; counts and drops corrupted ones.

    Never wedges: a run without delimiter longer than any valid frame is discarded (and
    counted once) until the next delimiter.
    """

    def __init__(self):
        self._buf = bytearray()
        self._overlong = False
        self.frames = 0
        self.errors = 0

    def feed(self, data):
        """Frames completed by ``data``, in order."""
        out = []
        for chunk_end, piece in _split(bytes(data)):
            if not self._overlong:
                self._buf += piece
                if len(self._buf) > MAX_WIRE_FRAME:
                    self._overlong = True
                    self._buf.clear()
                    self.errors += 1
            if chunk_end:
                if self._buf and not self._overlong:
                    try:
                        out.append(decode_frame(self._buf))
                        self.frames += 1
                    except FrameError as exc:
                        self.errors += 1
                        log.debug("dropped a received frame: %s", exc)
                self._buf.clear()
                self._overlong = False
        return out


def _split(data):
    start = 0
    while True:
        end = data.find(protocol.DELIMITER, start)
        if end < 0:
            yield False, data[start:]
            return
        yield True, data[start:end]
        start = end + 1


class Transport(ABC):
    """A byte pipe to a board. ``url`` names it in error messages."""

    url = "?"

    @abstractmethod
    def write(self, data):
        """Send ``data`` (all of it)."""

    @abstractmethod
    def read(self, timeout):
        """Bytes received within ``timeout`` seconds (returns early once some arrived)."""

    @abstractmethod
    def close(self):
        """Release the pipe."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SerialTransport(Transport):
    """A pyserial port or URL (``serial.serial_for_url``) at ``baud``."""

    def __init__(self, url, baud=3_000_000):
        import serial

        if not isinstance(baud, int) or baud <= 0:
            raise ValueError(f"baud rate must be a positive integer, not {baud!r}")
        self.url = url
        self.baud = baud
        try:
            self._port = serial.serial_for_url(url, baudrate=baud, timeout=0)
        except (serial.SerialException, ValueError) as exc:
            raise LinkError(f"cannot open {url}: {exc}") from None
        sock = getattr(self._port, "_socket", None)
        if sock is not None:
            # socket:// (a virtual board): a small frame right after another (an OUT_ACK, then
            # a request) would otherwise wait for the peer's delayed ACK under Nagle's
            # algorithm, 40 ms on Linux, on every chunk of a run.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data):
        self._port.write(bytes(data))
        self._port.flush()

    def read(self, timeout):
        self._port.timeout = max(timeout, 0)
        data = self._port.read(1)
        if data:
            waiting = self._port.in_waiting
            if waiting:
                self._port.timeout = 0
                data += self._port.read(waiting)
        return data

    def close(self):
        self._port.close()


class LinkError(RuntimeError):
    """The link failed: no answer, or an answer that makes no sense."""


class NakError(LinkError):
    """The board refused a command."""

    def __init__(self, url, cmd, code):
        self.cmd = Command(cmd) if cmd in Command._value2member_map_ else cmd
        self.code = NakCode(code) if code in NakCode._value2member_map_ else code
        name = getattr(self.cmd, "name", f"command {cmd:#04x}")
        super().__init__(f"{url} refused {name}: {getattr(self.code, 'name', code)}")


class BoardResetError(LinkError):
    """The board was reset since the last HELLO (its state is gone)."""


@dataclass
class _Pending:
    seq: int
    cmd: Command
    wire: bytes
    sent_at: float = 0.0
    tries: int = 0
    reply: object = None         # dict (ACK fields) or NakError
    own: float = 0.0             # seconds the board may compute on it (``_work``)
    work: float = 0.0            # ... on it and the commands in flight before it


class LinkClient:
    """Commands with acknowledgements over a ``Transport``.

    Timeouts follow from ``baud``: a reply may wait behind a window of largest frames both ways,
    plus the bridge latency (``timeout`` overrides); on a board whose HELLO has
    ``HelloFlags.FIRMWARE``, plus ``protocol.FIRMWARE_WORD_CLOCKS`` of its clocks per memory word
    of the commands in flight up to the reply's. Each command is sent at most ``tries``
    times, the wait doubling with each send (up to ``BACKOFF_MAX`` timeouts: 1, 2, 4, 8, 8...);
    then ``LinkError`` names the transport and the command.
    """

    def __init__(self, transport, *, baud=None, window=8, tries=3, timeout=None):
        baud = baud if baud is not None else getattr(transport, "baud", None)
        if not isinstance(baud, int) or baud <= 0:
            raise ValueError(f"baud rate must be a positive integer, not {baud!r}")
        if not isinstance(window, int) or not 1 <= window <= protocol.MAX_WINDOW:
            raise ValueError(f"window {window!r} is out of range [1, {protocol.MAX_WINDOW}]")
        if not isinstance(tries, int) or tries < 1:
            raise ValueError(f"tries must be a positive integer, not {tries!r}")
        self.transport = transport
        self.baud = baud
        self.window = window
        self.tries = tries
        self._timeout = timeout
        self.max_payload = protocol.MAX_PAYLOAD
        self.decoder = FrameDecoder()
        self.outputs = deque()       # (Command, dict) of output frames, in order
        self.info = None
        self.resent = 0
        self._word_seconds = 0.0     # the board's time per memory word (HelloFlags.FIRMWARE)
        # A fresh client never looks like a retry of an older one: random number and id.
        self._seq = random.randrange(protocol.SEQ_MODULO)
        self._client = random.getrandbits(32)
        self._out_next = 0
        self._flushed = False

    @property
    def timeout(self):
        if self._timeout is not None:
            return self._timeout
        frame_time = MAX_WIRE_FRAME * 10 / self.baud
        return 2 * (self.window + 1) * frame_time + LATENCY

    # -- the command API ------------------------------------------------------------------

    def hello(self):
        """Synchronise with the board; returns (and keeps in ``info``) the HELLO reply."""
        self.info = self.request(Command.HELLO, client=self._client)
        if self.info["version"] != protocol.VERSION:
            raise LinkError(f"{self.transport.url} speaks protocol version "
                            f"{self.info['version']}, this host {protocol.VERSION}")
        self.window = min(self.window, self.info["window"])
        self.max_payload = min(protocol.MAX_PAYLOAD, self.info["max_payload"])
        self._out_next = self.info["out_seq"]
        self._word_seconds = 0.0
        if self.info["flags"] & HelloFlags.FIRMWARE and self.info["baud"]:
            # the board's clocks a second as this host sees them: its clocks per bit at this
            # link's rate (a virtual board's line runs at the simulation's pace)
            rate = self.baud * self.info["clock_hz"] / self.info["baud"]
            self._word_seconds = protocol.FIRMWARE_WORD_CLOCKS / max(rate, 1.0)
        return self.info

    def _work(self, cmd, tail, fields):
        """Seconds the board may compute on a command beyond the line's time: a memory
        command's words on a firmware link (a WRITE's counted as bytes, an upper bound)."""
        if cmd in (Command.READ, Command.REGION_CRC):
            return fields["count"] * self._word_seconds
        if cmd is Command.WRITE:
            return len(tail) * self._word_seconds
        return 0.0

    def request(self, cmd, tail=b"", **fields):
        """Send one command and return its ACK fields (``NakError`` on NAK)."""
        return self.pipeline([(cmd, tail, fields)])[0]

    def pipeline(self, commands):
        """Send ``(cmd, tail, fields)`` commands with up to ``window`` in flight.

        Returns their ACK field dicts in order. If the board refuses one, the others still
        complete and the first ``NakError`` is raised at the end.
        """
        todo = deque((Command(cmd), REQUEST[Command(cmd)].pack(tail, **fields),
                      self._work(Command(cmd), tail, fields))
                     for cmd, tail, fields in commands)
        flight, results = deque(), []
        last_goback = -1.0
        while todo or flight:
            while todo and len(flight) < self.window:
                cmd, payload, work = todo.popleft()
                wire = encode_frame(Frame(self._seq, cmd, payload))
                # the board carries the commands out in order: this one's reply also waits
                # for the work of those still in flight
                ahead = sum(q.own for q in flight if q.reply is None)
                flight.append(_Pending(self._seq, cmd, wire, own=work, work=work + ahead))
                self._seq = (self._seq + 1) % protocol.SEQ_MODULO
                self._send(flight[-1])
            for frame in self._receive(self._deadline(flight[0]) - time.monotonic()):
                p = next((q for q in flight if q.seq == frame.seq and q.reply is None), None)
                if p is None:
                    continue                  # a duplicate answer to a retry already answered
                reply = self._parse_reply(p, frame)
                if isinstance(reply, NakError) and reply.code is NakCode.SEQUENCE:
                    # A frame before this one was lost: go back to the expected one, unless
                    # it was resent so recently that this NAK answers an older copy.
                    expected = NAK_PAYLOAD.unpack(frame.payload)["expected"]
                    if all(q.seq != expected for q in flight):
                        raise LinkError(f"{self.transport.url} expects command {expected}, which "
                                        f"this client did not send (another client? call "
                                        f"hello() again)")
                    now = time.monotonic()
                    if now - last_goback > self.timeout / 2:
                        last_goback = now
                        self._go_back(flight, expected)
                    continue
                if isinstance(reply, NakError) and reply.code is NakCode.NOT_SYNCED:
                    raise BoardResetError(f"{self.transport.url} was reset (no HELLO since); "
                                          f"call hello() again")
                p.reply = reply
            while flight and flight[0].reply is not None:
                results.append(flight.popleft().reply)
            if flight and time.monotonic() >= self._deadline(flight[0]):
                if flight[0].tries >= self.tries:
                    raise LinkError(f"no answer from {self.transport.url} after "
                                    f"{flight[0].tries} tries ({flight[0].cmd.name} "
                                    f"seq {flight[0].seq})")
                log.debug("timeout on %s seq %d: resending", flight[0].cmd.name, flight[0].seq)
                self._go_back(flight, flight[0].seq)
        errors = [r for r in results if isinstance(r, NakError)]
        if errors:
            raise errors[0]
        return results

    def write_region(self, core, region, index, words, word_bytes):
        """Write ``words`` (bytes, ``word_bytes`` per word) from ``index`` on, pipelined."""
        words = bytes(words)
        if len(words) % word_bytes:
            raise ValueError(f"{len(words)} bytes are not a whole number of "
                             f"{word_bytes}-byte words")
        per = (self.max_payload - REQUEST[Command.WRITE].size) // word_bytes * word_bytes
        self.pipeline([(Command.WRITE, words[k:k + per],
                        dict(core=core, region=int(region), index=index + k // word_bytes))
                       for k in range(0, len(words), per)])

    def read_region(self, core, region, index, count, word_bytes):
        """Read ``count`` words from ``index`` on, pipelined; returns their bytes."""
        per = min((self.max_payload - REPLY[Command.READ].size) // word_bytes, 0xFFFF)
        replies = self.pipeline([(Command.READ, b"", dict(core=core, region=int(region),
                                                           index=index + k,
                                                           count=min(per, count - k)))
                                 for k in range(0, count, per)])
        return b"".join(r["words"] for r in replies)

    def poll(self, timeout=0.0):
        """Receive for up to ``timeout`` s; output frames land in ``outputs``."""
        for frame in self._receive(timeout):
            log.debug("unexpected frame %s seq %d outside a command", frame.cmd, frame.seq)
        return len(self.outputs)

    # -- internals --------------------------------------------------------------------------

    def _send(self, pending):
        # A leading delimiter ends any garbage the board may hold from before we started.
        prefix = b"" if self._flushed else bytes([protocol.DELIMITER])
        self._flushed = True
        pending.tries += 1
        pending.sent_at = time.monotonic()
        self.transport.write(prefix + pending.wire)

    def _deadline(self, pending):
        # Exponential backoff: the wait for an answer doubles with each send of the command (up
        # to BACKOFF_MAX timeouts), so a peer slower than its line (a virtual board on a busy
        # machine) gets the time it needs, while a lost frame still costs one timeout.
        return (pending.sent_at + self.timeout * min(2 ** (pending.tries - 1), BACKOFF_MAX)
                + pending.work)

    def _go_back(self, flight, seq):
        resend = False
        for p in flight:
            resend = resend or p.seq == seq
            if resend and p.reply is None:
                if p.tries >= self.tries:
                    raise LinkError(f"no answer from {self.transport.url} after {p.tries} "
                                    f"tries ({p.cmd.name} seq {p.seq})")
                self.resent += 1
                self._send(p)

    def _receive(self, timeout):
        """Command replies received within ``timeout``; output frames are handled here."""
        data = self.transport.read(max(timeout, 0.0))
        replies, ack = [], False
        for frame in self.decoder.feed(data):
            if frame.cmd in OUTPUT:
                ack = True
                if frame.seq == self._out_next:
                    try:
                        fields = OUTPUT[Command(frame.cmd)].unpack(frame.payload)
                    except ValueError as exc:
                        raise LinkError(f"{self.transport.url} sent a bad "
                                        f"{Command(frame.cmd).name}: {exc}") from None
                    self.outputs.append((Command(frame.cmd), fields))
                    self._out_next = (self._out_next + 1) % protocol.SEQ_MODULO
            elif frame.cmd in (Command.ACK, Command.NAK):
                replies.append(frame)
        if ack:
            self.transport.write(encode_frame(Frame(0, Command.OUT_ACK, bytes([self._out_next]))))
        return replies

    def _parse_reply(self, pending, frame):
        url = self.transport.url
        try:
            if frame.cmd == Command.NAK:
                nak = NAK_PAYLOAD.unpack(frame.payload)
                return NakError(url, nak["cmd"], nak["code"])
            if not frame.payload or frame.payload[0] != pending.cmd:
                acked = frame.payload[0] if frame.payload else None
                name = Command(acked).name if acked in Command._value2member_map_ else acked
                raise LinkError(f"{url} answered {pending.cmd.name} seq {pending.seq} with an ACK "
                                f"for {name} (another client? call hello() again)")
            return REPLY[pending.cmd].unpack(frame.payload)
        except ValueError as exc:
            raise LinkError(f"{url} sent a bad reply to {pending.cmd.name}: {exc}") from None
