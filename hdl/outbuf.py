"""The output side of the link: SPIKES frames tagged with their step, kept until acknowledged.

``OutputBuffer`` collects a core's spikes of each step into a ring, cuts them into frames of at
most ``(max_payload - 6) / 2`` neurons (the last frame of a step carries ``END_OF_STEP``; a step
without spikes still sends one empty frame, which tells the host the step is over), numbers the
frames with the output sequence numbers of ``docs/protocol.md`` and sends them. Frames stay in the
ring until an ``OUT_ACK`` covers them; when none arrived for ``timeout`` clocks, every sent but
unacknowledged frame is sent again, oldest first. ``room`` tells the stepper whether a whole step
fits (``out_window`` frames and the ring), so a slow host slows the run instead of losing spikes.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge import protocol
from spikeforge.protocol import OUTPUT, Command, StepFlags

from .framing import HeaderLayout

__all__ = ["OutputBuffer"]

_SPIKES = OUTPUT[Command.SPIKES]


class OutputBuffer(wiring.Component):
    """Spikes of ``n_neurons`` neurons in, SPIKES frames out (``tx_header`` / ``tx_payload``).

    ``begin`` (with ``step``) opens a step, ``end`` closes it; ``ack`` (with ``ack_next``) is an
    OUT_ACK; ``clear`` forgets everything once the frame being sent is out. ``out_seq`` is the
    oldest unacknowledged number (HELLO's ``out_seq``), ``resent`` counts frames sent again.
    """

    def __init__(self, n_neurons, *, core=0, out_window=8, max_payload=protocol.MAX_PAYLOAD,
                 timeout=100_000):
        if out_window < 1 or out_window & (out_window - 1) or out_window > 64:
            raise ValueError(f"out window must be a power of two from 1 to 64, "
                             f"not {out_window!r}")
        self.n_neurons = n_neurons
        self.core = core
        self.out_window = out_window
        self.per_frame = min((max_payload - _SPIKES.size) // 2, n_neurons)
        self.frames_per_step = -(-n_neurons // self.per_frame)
        if self.frames_per_step > out_window:
            raise ValueError(f"a step of {n_neurons} spikes takes {self.frames_per_step} "
                             f"frames, more than the out window of {out_window}")
        self.ring = 1 << max(2 * n_neurons - 1, 63).bit_length()
        self.timeout = timeout
        nb = max((n_neurons - 1).bit_length(), 1)
        super().__init__({
            "spikes": In(stream.Signature(nb)), "begin": In(1), "step": In(32), "end": In(1),
            "room": Out(1), "ack": In(1), "ack_next": In(8), "clear": In(1),
            "tx_header": Out(stream.Signature(HeaderLayout)),
            "tx_payload": Out(stream.Signature(8)),
            "out_seq": Out(8), "resent": Out(32), "pending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        ow, ring, spf = self.out_window, self.ring, self.per_frame
        owb = max(ow.bit_length() - 1, 0)
        rb = ring.bit_length()               # ring pointers with one extra bit
        nb = len(self.spikes.payload)
        m.submodules.ring = mem = Memory(shape=nb, depth=ring, init=[])
        wp = mem.write_port()
        rp = mem.read_port()

        head, ack, sent = Signal(8), Signal(8), Signal(8)
        d_step = Array(Signal(32, name=f"d_step{k}") for k in range(ow))
        d_start = Array(Signal(rb, name=f"d_start{k}") for k in range(ow))
        d_count = Array(Signal(range(spf + 1), name=f"d_count{k}") for k in range(ow))
        d_end = Array(Signal(name=f"d_end{k}") for k in range(ow))

        def slot(seq):
            return seq[:owb] if owb else Const(0, 1)

        w_ptr = Signal(rb)
        collecting = Signal()
        cur_step = Signal(32)
        cur_start = Signal(rb)
        cur_count = Signal(range(spf + 1))
        tail = Signal(rb)
        m.d.comb += [tail.eq(Mux(ack != head, d_start[slot(ack)], cur_start)),
                     self.out_seq.eq(ack), self.pending.eq((ack != head) | collecting)]
        used_frames = (head - ack)[:8]
        m.d.comb += self.room.eq((used_frames + self.frames_per_step <= ow)
                                 & (ring - (w_ptr - tail)[:rb] >= self.n_neurons))

        def close(count, end, start):
            m.d.sync += [d_step[slot(head)].eq(cur_step), d_start[slot(head)].eq(start),
                         d_count[slot(head)].eq(count), d_end[slot(head)].eq(end),
                         head.eq(head + 1)]

        # -- collect -------------------------------------------------------------------------
        m.d.comb += [self.spikes.ready.eq(1), wp.addr.eq(w_ptr[:rb - 1]),
                     wp.data.eq(self.spikes.payload)]
        with m.If(self.begin):
            m.d.sync += [collecting.eq(1), cur_step.eq(self.step), cur_start.eq(w_ptr),
                         cur_count.eq(0)]
        with m.If(self.spikes.valid & collecting):
            m.d.comb += wp.en.eq(1)
            m.d.sync += w_ptr.eq(w_ptr + 1)
            with m.If(cur_count == spf - 1):
                close(spf, 0, cur_start)
                m.d.sync += [cur_start.eq(w_ptr + 1), cur_count.eq(0)]
            with m.Else():
                m.d.sync += cur_count.eq(cur_count + 1)
        with m.If(self.end & collecting):
            close(cur_count, 1, cur_start)
            m.d.sync += collecting.eq(0)

        # -- acknowledgements and the resend timer --------------------------------------------
        timer = Signal(range(self.timeout + 1))
        with m.If(sent != ack):
            m.d.sync += timer.eq(Mux(timer == self.timeout, timer, timer + 1))
        with m.If(self.ack):
            dist = (self.ack_next - ack)[:8]
            with m.If((dist != 0) & (dist <= used_frames)):
                m.d.sync += [ack.eq(self.ack_next), timer.eq(0)]

        # -- transmit --------------------------------------------------------------------------
        tx_seq = Signal(8)
        left = Signal(range(spf + 1))
        rd_ptr = Signal(rb)
        idx = Signal(3)
        fixed = Signal(8 * _SPIKES.size)
        m.d.comb += [rp.addr.eq(rd_ptr[:rb - 1]), rp.en.eq(1)]
        word = Signal(16)
        m.d.comb += word.eq(rp.data)
        pending_clear = Signal()
        with m.If(self.clear):
            m.d.sync += pending_clear.eq(1)
        behind = (sent - ack)[:8] > used_frames
        with m.FSM():
            with m.State("IDLE"):
                with m.If(pending_clear):
                    m.d.sync += [head.eq(0), ack.eq(0), sent.eq(0), w_ptr.eq(0),
                                 collecting.eq(0), self.resent.eq(0), timer.eq(0),
                                 pending_clear.eq(0)]
                with m.Elif(behind):
                    m.d.sync += sent.eq(ack)
                with m.Elif(sent != head):
                    k = slot(sent)
                    m.d.sync += [tx_seq.eq(sent), left.eq(d_count[k]), rd_ptr.eq(d_start[k]),
                                 fixed.eq(Cat(d_step[k], Const(self.core, 8),
                                              d_end[k] * int(StepFlags.END_OF_STEP))),
                                 idx.eq(0), timer.eq(0)]
                    m.next = "HEADER"
                with m.Elif((sent != ack) & (timer == self.timeout)):
                    m.d.sync += [self.resent.eq(self.resent + (sent - ack)[:8]), sent.eq(ack),
                                 timer.eq(0)]
            with m.State("HEADER"):
                m.d.comb += [self.tx_header.valid.eq(1),
                             self.tx_header.p.version.eq(protocol.VERSION),
                             self.tx_header.p.seq.eq(tx_seq),
                             self.tx_header.p.cmd.eq(Command.SPIKES),
                             self.tx_header.p.length.eq(_SPIKES.size + 2 * left)]
                with m.If(self.tx_header.ready):
                    m.next = "FIXED"
            with m.State("FIXED"):
                m.d.comb += [self.tx_payload.valid.eq(1),
                             self.tx_payload.payload.eq(fixed.word_select(idx, 8))]
                with m.If(self.tx_payload.ready):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == _SPIKES.size - 1):
                        with m.If(left == 0):
                            m.d.sync += sent.eq(sent + 1)
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "LO"
            with m.State("WAIT"):
                m.next = "LO"
            with m.State("LO"):
                m.d.comb += [self.tx_payload.valid.eq(1), self.tx_payload.payload.eq(word[:8])]
                with m.If(self.tx_payload.ready):
                    m.next = "HI"
            with m.State("HI"):
                m.d.comb += [self.tx_payload.valid.eq(1), self.tx_payload.payload.eq(word[8:])]
                with m.If(self.tx_payload.ready):
                    m.d.sync += [rd_ptr.eq(rd_ptr + 1), left.eq(left - 1)]
                    with m.If(left == 1):
                        m.d.sync += sent.eq(sent + 1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "WAIT"
        return m
