"""Frames over a byte stream: COBS with 0x00 delimiters, a header, and a CRC-32 trailer.

``Deframer`` turns received bytes into validated frames: a ``header`` stream (the fields of
``spikeforge.protocol.HEADER``) followed by exactly ``length`` bytes on ``payload``. Frames are
written into a ring buffer as they arrive and only *committed* when the delimiter arrives with a
matching CRC and length; a corrupted frame is rolled back, counted, and never seen downstream.
``Framer`` does the reverse: header + payload in, COBS-encoded bytes with CRC and delimiter out.
Both are built from ``CobsDecoder``/``CobsEncoder`` and ``amaranth.lib.crc``.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import crc, data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge import protocol

__all__ = ["HeaderLayout", "Token", "ByteLast", "SerialCRC", "CRCRegister", "CobsDecoder",
           "CobsEncoder", "Deframer", "Framer"]

HeaderLayout = data.StructLayout(
    {name: unsigned(8 * nbytes) for name, (_, nbytes, _) in protocol.HEADER.offsets().items()})

# COBS decoder output: a data byte, or (end=1) the delimiter closing a frame; bad=1 on an end
# that cut a COBS block short. Empty frames (two delimiters in a row) give end with empty=1.
Token = data.StructLayout({"data": 8, "end": 1, "bad": 1, "empty": 1})
ByteLast = data.StructLayout({"data": 8, "last": 1})

_OVERHEAD = protocol.HEADER.size + protocol.CRC_BYTES


class SerialCRC(wiring.Component):
    """The protocol's CRC-32 of a byte stream, ``bits`` bits a clock (``8 // bits`` clocks a
    byte, ready again when a byte is done).

    For a stream slower than that (a UART's bytes), the XOR network of a narrow CRC is a
    fraction of the byte-wide one's (``amaranth.lib.crc`` with ``data_width=bits``: the
    reflected CRC-32 takes each byte LSB first). ``start`` begins a new CRC: with a byte, or
    alone (the CRC of no bytes) while ready; ``crc`` and ``match_detected`` are those of the
    bytes taken so far once ``i.ready``.
    """

    start: In(1)
    i: In(stream.Signature(8))
    crc: Out(32)
    match_detected: Out(1)

    def __init__(self, bits=1):
        if bits not in (1, 2, 4, 8):
            raise ValueError(f"bits must be 1, 2, 4 or 8, not {bits!r}")
        self.bits = bits
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        b = self.bits
        m.submodules.engine = engine = crc.Algorithm(**protocol.CRC_ALGORITHM)(
            data_width=b).create()
        byte = Signal(8)
        left = Signal(range(8 // b + 1))  # bit groups of ``byte`` still to take
        first = Signal()                  # the byte begins a new CRC
        m.d.comb += [self.i.ready.eq(left == 0), engine.data.eq(byte[:b]),
                     engine.valid.eq(left != 0),
                     engine.start.eq(first | (self.start & ~self.i.valid & self.i.ready)),
                     self.crc.eq(engine.crc), self.match_detected.eq(engine.match_detected)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [byte.eq(self.i.payload), left.eq(8 // b), first.eq(self.start)]
        with m.Elif(left != 0):
            m.d.sync += [byte.eq(byte >> b), left.eq(left - 1), first.eq(0)]
        return m


def _reflected_polynomial():
    """The protocol's CRC-32 polynomial as a right-shifting register applies it (the CRC is
    reflected: the register's bit 0 is the next to leave)."""
    a = protocol.CRC_ALGORITHM
    assert a["reflect_input"] and a["reflect_output"] and a["crc_width"] == 32
    return int(f"{a['polynomial']:032b}"[::-1], 2)


