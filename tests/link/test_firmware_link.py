"""The link firmware (``hdl/firmware/link.c``) against the protocol's executable spec.

The firmware's C is compiled for this machine (``spikeforge.hdl.firmware.build_native``) with a
board of plain buffers (``fw_hal_native.c``) and driven through ``ctypes``: thousands of random
frames (new commands, retries of recent ones, numbers ahead, HELLOs that resynchronise or repeat,
wrong versions, unknown commands, bad lengths, cores, regions and ranges, RESETs) go to it and
to ``linkpeer.FakeBoard``, and every reply must be the same on the wire, byte for byte, and the
memories the same at the end. The spec's board is told one thing the hardware does: the replies
of HELLO, STATUS and READ are made again for a duplicate (``hdl/link.py``), not stored (a
READ from its request as it came, so a WRITE in between shows).
"""

import ctypes
import random
from pathlib import Path

import pytest
from linkpeer import FakeBoard

from spikeforge import protocol
from spikeforge.host.link import Frame, decode_frame, encode_frame
from spikeforge.image import CoreConfig
from spikeforge.protocol import REQUEST, Command
from spikeforge.routing import ChipMap

pytest.importorskip("ziglang")

from spikeforge.hdl.firmware import build_native, link_config_header, link_sources  # noqa: E402

HERE = Path(__file__).resolve().parent
CONFIG = CoreConfig(n_neurons=16, n_axons=8, weight_bits=8, delay_bits=2, lanes=1, plastic=True,
                    n_profiles=4)
REGENERATED = (Command.HELLO, Command.STATUS, Command.READ)


class HardwareBoard(FakeBoard):
    """``FakeBoard`` whose duplicates of HELLO, STATUS and READ are answered by doing the
    command that had the number again (no side effects), as the hardware and the firmware do."""

    def reset(self):
        super().reset()
        self.requests = {}                  # seq -> the frame numbered with it

    def handle(self, frame):
        if (frame.cmd != Command.OUT_ACK and frame.version == protocol.VERSION and self.synced
                and frame.seq != self.expected and frame.seq in self.replies
                and protocol.is_duplicate(frame.seq, self.expected, self.window)
                and (frame.cmd != Command.HELLO
                     or (frame.seq, bytes(frame.payload)) == self.last_hello)):
            stored = decode_frame(self.replies[frame.seq][:-1])
            if stored.cmd == Command.ACK and stored.payload[0] in (Command.STATUS,
                                                                   Command.READ):
                self.counters["duplicates"] += 1
                return self._execute(self.requests[frame.seq])
        before = self.expected
        wire = super().handle(frame)
        if self.expected == (frame.seq + 1) % protocol.SEQ_MODULO and (
                before == frame.seq or frame.cmd == Command.HELLO):
            self.requests[frame.seq] = frame
        return wire


class Firmware:
    def __init__(self, board):
        mm = board.memmap
        regions = {int(r): (protocol.word_bytes(mm, r), lay.depth)
                   for r, lay in mm.regions.items()}
        scratch = FakeBoard(board.config, n_cores=board.n_cores, window=board.window,
                            max_payload=board.max_payload)
        hello = decode_frame(scratch.handle(Frame(0, Command.HELLO, bytes(4)))[:-1]).payload
        config = link_config_header(ChipMap([board.config] * board.n_cores), regions=regions,
                                    window=board.window, max_payload=board.max_payload,
                                    hello=hello)
        sources = {**link_sources(config),
                   "fw_hal_native.c": (HERE / "fw_hal_native.c").read_text()}
        self.lib = ctypes.CDLL(str(build_native(sources, "link")))
        self.memory = {}
        for core in range(board.n_cores):
            for r, (wb, depth) in regions.items():
                buf = ctypes.create_string_buffer(wb * depth)
                self.memory[core, r] = buf
                self.lib.fw_set_memory(core, r, buf)
        self.set_nonce(board.nonce)
        self.lib.link_reset()
        self.out_hdr = ctypes.create_string_buffer(protocol.HEADER.size)
        self.out = ctypes.create_string_buffer(max(board.max_payload, protocol.MAX_PAYLOAD))

    def set_nonce(self, value):
        self.lib.fw_set_nonce(ctypes.c_uint32(value))

    def handle(self, frame):
        hdr = protocol.HEADER.pack(version=frame.version, seq=frame.seq, cmd=int(frame.cmd),
                                   length=len(frame.payload))
        # one buffer for the request and its reply, as on the board (``board.c``)
        ctypes.memmove(self.out, bytes(frame.payload), len(frame.payload))
        done = self.lib.link_handle(hdr, self.out, self.out_hdr, self.out)
        if not done:
            return b""
        if done == 2:                               # LINK_REPLY_RESET: the board's reset
            self.lib.hal_reset()
        h = protocol.HEADER.unpack(self.out_hdr.raw)
        return encode_frame(Frame(h["seq"], h["cmd"], self.out.raw[:h["length"]],
                                  version=h["version"]))


