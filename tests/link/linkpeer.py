"""An in-process fake board: the command semantics of ``docs/protocol.md`` in plain Python.

``FakeBoard`` is the executable spec the hardware command processor must match for sequence
numbers (expected number, reply history of ``window`` commands, duplicates answered without
acting again, ``NAK(SEQUENCE)``, ``NAK(NOT_SYNCED)`` after a reset), HELLO, WRITE/READ/REGION_CRC
of a bytearray memory per region, STATUS, RESET, and output frames with go-back-N resending.
``LoopbackTransport`` connects a client to it in-process and injects faults; ``SocketPeer``
serves it on a TCP port so a pyserial ``socket://`` URL reaches it.
"""

from __future__ import annotations

import random
import socket
import threading
import time

from spikeforge import protocol
from spikeforge.host.link import Frame, FrameDecoder, Transport, encode_frame
from spikeforge.memmap import MemoryMap, Region
from spikeforge.protocol import NAK_PAYLOAD, OUTPUT, REPLY, REQUEST, Command, NakCode

__all__ = ["FakeBoard", "LoopbackTransport", "SocketPeer"]

# Codes that leave the command unexecuted *and unnumbered*: not stored, expected unchanged.
_UNNUMBERED = (NakCode.VERSION, NakCode.SEQUENCE, NakCode.NOT_SYNCED)


class FakeBoard:
    """A board with ``n_cores`` cores of ``config``; ``receive(bytes)`` returns reply bytes.
    ``firmware``: its HELLO says ``HelloFlags.FIRMWARE`` (the firmware link's)."""

    def __init__(self, config, *, n_cores=1, window=8, out_window=8, max_payload=1024,
                 baud=3_000_000, out_timeout=0.02, seed=0, firmware=False):
        self.firmware = firmware
        self.memmap = MemoryMap(config)
        self.config = config
        self.n_cores = n_cores
        self.window = window
        self.out_window = out_window
        self.max_payload = max_payload
        self.baud = baud
        self.out_timeout = out_timeout
        self.rng = random.Random(seed)
        self.executed = []           # (cmd, seq) of every command acted on, for the tests
        self.decoder = FrameDecoder()
        self.memory = {(c, r): bytearray(lay.depth * protocol.word_bytes(self.memmap, r))
                       for c in range(n_cores) for r, lay in self.memmap.regions.items()}
        self.reset()

    def reset(self):
        """Power-on state of the link: unsynced, a new nonce, counters cleared."""
        self.synced = False
        self.last_hello = None
        self.expected = 0
        self.replies = {}            # seq -> wire bytes of the stored reply
        self.nonce = self.rng.getrandbits(32)
        self.counters = dict.fromkeys(("naks", "duplicates", "out_resent"), 0)
        self.out_seq = 0             # number of the next output frame
        self.out_unacked = []        # (seq, wire) not yet acknowledged, oldest first
        self.out_sent_at = 0.0

    # -- input side ---------------------------------------------------------------------------

    def receive(self, data):
        out = b""
        for frame in self.decoder.feed(data):
            out += self.handle(frame)
        return out

    def handle(self, frame):
        if frame.cmd == Command.OUT_ACK:
            self._out_ack(frame)
            return b""
        if frame.version != protocol.VERSION:
            return self._nak(frame, NakCode.VERSION)
        dup = self.synced and protocol.is_duplicate(frame.seq, self.expected, self.window)
        if frame.cmd == Command.HELLO:
            # A HELLO resynchronises unless it is a retry of the last one (same seq and client).
            hello = (frame.seq, bytes(frame.payload))
            if not (dup and hello == self.last_hello and frame.seq in self.replies):
                self.synced, self.expected, self.replies = True, frame.seq, {}
                self.last_hello = hello
        if not self.synced:
            return self._nak(frame, NakCode.NOT_SYNCED)
        if frame.seq != self.expected:
            if dup and frame.seq in self.replies:
                self.counters["duplicates"] += 1
                return self.replies[frame.seq]
            return self._nak(frame, NakCode.SEQUENCE)
        wire = self._execute(frame)
        self.replies[frame.seq] = wire
        self.replies.pop((frame.seq - self.window) % protocol.SEQ_MODULO, None)
        self.expected = (frame.seq + 1) % protocol.SEQ_MODULO
        if frame.cmd == Command.RESET:
            self.reset()
        return wire

    def _nak(self, frame, code):
        self.counters["naks"] += 1
        payload = NAK_PAYLOAD.pack(cmd=frame.cmd, code=code, expected=self.expected)
        return encode_frame(Frame(frame.seq, Command.NAK, payload))

    def _ack(self, frame, tail=b"", **fields):
        payload = REPLY[Command(frame.cmd)].pack(tail, cmd=frame.cmd, **fields)
        return encode_frame(Frame(frame.seq, Command.ACK, payload))

    def _execute(self, frame):
        if frame.cmd not in (Command.HELLO, Command.WRITE, Command.READ, Command.REGION_CRC,
                             Command.STATUS, Command.RESET):
            return self._nak(frame, NakCode.COMMAND)
        try:
            req = REQUEST[Command(frame.cmd)].unpack(frame.payload)
        except ValueError:
            return self._nak(frame, NakCode.LENGTH)
        self.executed.append((Command(frame.cmd), frame.seq))
        if frame.cmd == Command.HELLO:
            c = self.config
            flags = protocol.HelloFlags.LEARNING if c.plastic else 0
            if self.firmware:
                flags |= protocol.HelloFlags.FIRMWARE
            return self._ack(
                frame, version=protocol.VERSION, window=self.window, out_window=self.out_window,
                n_cores=self.n_cores, flags=int(flags), max_payload=self.max_payload,
                n_neurons=c.n_neurons, n_axons=c.n_axons, weight_bits=c.weight_bits,
                delay_bits=c.delay_bits, lanes=c.lanes, n_profiles=c.n_profiles, n_probes=0,
                out_seq=self.out_unacked[0][0] if self.out_unacked else self.out_seq,
                memmap_hash=protocol.memmap_hash(self.memmap),
                clock_hz=48_000_000, baud=self.baud,
                out_timeout=int(self.out_timeout * 48_000_000), build_id=0x5F0E,
                nonce=self.nonce, route_entries=0, fan_out=0, probe_payload=0)
        if frame.cmd == Command.STATUS:
            return self._ack(frame, state=0, step=0, steps_left=0, crc_errors=0,
                             frame_errors=self.decoder.errors, uart_errors=0, overruns=0,
                             timer_overruns=0, busy_last=0, busy_max=0, stalls=0, paced=0,
                             **self.counters)
        if frame.cmd == Command.RESET:
            return self._ack(frame)
        # WRITE, READ, REGION_CRC: check the window into the region first.
        if req["core"] >= self.n_cores:
            return self._nak(frame, NakCode.CORE)
        if req["region"] not in Region._value2member_map_:
            return self._nak(frame, NakCode.REGION)
        region = Region(req["region"])
        wb = protocol.word_bytes(self.memmap, region)
        mem = self.memory[req["core"], region]
        if frame.cmd == Command.WRITE:
            count, rest = divmod(len(req["words"]), wb)
            if rest:
                return self._nak(frame, NakCode.LENGTH)
        else:
            count = req["count"]
        if req["index"] + count > len(mem) // wb:
            return self._nak(frame, NakCode.RANGE)
        lo, hi = req["index"] * wb, (req["index"] + count) * wb
        if frame.cmd == Command.WRITE:
            mem[lo:hi] = req["words"]
            return self._ack(frame)
        if frame.cmd == Command.READ:
            if hi - lo + REPLY[Command.READ].size > self.max_payload:
                return self._nak(frame, NakCode.RANGE)
            return self._ack(frame, bytes(mem[lo:hi]))
        return self._ack(frame, crc=protocol.crc32(mem[lo:hi]))

    # -- output side --------------------------------------------------------------------------

    def emit(self, cmd, tail=b"", **fields):
        """Queue an output frame (SPIKES, PROBE_DATA); returns its wire bytes, or None if the
        output window is full (the hardware would stall the step)."""
        if len(self.out_unacked) >= self.out_window:
            return None
        wire = encode_frame(Frame(self.out_seq, cmd, OUTPUT[cmd].pack(tail, **fields)))
        self.out_unacked.append((self.out_seq, wire))
        self.out_seq = (self.out_seq + 1) % protocol.SEQ_MODULO
        self.out_sent_at = time.monotonic()
        return wire

    def _out_ack(self, frame):
        nxt = REQUEST[Command.OUT_ACK].unpack(frame.payload)["next"]
        while self.out_unacked and (nxt - self.out_unacked[0][0]) % protocol.SEQ_MODULO in \
                range(1, self.out_window + 1):
            self.out_unacked.pop(0)

    def service(self):
        """Resend every unacknowledged output frame once ``out_timeout`` has passed."""
        if self.out_unacked and time.monotonic() - self.out_sent_at > self.out_timeout:
            self.out_sent_at = time.monotonic()
            self.counters["out_resent"] += len(self.out_unacked)
            return b"".join(w for _, w in self.out_unacked)
        return b""