class CRCRegister(wiring.Component):
    """The protocol's CRC-32 register, which a processor feeds a byte at a time and may set to
    any value: one register keeps the CRCs of several byte streams (each saved and set back by
    the processor), as ``spikeforge.hdl.firmware_link``'s window does.

    ``feed`` takes ``byte`` (a bit a clock, LSB first, in the 8 clocks after: a processor
    whose next access comes 9 clocks or more later never waits, SERV's 32 or more); ``load``
    sets the register to ``value`` (the protocol's initial value, 0xFFFFFFFF, begins a CRC).
    ``crc`` is the register: the CRC of the bytes taken is its complement, and after a frame
    and its CRC it holds the residue (``spikeforge.hdl.firmware``'s ``PROTO_CRC_RESIDUE``).
    ``amaranth.lib.crc`` (``SerialCRC``) cannot be set to a value, hence this one.
    """

    load: In(1)
    value: In(32)
    feed: In(1)
    byte: In(8)
    crc: Out(32, init=protocol.CRC_ALGORITHM["initial_crc"])

    def elaborate(self, platform):
        m = Module()
        shift = Signal(8)
        left = Signal(range(9))          # bits of ``shift`` still to take
        with m.If(self.load):
            m.d.sync += self.crc.eq(self.value)
        with m.Elif(left != 0):
            out = self.crc[0] ^ shift[0]
            m.d.sync += self.crc.eq((self.crc >> 1) ^ Mux(out, _reflected_polynomial(), 0))
        with m.If(self.feed):
            m.d.sync += [shift.eq(self.byte), left.eq(8)]
        with m.Elif(left != 0):
            m.d.sync += [shift.eq(shift >> 1), left.eq(left - 1)]
        return m