def random_frame(rng, board, seq):
    """A command of any kind, mostly well formed, numbered ``seq``."""
    mm = board.memmap
    regions = list(mm.regions)
    kind = rng.choices(["write", "read", "crc", "status", "hello", "reset", "other", "short"],
                       [30, 25, 10, 8, 4, 1, 3, 3])[0]
    core = rng.choice([0, 0, 1, board.n_cores, 9]) if rng.random() < 0.1 else \
        rng.randrange(board.n_cores)
    region = rng.choice(regions) if rng.random() < 0.95 else rng.choice([7 + 30, 200])
    depth = mm.regions[region].depth if region in mm.regions else 4
    wb = protocol.word_bytes(mm, region) if region in mm.regions else 2
    index = rng.randrange(depth + 2) if rng.random() < 0.9 else rng.getrandbits(32)
    count = rng.randrange(0, max(1, min(depth, 60 // wb)) + 2)
    if kind == "write":
        tail = rng.randbytes(count * wb + (1 if rng.random() < 0.05 else 0))
        payload = REQUEST[Command.WRITE].pack(tail, core=core, region=int(region), index=index)
        return Frame(seq, Command.WRITE, payload)
    if kind == "read":
        return Frame(seq, Command.READ, REQUEST[Command.READ].pack(
            core=core, region=int(region), index=index, count=count))
    if kind == "crc":
        return Frame(seq, Command.REGION_CRC, REQUEST[Command.REGION_CRC].pack(
            core=core, region=int(region), index=index, count=count))
    if kind == "status":
        return Frame(seq, Command.STATUS)
    if kind == "hello":
        return Frame(seq, Command.HELLO, rng.getrandbits(32).to_bytes(4, "little"))
    if kind == "reset":
        return Frame(seq, Command.RESET)
    if kind == "other":
        return Frame(seq, rng.choice([0x55, 0x0F, 0x3C, 0xFF]),
                     rng.randbytes(rng.randrange(6)))
    cmd = rng.choice([Command.READ, Command.STATUS, Command.HELLO, Command.REGION_CRC])
    size = REQUEST[cmd].size
    return Frame(seq, cmd, rng.randbytes(rng.choice([max(size - 1, 0), size + 1])))


@pytest.mark.parametrize("seed, window, n_cores, max_payload", [
    (1, 8, 1, 256), (2, 4, 2, 64), (3, 1, 2, 128), (4, 16, 1, 1024)])
def test_firmware_answers_as_the_spec(seed, window, n_cores, max_payload):
    rng = random.Random(seed)
    board = HardwareBoard(CONFIG, n_cores=n_cores, window=window, max_payload=max_payload,
                          seed=seed)
    fw = Firmware(board)
    # ``executed``: the frames numbered since the last resynchronisation, by number (a retry is
    # one of them, as a client resends them)
    executed, seq, kinds = {}, rng.randrange(256), set()
    for _ in range(3000):
        r = rng.random()
        if executed and r < 0.15:                   # a retry of a recent command
            frame = executed[rng.choice(sorted(executed))]
        elif r < 0.18:                              # a number ahead or behind the window
            frame = random_frame(rng, board, (seq + rng.randrange(1, 250)) % 256)
        elif r < 0.19:
            frame = Frame(seq, Command.STATUS, version=protocol.VERSION + 1)
        elif r < 0.22 or not board.synced:
            frame = Frame(seq, Command.HELLO, rng.getrandbits(32).to_bytes(4, "little"))
        else:
            frame = random_frame(rng, board, seq)
        before = (board.synced, board.expected, board.last_hello)
        want = board.handle(frame)
        fw.set_nonce(board.nonce)                   # a RESET draws the spec's next nonce
        got = fw.handle(frame)
        assert got == want, (frame, decode_frame(want[:-1]) if want else None,
                             decode_frame(got[:-1]) if got else None)
        if want:
            reply = decode_frame(want[:-1])
            kinds.add((Command(frame.cmd) if frame.cmd in Command._value2member_map_
                       else frame.cmd, reply.cmd, reply.payload[1] if reply.cmd == Command.NAK
                       else None))
        if board.last_hello != before[2] or not board.synced:
            executed = {}                           # resynchronised (or reset): a new session
        if board.synced and board.expected == (frame.seq + 1) % 256 and (
                before[1] == frame.seq or frame.cmd == Command.HELLO):
            executed[frame.seq] = frame             # numbered: it may be retried
            executed.pop((frame.seq - window) % 256, None)
        seq = board.expected if board.synced else rng.randrange(256)
    # every memory the same, and the frames reached every kind of answer
    for (core, region), buf in fw.memory.items():
        assert buf.raw == bytes(board.memory[core, region]), (core, region)
    codes = {code for _, cmd, code in kinds if cmd == Command.NAK}
    assert {1, 2, 3, 6, 8}.issubset(codes), codes
    assert {(c, Command.ACK, None) for c in (Command.WRITE, Command.READ, Command.REGION_CRC,
                                              Command.STATUS, Command.HELLO)} <= kinds


# -- the same firmware on SERV, in hardware, behind the UART ----------------------------------

def _fitted(frame, memmap):
    """A WRITE whose words fit their region's width (the chip keeps no bit above it, the
    spec's bytes do)."""
    if frame.cmd != Command.WRITE or len(frame.payload) < REQUEST[Command.WRITE].size:
        return frame
    req = REQUEST[Command.WRITE].unpack(frame.payload)
    if req["region"] not in memmap.regions:
        return frame
    width = memmap.regions[req["region"]].width
    wb = protocol.word_bytes(memmap, req["region"])
    words = bytearray(req["words"])
    for k in range(0, len(words) - len(words) % wb, wb):
        value = int.from_bytes(words[k:k + wb], "little") & ((1 << width) - 1)
        words[k:k + wb] = value.to_bytes(wb, "little")
    return Frame(frame.seq, frame.cmd, REQUEST[Command.WRITE].pack(
        bytes(words), core=req["core"], region=req["region"], index=req["index"]))


def _firmware_loop_class():
    from amaranth.lib import memory, wiring
    from linkloop import Loopback

    from spikeforge.hdl.firmware_link import FirmwareProcessor

    class FirmwareLoop(Loopback):
        """UART -> ``FirmwareProcessor`` (which frames) -> UART; the chip a RAM (no RUN or STEP
        is sent: the chip never runs); the firmware keeps the event counters (STATUS)."""

        def __init__(self, chipmap, hello, regions, window, cpb, max_payload, buffer_bytes):
            self.chipmap = chipmap
            # the frames come back to back (no reply awaited): a receive FIFO for them all
            self.proc = FirmwareProcessor(chipmap, hello=hello, window=window,
                                          max_payload=max_payload, regions=regions,
                                          rx_fifo=buffer_bytes)
            super().__init__(cpb, max_payload, buffer_bytes)

        def path(self, m, urx, utx):
            m.submodules.proc = proc = self.proc
            wiring.connect(m, urx.o, proc.rx)
            wiring.connect(m, proc.tx, utx.i)
            m.d.comb += [proc.rx_error.eq(urx.error), proc.rx_overrun.eq(urx.overrun)]
            cm = self.chipmap
            m.submodules.ram = ram = memory.Memory(shape=cm.data_bits, depth=1 << cm.addr_bits,
                                                   init=[])
            rp, wp = ram.read_port(), ram.write_port()
            req = proc.mem_req
            m.d.comb += [req.ready.eq(1), rp.addr.eq(req.p.addr), rp.en.eq(req.valid),
                         wp.addr.eq(req.p.addr), wp.data.eq(req.p.data),
                         wp.en.eq(req.valid & req.p.write), proc.mem_rsp.payload.eq(rp.data)]
            m.d.sync += proc.mem_rsp.valid.eq(req.valid & ~req.p.write)

    return FirmwareLoop


def test_firmware_on_serv_behind_the_uart():
    from linkloop import LoopRun

    from spikeforge.toolchain import verilator_available

    if not verilator_available():
        pytest.skip("needs Verilator")
    pytest.importorskip("pythondata_cpu_serv")
    rng = random.Random(5)
    window, n_cores, max_payload = 4, 2, 64
    board = HardwareBoard(CONFIG, n_cores=n_cores, window=window, max_payload=max_payload)
    mm = board.memmap
    regions = {int(r): (protocol.word_bytes(mm, r), lay.depth) for r, lay in mm.regions.items()}
    hello = decode_frame(FakeBoard(CONFIG, n_cores=n_cores, window=window,
                                   max_payload=max_payload).handle(
        Frame(0, Command.HELLO, bytes(4)))[:-1]).payload
    top = _firmware_loop_class()(ChipMap([CONFIG] * n_cores), hello, regions, window, 4,
                                 max_payload, 8192)
    frames, seq, executed = [Frame(7, Command.HELLO, b"\x01\x02\x03\x04")], 8, {}
    board.handle(frames[0])
    wants = []
    board = HardwareBoard(CONFIG, n_cores=n_cores, window=window, max_payload=max_payload)
    for k in range(80):
        if k == 0:
            frame = frames[0]
        elif executed and rng.random() < 0.15:
            frame = executed[rng.choice(sorted(executed))]
        elif rng.random() < 0.04:
            frame = random_frame(rng, board, (seq + rng.randrange(1, 250)) % 256)
        else:
            frame = random_frame(rng, board, seq)
            if frame.cmd == Command.RESET:
                frame = Frame(seq, Command.STATUS)   # a reset would draw another nonce
        frame = _fitted(frame, mm)
        if len(frame.payload) > max_payload:          # the deframer drops it (as it should)
            frame = Frame(frame.seq, Command.STATUS)
        if frame.cmd == Command.REGION_CRC and len(frame.payload) == 10:
            req = REQUEST[Command.REGION_CRC].unpack(frame.payload)
            req["count"] = min(req["count"], 6)     # a bitwise CRC is slow on SERV
            frame = Frame(frame.seq, frame.cmd, REQUEST[Command.REGION_CRC].pack(**req))
        before = (board.expected, board.last_hello)
        want = board.handle(frame)
        if board.last_hello != before[1]:
            executed = {}
        if board.synced and board.expected == (frame.seq + 1) % 256 and before[0] == frame.seq:
            executed[frame.seq] = frame
            executed.pop((frame.seq - window) % 256, None)
        wants.append(want)
        frames.append(frame) if k else None
        seq = board.expected
    # last, a STATUS: the firmware counted no CRC or frame error (the spec's board has none)
    frames.append(Frame(seq, Command.STATUS))
    wants.append(board.handle(frames[-1]))
    wire = b"".join(encode_frame(f) for f in frames)
    from spikeforge.hdl.cpu import serv_sources

    out, counters, _ = LoopRun(4, max_payload, top=top, idle_limit=3_000_000,
                               sources=serv_sources()).run(wire)
    assert counters["uart_errors"] == counters["overruns"] == 0, counters
    got = [decode_frame(piece) for piece in out.split(b"\x00")[:-1]]
    want = [decode_frame(w[:-1]) for w in wants if w]
    assert len(got) == len(want)
    nonce = slice(protocol.REPLY[Command.HELLO].offsets()["nonce"][0],
                  protocol.REPLY[Command.HELLO].offsets()["nonce"][0] + 4)
    for g, w in zip(got, want, strict=True):
        if w.cmd == Command.ACK and w.payload[0] == Command.HELLO:
            g = Frame(g.seq, g.cmd, g.payload[:nonce.start] + w.payload[nonce]
                      + g.payload[nonce.stop:])     # the board's own nonce
        assert g == w