class LoopbackTransport(Transport):
    """Client <-> ``FakeBoard`` in-process, losing or corrupting whole writes at given odds."""

    url = "loopback://fake"

    def __init__(self, board, *, drop=0.0, corrupt=0.0, seed=1):
        self.board = board
        self.baud = board.baud
        self.drop, self.corrupt = drop, corrupt
        self.rng = random.Random(seed)
        self.inbox = bytearray()
        self.faults = 0

    def _fault(self, data):
        if self.rng.random() < self.drop:
            self.faults += 1
            return b""
        if data and self.rng.random() < self.corrupt:
            self.faults += 1
            data = bytearray(data)
            data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
        return bytes(data)

    def write(self, data):
        reply = self.board.receive(self._fault(data))
        for frame in _frames(reply):
            self.inbox += self._fault(frame)

    def push(self, wire):
        """Deliver board-initiated bytes (output frames) through the faulty channel."""
        if wire:
            for frame in _frames(wire):
                self.inbox += self._fault(frame)

    def read(self, timeout):
        self.push(self.board.service())
        if not self.inbox:
            time.sleep(min(max(timeout, 0.0), 0.001))
            self.push(self.board.service())
        data, self.inbox = bytes(self.inbox), bytearray()
        return data

    def close(self):
        self.inbox.clear()


def _frames(wire):
    return [f + b"\x00" for f in bytes(wire).split(b"\x00")[:-1]]


class SocketPeer:
    """Serves ``board`` on a TCP port of 127.0.0.1 (one client at a time) in a thread."""

    def __init__(self, board):
        self.board = board
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.05)
                while not self._stop.is_set():
                    try:
                        data = conn.recv(65536)
                    except TimeoutError:
                        continue
                    if not data:
                        break
                    conn.sendall(self.board.receive(data))

    def close(self):
        self._stop.set()
        self.thread.join()
        self.server.close()