class CobsDecoder(wiring.Component):
    """COBS-decodes a byte stream; one token per input byte at most, so it never stalls twice."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(Token))

    def elaborate(self, platform):
        m = Module()
        left = Signal(8)             # data bytes left in the current block; 0: next is a code
        zero_pending = Signal()      # the block ended by a code < 0xFF implies a zero
        in_frame = Signal()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            b = self.i.payload
            with m.If(b == protocol.DELIMITER):
                m.d.sync += [self.o.valid.eq(1), self.o.p.end.eq(1), self.o.p.bad.eq(left != 0),
                             self.o.p.empty.eq(~in_frame),
                             left.eq(0), zero_pending.eq(0), in_frame.eq(0)]
            with m.Elif(left == 0):
                m.d.sync += [self.o.valid.eq(zero_pending), self.o.p.eq(0),
                             left.eq(b - 1), zero_pending.eq(b != 0xFF), in_frame.eq(1)]
            with m.Else():
                m.d.sync += [self.o.valid.eq(1), self.o.p.eq(0), self.o.p.data.eq(b),
                             left.eq(left - 1)]
        return m


class CobsEncoder(wiring.Component):
    """COBS-encodes frames (``last`` marks a frame's final byte) and appends the delimiter.

    A block of up to 254 bytes waits in a block RAM until its length (the code byte) is known.
    A block is written whole, then read whole, so two counters address it (no FIFO). The output
    equals ``cobs.cobs.encode(frame) + b"\\x00"`` byte for byte.

    The block RAM's output goes straight into a register (``rq``, a copy taken every clock):
    its clock-to-out is most of a fast clock, so no logic follows it in the same clock. A byte
    read is sent two clocks later, while the one before is on the line: still a data byte
    every other clock at most.
    """

    i: In(stream.Signature(ByteLast))
    o: Out(stream.Signature(8))
    wake: Out(1)                # a register may change at the next clock (``gating``)

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = block = Memory(shape=8, depth=256, init=[])
        wr = block.write_port()
        rd = block.read_port()
        count = Signal(8)            # bytes in the block being filled
        code = Signal(8)
        drain = Signal(8)            # bytes of the block still to send
        rptr = Signal(8)             # the byte on ``rd.data``
        final_empty = Signal()       # after this block: a last empty block (frame ended on 0)
        end = Signal()               # after this block: the delimiter
        m.d.comb += [wr.addr.eq(count), wr.data.eq(self.i.p.data), rd.addr.eq(rptr + 1)]
        # ``rq``: the read port's word a clock later; ``stale``: a read was issued last clock, so
        # ``rq`` does not show it yet
        rq, stale = Signal(8), Signal()
        m.d.sync += [rq.eq(rd.data), stale.eq(rd.en)]
        # The encoded byte goes out from a register (the block RAM's output is slow): loaded
        # when it is empty, so the line's ``ready`` reaches only its valid flag (a byte every
        # other clock at most, far above the line's rate).
        e_valid, e_ready, e_byte = Signal(), Signal(), Signal(8)
        m.d.comb += [e_ready.eq(~self.o.valid)]
        with m.If(e_valid & e_ready):
            m.d.sync += [self.o.payload.eq(e_byte), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM() as fsm:
            with m.State("FILL"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    close = Signal()
                    with m.If(self.i.p.data == 0):
                        m.d.comb += close.eq(1)
                        m.d.sync += [code.eq(count + 1), final_empty.eq(self.i.p.last),
                                     end.eq(0)]
                    with m.Else():
                        m.d.comb += wr.en.eq(1)
                        m.d.sync += [code.eq(count + 2), final_empty.eq(0),
                                     end.eq(self.i.p.last)]
                        m.d.comb += close.eq(self.i.p.last | (count == 253))
                    with m.If(close):
                        m.d.sync += [drain.eq(count + (self.i.p.data != 0)), count.eq(0)]
                        m.next = "CODE"
                    with m.Else():
                        m.d.sync += count.eq(count + 1)
            with m.State("CODE"):
                # byte 0 of the block is read while the code goes out
                m.d.comb += [e_valid.eq(1), e_byte.eq(code),
                             rd.addr.eq(0), rd.en.eq(1)]
                m.d.sync += rptr.eq(0)
                with m.If(e_ready):
                    with m.If(drain != 0):
                        m.next = "DATA"
                    with m.Elif(final_empty):
                        m.next = "EMPTY"
                    with m.Elif(end):
                        m.next = "DELIM"
                    with m.Else():
                        m.next = "FILL"
            with m.State("DATA"):
                m.d.comb += [e_valid.eq(~stale), e_byte.eq(rq),
                             rd.en.eq(e_ready & ~stale)]
                with m.If(e_ready & ~stale):
                    m.d.sync += [drain.eq(drain - 1), rptr.eq(rptr + 1)]
                    with m.If(drain == 1):
                        with m.If(final_empty):
                            m.next = "EMPTY"
                        with m.Elif(end):
                            m.next = "DELIM"
                        with m.Else():
                            m.next = "FILL"
            with m.State("EMPTY"):
                m.d.comb += [e_valid.eq(1), e_byte.eq(1)]
                with m.If(e_ready):
                    m.next = "DELIM"
            with m.State("DELIM"):
                m.d.comb += [e_valid.eq(1), e_byte.eq(protocol.DELIMITER)]
                with m.If(e_ready):
                    m.next = "FILL"
        # At rest: filling with no byte offered, or a byte waiting in ``o`` for the line (every
        # later state waits for ``e_ready``). In DATA a read's word reaches ``rq`` the clock
        # after it (``stale``); in CODE the read of byte 0 repeats while it waits, the same word
        # into the same registers (settled two clocks after the state is entered, ``SETTLE``).
        m.d.comb += self.wake.eq(Mux(fsm.ongoing("FILL"), self.i.valid,
                                     e_ready | (fsm.ongoing("DATA") & stale))
                                 | (self.o.valid & self.o.ready))
        return m


class Deframer(wiring.Component):
    """Received bytes in, validated frames out; corrupted frames are dropped and counted.

    - ``i``: bytes from the UART; ``rx_error``: pulse when the UART lost a byte (framing error
      or overrun), which spoils the frame being received.
    - ``header``: one per valid frame; then exactly ``header.length`` bytes on ``payload``.
    - One-clock pulses, one per frame, for whoever counts them (the SoC's ``StatsBank``):
      ``frame``: a frame passed on; ``crc_error``: a well-formed frame whose CRC failed;
      ``frame_error``: a truncated COBS block, a length that disagrees with the header, too
      short or longer than ``max_payload``, a UART error inside the frame; ``overflow``: a
      frame dropped because the ring buffer (``buffer_bytes``) was full.

    The ring holds each frame's header and payload, never its CRC: bytes reach the ring four
    bytes after they arrive, so the last four of a frame (its CRC) are only checked. The default
    ring holds two largest payloads (one block RAM of 512 bytes per 256 bytes of payload), and
    the headers need no queue of their own.
    """

    i: In(stream.Signature(8))
    rx_error: In(1)
    header: Out(stream.Signature(HeaderLayout))
    payload: Out(stream.Signature(8))
    frame: Out(1)
    crc_error: Out(1)
    frame_error: Out(1)
    overflow: Out(1)
    wake: Out(1)                         # a register may change at the next clock (``gating``)

    def __init__(self, *, max_payload=protocol.MAX_PAYLOAD, buffer_bytes=None):
        if not isinstance(max_payload, int) or not 1 <= max_payload <= protocol.MAX_PAYLOAD:
            raise ValueError(f"max payload must be from 1 to {protocol.MAX_PAYLOAD}, "
                             f"not {max_payload!r}")
        need = max_payload + protocol.HEADER.size
        if buffer_bytes is None:
            buffer_bytes = 1 << (2 * max_payload - 1).bit_length()
        if (not isinstance(buffer_bytes, int) or buffer_bytes < need
                or buffer_bytes & (buffer_bytes - 1)):
            raise ValueError(f"buffer bytes must be a power of two of at least {need}, "
                             f"not {buffer_bytes!r}")
        self.max_payload = max_payload
        self.buffer_bytes = buffer_bytes
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        size = self.buffer_bytes
        abits = size.bit_length() - 1
        nhdr, ncrc = protocol.HEADER.size, protocol.CRC_BYTES
        m.submodules.cobs = cobs = CobsDecoder()
        wiring.connect(m, wiring.flipped(self.i), cobs.i)
        m.submodules.crc = crcp = SerialCRC(bits=1)
        m.submodules.ring = ring = Memory(shape=8, depth=size, init=[])
        wr = ring.write_port()
        rd = ring.read_port()

        # Pointers carry one extra bit so a full ring and an empty one differ.
        base = Signal(abits + 1)         # first byte of the frame being received
        rd_ptr = Signal(abits + 1)
        pos = Signal(range(self.max_payload + _OVERHEAD + 2))   # decoded bytes in this frame
        late = Signal(8 * ncrc)          # the last bytes received, oldest in the low byte
        length = Signal(16)              # the header's length field
        too_long = Signal()
        no_room = Signal()
        spoiled = Signal()               # UART lost a byte in this frame
        wr_ptr = Signal(abits + 1)
        fill = Signal(abits + 1)         # bytes from the reader to ``wr_ptr``: the ring is full
        m.d.comb += fill.eq(wr_ptr - rd_ptr)                # at ``size`` (its top bit)

        # A token waits while the CRC takes the byte before it (8 clocks; UART bytes are
        # further apart), so the delimiter finds the CRC of the whole frame.
        tok = cobs.o
        m.d.comb += tok.ready.eq(crcp.i.ready)
        took = tok.valid & tok.ready
        with m.If(self.rx_error):
            m.d.sync += spoiled.eq(1)

        # ring offset of late[:8]: ``pos - ncrc``, a register counted with ``pos``
        offset = Signal(len(pos), init=-ncrc % (1 << len(pos)))
        m.d.comb += [wr_ptr.eq(base + offset), wr.addr.eq(wr_ptr), wr.data.eq(late[:8])]
        m.d.comb += [crcp.i.valid.eq(tok.valid & ~tok.p.end), crcp.start.eq(pos == 0),
                     crcp.i.payload.eq(tok.p.data)]
        with m.If(took & ~tok.p.end):
            m.d.sync += late.eq(Cat(late[8:], tok.p.data))
            with m.If(pos == nhdr):
                m.d.sync += length.eq(late[8 * (ncrc - 2):])    # header bytes 3 and 4
            with m.If(pos >= ncrc):
                with m.If(offset >= nhdr + self.max_payload):
                    m.d.sync += too_long.eq(1)
                with m.Elif(fill[abits]):
                    m.d.sync += no_room.eq(1)
                with m.Else():
                    m.d.comb += wr.en.eq(1)
            with m.If(~too_long):
                m.d.sync += [pos.eq(pos + 1), offset.eq(offset + 1)]

        with m.If(took & tok.p.end):
            m.d.sync += [pos.eq(0), offset.eq(offset.init), too_long.eq(0), no_room.eq(0),
                         spoiled.eq(self.rx_error)]
            with m.If(~tok.p.empty):
                well_formed = (~tok.p.bad & ~too_long & ~spoiled & (pos >= _OVERHEAD)
                               & (length == pos - _OVERHEAD))
                with m.If(~well_formed):
                    m.d.comb += self.frame_error.eq(1)
                with m.Elif(~crcp.match_detected):
                    m.d.comb += self.crc_error.eq(1)
                with m.Elif(no_room):
                    m.d.comb += self.overflow.eq(1)
                with m.Else():
                    # Commit: the header and payload in the ring are the next frame.
                    m.d.sync += base.eq(wr_ptr)
                    m.d.comb += self.frame.eq(1)

        # Read side: the header's bytes from the ring into ``head``, then the payload bytes
        # (the ring's read port has one clock of latency). Every byte read lands in a register
        # before any logic sees it (a block RAM's output is slow), and the next byte is read
        # only once the payload register is empty: the reader's ``ready`` reaches no further
        # than that register's valid flag (a byte every third clock, far above the line's rate).
        head = Signal(8 * nhdr)
        hn = Signal(range(nhdr + 1))     # header bytes fetched
        arrives = Signal()               # the read port shows the byte read last clock
        arrives_h = Signal()             # a header byte
        remaining = Signal(16)           # payload bytes left to fetch
        none_left = Signal(init=1)       # remaining == 0
        fetch_h = Signal()
        fetch_p = Signal()
        busy = arrives | self.payload.valid
        m.d.comb += [fetch_h.eq(none_left & ~busy & (hn != nhdr) & (rd_ptr != base)),
                     fetch_p.eq(~none_left & ~busy),
                     rd.addr.eq(rd_ptr), rd.en.eq(fetch_h | fetch_p),
                     self.header.valid.eq((hn == nhdr) & ~arrives),
                     self.header.payload.eq(head)]
        m.d.sync += [arrives.eq(fetch_h | fetch_p), arrives_h.eq(fetch_h)]
        with m.If(arrives & arrives_h):
            m.d.sync += head.eq(Cat(head[8:], rd.data))
        with m.If(arrives & ~arrives_h):
            m.d.sync += [self.payload.payload.eq(rd.data), self.payload.valid.eq(1)]
        with m.Elif(self.payload.ready):
            m.d.sync += self.payload.valid.eq(0)
        with m.If(fetch_h | fetch_p):
            m.d.sync += rd_ptr.eq(rd_ptr + 1)
        with m.If(fetch_h):
            m.d.sync += hn.eq(hn + 1)
        with m.If(self.header.valid & self.header.ready):
            m.d.sync += [remaining.eq(self.header.p.length), hn.eq(0),
                         none_left.eq(self.header.p.length == 0)]
        with m.If(fetch_p):
            m.d.sync += [remaining.eq(remaining - 1), none_left.eq(remaining == 1)]

        # At rest: no byte arriving or decoded, the CRC between bytes, nothing read or offered.
        # (An idle clock with ``pos == 0`` restarts the CRC; so does a frame's first byte.)
        # A header offered counts whether taken or not: ``header.ready`` comes from the command
        # processor's state, and through the gate's enable that was the ULX3S's critical path.
        m.d.comb += self.wake.eq(self.i.valid | tok.valid | ~crcp.i.ready | self.rx_error
                                 | arrives | self.payload.valid | fetch_h | fetch_p
                                 | self.header.valid)
        return m


class Framer(wiring.Component):
    """Header + ``length`` payload bytes in; ``COBS(header | payload | crc32) 0x00`` out.

    The ``version`` field of ``header`` is ignored: frames always carry ``protocol.VERSION``.
    The CRC takes 2 bits a clock (a byte in 4 clocks, far above a UART's rate); one register
    stands between the byte chosen here and the COBS encoder, so neither's logic adds to the
    other's in a clock.
    """

    header: In(stream.Signature(HeaderLayout))
    payload: In(stream.Signature(8))
    o: Out(stream.Signature(8))
    wake: Out(1)                # a register may change at the next clock (``gating``)

    def __init__(self, max_payload=protocol.MAX_PAYLOAD):
        self.max_payload = max_payload
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.cobs = cobs = CobsEncoder()
        wiring.connect(m, wiring.flipped(self.o), cobs.o)
        m.submodules.crc = crcp = SerialCRC(bits=2)

        hdr = Signal(HeaderLayout)
        nhdr, ncrc = protocol.HEADER.size, protocol.CRC_BYTES
        raw = Signal(8 * nhdr)           # the header bytes, in wire order
        for name, (off, nbytes, _) in protocol.HEADER.offsets().items():
            value = Const(protocol.VERSION, 8) if name == "version" else hdr[name]
            m.d.comb += raw[8 * off:8 * (off + nbytes)].eq(value)
        idx = Signal(range(max(nhdr, ncrc)))     # byte of the header or of the CRC
        left = Signal(range(self.max_payload + 1))

        # the byte chosen (``take``: into the register ahead of the encoder, and the CRC)
        byte = Signal(8)
        take = Signal()
        pipe = Signal(ByteLast)
        pipe_valid = Signal()
        room = ~pipe_valid | cobs.i.ready
        m.d.comb += [cobs.i.valid.eq(pipe_valid), cobs.i.payload.eq(pipe),
                     crcp.i.payload.eq(byte)]
        with m.If(cobs.i.ready):
            m.d.sync += pipe_valid.eq(0)
        with m.If(take):
            m.d.sync += [pipe.data.eq(byte), pipe_valid.eq(1), pipe.last.eq(0)]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += self.header.ready.eq(1)
                with m.If(self.header.valid):
                    m.d.sync += [hdr.eq(self.header.payload), idx.eq(0),
                                 left.eq(self.header.p.length)]
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += [byte.eq(raw.word_select(idx, 8)), crcp.i.valid.eq(room),
                             crcp.start.eq(idx == 0), take.eq(room & crcp.i.ready)]
                with m.If(take):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == nhdr - 1):
                        m.d.sync += idx.eq(0)
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                with m.If(left == 0):
                    m.next = "CRC"
                with m.Else():
                    m.d.comb += [byte.eq(self.payload.payload),
                                 crcp.i.valid.eq(self.payload.valid & room),
                                 self.payload.ready.eq(room & crcp.i.ready),
                                 take.eq(self.payload.valid & room & crcp.i.ready)]
                    with m.If(take):
                        m.d.sync += left.eq(left - 1)
            with m.State("CRC"):
                # once the CRC has the last byte, its register holds still while it goes out
                m.d.comb += [byte.eq(crcp.crc.word_select(idx, 8)),
                             take.eq(room & crcp.i.ready)]
                with m.If(take):
                    m.d.sync += [idx.eq(idx + 1), pipe.last.eq(idx == ncrc - 1)]
                    with m.If(idx == ncrc - 1):
                        m.next = "IDLE"
        # At rest: no header offered in IDLE, or a byte that cannot move on (the register ahead
        # of the encoder full and the encoder busy); the CRC works while not ready.
        m.d.comb += self.wake.eq(Mux(fsm.ongoing("IDLE"), self.header.valid,
                                     take | (fsm.ongoing("PAYLOAD") & (left == 0)))
                                 | ~crcp.i.ready | (pipe_valid & cobs.i.ready) | cobs.wake)
        return m
