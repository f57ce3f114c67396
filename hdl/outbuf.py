"""The output side of the link: SPIKES frames tagged with their step, kept until acknowledged.

``OutputBuffer`` collects the chip's host spikes of each step (``spikeforge.hdl.router``'s
``host_out``: neuron and core) into one ring per core, cuts each core's spikes into frames of at
most ``(max_payload - 6) / 2`` neurons (a SPIKES frame names one core), and at the end of the step
closes every core's last frame that holds spikes, cores in order; the last core's frame is always
sent, even empty, and carries ``END_OF_STEP``, which tells the host the step is over. It numbers
the frames with the output sequence numbers of ``docs/protocol.md`` and sends them. Frames stay
in the rings until an ``OUT_ACK`` covers them; when none arrived for ``timeout`` clocks, every
sent but unacknowledged frame is sent again, oldest first. ``room`` tells the stepper whether a
whole step fits (``out_window`` frames and every ring), so a slow host slows the run instead of
losing spikes. The rings share one block RAM of ``n_cores x ring`` neuron numbers (two steps of
every neuron firing).

PROBE_DATA payloads (``spikeforge.hdl.probe``) arrive on ``probe`` after the barrier and before
``end``; they are kept in a byte ring of ``n_probes x probe_payload`` bytes rounded up to a power
of two (one step of every probe at its largest: one block RAM of an iCE40 at the iCEBreaker's
sizes), numbered in the same sequence as the SPIKES frames, so they come before the step's last
SPIKES frame.

Area: a frame's descriptor is only what the ring does not say (core or PROBE_DATA, where the
frame ends in its ring, the END_OF_STEP flag, the low byte of the step), in flip-flops with one
write source; each block of logic that reads one (release, transmit) is a multiplexer over
the window, so every bit kept per frame costs LUTs. The frames of the buffer share the step's
high bits: a step whose high bits differ (every 256 steps, or after the host moved the step
counter) waits until the buffer is empty, an acknowledgement round trip at most.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge import protocol
from spikeforge.protocol import OUTPUT, Command, StepFlags

from .framing import HeaderLayout
from .target import is_ice40

__all__ = ["OutputBuffer", "ProbeByte", "RingMemory", "output_sizes"]

_SPIKES = OUTPUT[Command.SPIKES]
_STEP_LO = 8          # step bits kept per frame (see OutputBuffer.elaborate)

# One byte of a PROBE_DATA payload; ``last`` ends the frame.
ProbeByte = data.StructLayout({"data": 8, "last": 1})

_BANK = 128           # words of a bank of a RingMemory in LUT RAM


def output_sizes(n_neurons, *, n_cores=1, n_probes=0, probe_payload=256, out_window=8,
                 max_payload=protocol.MAX_PAYLOAD):
    """The output buffer's sizes (``OutputBuffer``'s, and the firmware's in
    ``spikeforge.hdl.firmware_link``): ``per_frame`` neurons a SPIKES frame, ``frames_per_step``
    at most, ``ring`` neuron numbers a core's ring (two steps of every neuron firing) and
    ``probe_ring`` bytes of PROBE_DATA payloads (a step of every probe at its largest), both
    powers of two. Refuses a step that does not fit ``out_window`` frames."""
    if out_window < 1 or out_window & (out_window - 1) or out_window > 64:
        raise ValueError(f"out window must be a power of two from 1 to 64, "
                         f"not {out_window!r}")
    per_frame = min((max_payload - _SPIKES.size) // 2, n_neurons)
    frames_per_step = n_cores * -(-n_neurons // per_frame) + n_probes
    if frames_per_step > out_window:
        raise ValueError(f"a step of {n_cores} x {n_neurons} spikes and {n_probes} probes "
                         f"takes {frames_per_step} frames, more than the out window "
                         f"of {out_window}")
    return dict(per_frame=per_frame, frames_per_step=frames_per_step,
                ring=1 << max(2 * n_neurons - 1, 63).bit_length(),
                probe_ring=1 << max(n_probes * probe_payload - 1, 15).bit_length())


class RingMemory:
    """``depth`` words of ``width`` bits in the module ``m`` (named ``name``), written one a
    clock (``w_addr``, ``w_data``, ``w_en``) and read at ``r_addr`` into ``r_data`` ``latency``
    clocks later (not transparent: a word written on the clock of the read, or after, is not
    seen). The memories are ``m``'s own (a board's Yosys commands select them by module).

    On an iCE40 (the ``platform``'s device), or when ``depth`` is at most one bank, one memory
    read into a register: ``latency`` 1 (block RAM). Elsewhere banks of ``_BANK`` words, each
    read into a register, then a register choosing the bank: ``latency`` 2. The boards put these
    memories in LUT RAM, where a read through one deep multiplexer does not fit one fast clock
    (``banks`` forces the number of banks).
    """

    def __init__(self, m, name, width, depth, platform=None, *, banks=None):
        if banks is None:
            banks = 1 if is_ice40(platform) or depth <= _BANK else depth // _BANK
        bd = depth // banks
        if depth % banks or bd & (bd - 1):
            raise ValueError(f"{depth} words do not split into {banks} equal banks")
        self.banks = banks
        self.latency = 1 if banks == 1 else 2
        self.w_addr, self.w_data = Signal(range(depth), name=f"{name}_w_addr"), Signal(width)
        self.w_en = Signal(name=f"{name}_w_en")
        self.r_addr, self.r_data = Signal(range(depth), name=f"{name}_r_addr"), Signal(width)
        lb = bd.bit_length() - 1
        outs = []
        for b in range(banks):
            mem = Memory(shape=width, depth=bd, init=[])
            m.submodules[name if banks == 1 else f"{name}{b}"] = mem
            wp, rp = mem.write_port(), mem.read_port()
            here = (self.w_addr[lb:] == b) if banks > 1 else 1
            m.d.comb += [wp.addr.eq(self.w_addr[:lb]), wp.data.eq(self.w_data),
                         wp.en.eq(self.w_en & here), rp.addr.eq(self.r_addr[:lb]), rp.en.eq(1)]
            outs.append(rp.data)
        if banks == 1:
            m.d.comb += self.r_data.eq(outs[0])
        else:
            sel = Signal(range(banks), name=f"{name}_bank")
            m.d.sync += [sel.eq(self.r_addr[lb:]), self.r_data.eq(Array(outs)[sel])]


class OutputBuffer(wiring.Component):
    """Spikes of ``n_cores`` cores of ``n_neurons`` neurons in, SPIKES frames out.

    ``spikes`` carries ``neuron`` and ``core`` (``spikeforge.hdl.router.host_spike_layout``;
    other fields are ignored). ``begin`` opens a step, ``end`` closes it; ``step`` is the step
    about to start, already while ``room`` is looked at (``room`` depends on it), and
    ``step_moves`` is high on each clock after which ``step`` changes; ``ack`` (with
    ``ack_next``) is an OUT_ACK; ``clear`` forgets everything once the frame being sent is out.
    ``out_seq`` is the oldest unacknowledged number (HELLO's ``out_seq``); ``resent`` is, for one
    clock, the number of frames about to be sent again (at most the window; the SoC's
    ``StatsBank`` counts them). ``wake`` is high in every clock after which a register may
    change (``spikeforge.hdl.gating``); the resend timer, which moves on every clock while
    frames wait for their acknowledgement, counts in clock domain ``timer_domain`` (the SoC's
    ungated clock), and the buffer sees it through ``t_full`` (a register of its own domain,
    which ``wake`` covers).
    """

    def __init__(self, n_neurons, *, n_cores=1, spike_shape=None, n_probes=0, probe_payload=256,
                 out_window=8, max_payload=protocol.MAX_PAYLOAD, timeout=100_000,
                 timer_domain="sync"):
        sizes = output_sizes(n_neurons, n_cores=n_cores, n_probes=n_probes,
                             probe_payload=probe_payload, out_window=out_window,
                             max_payload=max_payload)
        self.n_neurons = n_neurons
        self.n_cores = n_cores
        self.out_window = out_window
        self.per_frame = sizes["per_frame"]
        self.n_probes = n_probes
        self.max_payload = max_payload
        self.probe_payload = probe_payload
        self.frames_per_step = sizes["frames_per_step"]
        self.probe_ring = sizes["probe_ring"]
        self.ring = sizes["ring"]
        self.timeout = timeout
        self.timer_domain = timer_domain
        self.neuron_bits = max((n_neurons - 1).bit_length(), 1)
        self.core_bits = max((n_cores - 1).bit_length(), 1)
        if spike_shape is None:
            spike_shape = data.StructLayout({"neuron": self.neuron_bits,
                                             "core": self.core_bits})
        super().__init__({
            "spikes": In(stream.Signature(spike_shape)), "begin": In(1), "step": In(32),
            "step_moves": In(1),
            "end": In(1), "room": Out(1), "ack": In(1), "ack_next": In(8), "clear": In(1),
            "probe": In(stream.Signature(ProbeByte)), "closing": Out(1),
            "tx_header": Out(stream.Signature(HeaderLayout)),
            "tx_payload": Out(stream.Signature(8)),
            "out_seq": Out(8), "resent": Out(range(out_window + 1)), "pending": Out(1),
            "wake": Out(1),
        })

    def elaborate(self, platform):  # noqa: C901 - one buffer, read top to bottom
        m = Module()
        fast = not is_ice40(platform)
        ow, ring, spf, K = self.out_window, self.ring, self.per_frame, self.n_cores
        owb = max(ow.bit_length() - 1, 0)
        rb = ring.bit_length()               # ring pointers with one extra bit
        nb, cb = self.neuron_bits, self.core_bits
        # read in one clock (an iCE40's block RAM) or two (banks of LUT RAM): ``RingMemory``
        mem = RingMemory(m, "ring", nb, ring * K, platform)
        pr = self.probe_ring
        prb = pr.bit_length()
        pmem = RingMemory(m, "probe_ring", 8, pr, platform)
        sb = max(rb, prb)
        cnt_max = max(spf, self.probe_payload)

        def ring_addr(ptr, core):
            return Cat(ptr[:rb - 1], core[:cb]) if K > 1 else ptr[:rb - 1]

        def slot(seq):
            return seq[:owb] if owb else Const(0, 1)

        # Frame descriptors, one per output sequence number in the window. A descriptor holds
        # only where its frame ends in its ring: a ring's frames lie end to end in the order of
        # their numbers, so a frame starts where the ring's previous frame ended (``s_ptr``
        # while sending, ``tail`` for the oldest unacknowledged one), and releasing a frame
        # moves its ring's tail to that end. Of the step only the low ``_STEP_LO`` bits are
        # kept: every frame in the buffer shares the high bits of ``cur_step`` (``room`` holds
        # back a step whose high bits differ until the buffer is empty).
        head, ack, sent = Signal(8), Signal(8), Signal(8)
        d_step = Array(Signal(_STEP_LO, name=f"d_step{k}") for k in range(ow))
        d_core = Array(Signal(cb, name=f"d_core{k}") for k in range(ow))
        d_probe = Array(Signal(name=f"d_probe{k}") for k in range(ow))     # PROBE_DATA
        d_stop = Array(Signal(sb, name=f"d_stop{k}") for k in range(ow))   # ring end
        d_end = Array(Signal(name=f"d_end{k}") for k in range(ow))

        w_ptr = Array(Signal(rb, name=f"w_ptr{c}") for c in range(K))
        cur_count = Array(Signal(range(spf + 1), name=f"cur_count{c}") for c in range(K))
        collecting = Signal()
        closing = Signal()
        close_core = Signal(range(K + 1))
        cur_step = Signal(32)
        used_frames = (head - ack)[:8]
        # Acknowledged frames are released one per clock (every other off an iCE40; ``rel``
        # walks up to ``ack``). A
        # descriptor is reused only once released, so ``room`` counts frames from ``rel``.
        rel = Signal(8)
        tail = Array(Signal(rb, name=f"tail{c}") for c in range(K))
        p_tail = Signal(prb)
        # The release walk and the idle state's decisions compare 8-bit frame counters. Off an
        # iCE40 they use these comparisons registered on the clock before (for timing: the
        # comparisons and the multiplexers after them do not fit one fast clock) and act only
        # when no counter moved on that clock (``settled``: ``moved`` was low), when the
        # registered comparisons describe the counters as they are. A decision waits a clock
        # at most; none is taken on stale counters.
        timer = Signal(range(self.timeout + 1))
        td = self.timer_domain
        # ``timer`` at its limit, registered when it counts in another domain (or for timing)
        t_full_now = timer == self.timeout
        t_full = t_full_now
        if fast or td != "sync":
            t_full = Signal()
            m.d.sync += t_full.eq(t_full_now)
        moved = Signal()        # head, ack, sent or rel is assigned on this clock
        if fast:
            rel_eq_ack, settled_q = Signal(init=1), Signal()
            sent_ne_head, sent_ne_ack = Signal(), Signal()
            m.d.sync += [rel_eq_ack.eq(rel == ack), sent_ne_head.eq(sent != head),
                         sent_ne_ack.eq(sent != ack), settled_q.eq(~moved)]
            settled = settled_q
        else:
            rel_eq_ack, sent_ne_head, sent_ne_ack = rel == ack, sent != head, sent != ack
            settled = Const(1)
        # The descriptors are read at one place, shared: by the release walk, and when no frame
        # waits to be released, by the transmitter (which keeps what it needs of a frame).
        # Off an iCE40 they are read into registers (for timing): ``fresh`` when these show slot
        # ``rd`` as it is now (read on the last clock, and no descriptor was written then).
        rd = Mux(rel_eq_ack, slot(sent), slot(rel))
        c_en_q = Signal()
        if fast:
            rd_q = Signal(len(rd))
            r_core, r_probe, r_stop = Signal(cb), Signal(), Signal(sb)
            r_step, r_end = Signal(_STEP_LO), Signal()
            m.d.sync += [rd_q.eq(rd), r_core.eq(d_core[rd]), r_probe.eq(d_probe[rd]),
                         r_stop.eq(d_stop[rd]), r_step.eq(d_step[rd]), r_end.eq(d_end[rd])]
            fresh = (rd_q == rd) & ~c_en_q
        else:
            r_core, r_probe, r_stop = d_core[rd], d_probe[rd], d_stop[rd]
            r_step, r_end = d_step[rd], d_end[rd]
            fresh = Const(1)
        with m.If(~rel_eq_ack & settled & fresh):
            m.d.comb += moved.eq(1)
            with m.If(r_probe):
                m.d.sync += p_tail.eq(r_stop)
            with m.Else():
                m.d.sync += tail[r_core].eq(r_stop)
            m.d.sync += rel.eq(rel + 1)
        m.d.comb += [self.out_seq.eq(ack),
                     self.pending.eq((ack != head) | (rel != ack) | collecting),
                     self.closing.eq(closing)]
        fits = [(w_ptr[c] - tail[c])[:rb] <= ring - self.n_neurons for c in range(K)]
        p_w = Signal(prb)
        fits.append((p_w - p_tail)[:prb] <= pr - self.n_probes * self.probe_payload)
        same_hi = (rel == head) | (self.step[_STEP_LO:] == cur_step[_STEP_LO:])
        room_now = (((head - rel)[:8] <= ow - self.frames_per_step) & ~closing
                    & Cat(*fits).all() & same_hi)
        # Off an iCE40, ``room`` is registered (for timing: the comparisons' carry chains and
        # the stepper's start decision after them do not fit one fast clock). It is never
        # more than the room there is: on a clock that may lessen it (a spike or probe byte
        # written, a frame closed, a step begun or ended, the step input about to move) the
        # register takes 0. Releases and a clear only add room; the register follows them a
        # clock late.
        shrinks = Signal()
        if fast:
            room_q = Signal()
            m.d.sync += room_q.eq(room_now & ~shrinks & ~self.step_moves)
            m.d.comb += self.room.eq(room_q)
        else:
            m.d.comb += self.room.eq(room_now)

        # Closing a frame: one source for every descriptor field, so that each slot's registers
        # only take an enable (a per-call assignment would put a multiplexer before every bit).
        c_en, c_core, c_end, c_probe = Signal(), Signal(cb), Signal(), Signal()
        m.d.sync += c_en_q.eq(c_en)
        c_stop = Signal(sb)
        with m.If(c_en):
            m.d.sync += [d_step[slot(head)].eq(cur_step[:_STEP_LO]),
                         d_core[slot(head)].eq(c_core), d_stop[slot(head)].eq(c_stop),
                         d_end[slot(head)].eq(c_end), d_probe[slot(head)].eq(c_probe),
                         head.eq(head + 1)]
            m.d.comb += moved.eq(1)

        def close(core, stop, end, probe=0):
            m.d.comb += [c_en.eq(1), c_core.eq(core), c_stop.eq(stop), c_end.eq(end),
                         c_probe.eq(probe)]

        # -- PROBE_DATA payloads (after the barrier, before the step's last spike frames) ----
        m.d.comb += [self.probe.ready.eq(~closing), pmem.w_addr.eq(p_w[:prb - 1]),
                     pmem.w_data.eq(self.probe.payload.data)]
        with m.If(self.probe.valid & self.probe.ready):
            m.d.comb += pmem.w_en.eq(1)
            m.d.sync += p_w.eq(p_w + 1)
            with m.If(self.probe.payload.last):
                close(0, p_w + 1, 0, probe=1)

        # -- collect -------------------------------------------------------------------------
        sp_core = self.spikes.payload.core if K > 1 else Const(0, 1)
        m.d.comb += [self.spikes.ready.eq(~closing),
                     mem.w_addr.eq(ring_addr(w_ptr[sp_core], sp_core)),
                     mem.w_data.eq(self.spikes.payload.neuron)]
        with m.If(self.begin):
            m.d.sync += [collecting.eq(1), cur_step.eq(self.step)]
        with m.If(self.spikes.valid & self.spikes.ready & collecting):
            m.d.comb += mem.w_en.eq(1)
            m.d.sync += w_ptr[sp_core].eq(w_ptr[sp_core] + 1)
            with m.If(cur_count[sp_core] == spf - 1):
                close(sp_core, w_ptr[sp_core] + 1, 0)
                m.d.sync += cur_count[sp_core].eq(0)
            with m.Else():
                m.d.sync += cur_count[sp_core].eq(cur_count[sp_core] + 1)
        with m.If(self.end & collecting):
            m.d.sync += [closing.eq(1), close_core.eq(0)]
        m.d.comb += shrinks.eq(c_en | mem.w_en | pmem.w_en | self.begin
                               | (self.end & collecting))
        with m.If(closing):
            # One core per clock: its partial frame, and always the last core's (END_OF_STEP).
            last = close_core == K - 1
            with m.If((cur_count[close_core] != 0) | last):
                close(close_core, w_ptr[close_core], last)
                m.d.sync += cur_count[close_core].eq(0)
            m.d.sync += close_core.eq(close_core + 1)
            with m.If(last):
                m.d.sync += [closing.eq(0), collecting.eq(0)]

        # -- acknowledgements and the resend timer --------------------------------------------
        with m.If(sent != ack):
            m.d[td] += timer.eq(Mux(timer == self.timeout, timer, timer + 1))
        # An OUT_ACK is checked a clock after it came (for timing; acknowledgements are whole
        # frames apart) and forgotten if a clear comes first.
        a_valid, a_next, a_dist, a_used = Signal(), Signal(8), Signal(8), Signal(8)
        pending_clear = Signal()
        m.d.sync += [a_valid.eq(self.ack & ~a_valid & ~self.clear & ~pending_clear),
                     a_next.eq(self.ack_next), a_dist.eq(self.ack_next - ack),
                     a_used.eq(used_frames)]
        with m.If(a_valid & ~pending_clear & (a_dist != 0) & (a_dist <= a_used)):
            m.d.sync += ack.eq(a_next)
            m.d[td] += timer.eq(0)
            m.d.comb += moved.eq(1)

        # -- transmit --------------------------------------------------------------------------
        tx_core, tx_probe = Signal(cb), Signal()
        tx_step, tx_end, tx_stop = Signal(_STEP_LO), Signal(), Signal(sb)
        rd_ptr = Signal(sb)
        # what is left of the frame being sent: from ``rd_ptr`` to its end, modulo its ring
        # Registered (for timing): a clock behind ``rd_ptr``, which the header waits out and
        # the ring's read latency covers (an entry's last byte goes out a clock or more after
        # ``rd_ptr`` moved on to it).
        size = Signal(range(cnt_max + 1))
        m.d.sync += size.eq(Mux(tx_probe, (tx_stop - rd_ptr)[:prb], (tx_stop - rd_ptr)[:rb]))
        hdr_ok = Signal()
        idx = Signal(range(_SPIKES.size))
        step_bytes = Cat(tx_step, cur_step[_STEP_LO:])
        fixed = Array([*(step_bytes[8 * i:8 * i + 8] for i in range(4)), tx_core,
                       Mux(tx_end, int(StepFlags.END_OF_STEP), 0)])
        s_ptr = Array(Signal(rb, name=f"s_ptr{c}") for c in range(K))
        p_s = Signal(prb)
        m.d.comb += [mem.r_addr.eq(ring_addr(rd_ptr, tx_core)),
                     pmem.r_addr.eq(rd_ptr[:prb - 1])]
        word = Signal(16)
        m.d.comb += word.eq(mem.r_data)

        def frame_sent(end):
            # the ring's next frame starts at ``end``
            m.d.sync += sent.eq(sent + 1)
            m.d.comb += moved.eq(1)
            with m.If(tx_probe):
                m.d.sync += p_s.eq(end)
            with m.Else():
                m.d.sync += s_ptr[tx_core].eq(end)
            m.next = "IDLE"

        def entry_sent(wait):
            # the last byte of a ring entry went out: the frame ends with it or the next entry
            # is read (``wait`` covers the ring's read latency)
            m.d.sync += rd_ptr.eq(rd_ptr + 1)
            with m.If(size == 1):
                frame_sent(rd_ptr + 1)
            with m.Else():
                m.next = wait

        def rewind():
            m.d.sync += [p_s.eq(p_tail), *[s_ptr[c].eq(tail[c]) for c in range(K)]]

        with m.If(self.clear):
            m.d.sync += pending_clear.eq(1)
        # ``ack`` passed ``sent``, registered (for timing): a clock late at worst, which is
        # harmless, as nothing below acts while ``rel`` still walks up to a new ``ack``.
        behind = Signal()
        m.d.sync += behind.eq((sent - ack)[:8] > used_frames)
        m.d.sync += self.resent.eq(0)       # a pulse, a clock after the frames are resent
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(pending_clear):
                    m.d.sync += [head.eq(0), ack.eq(0), sent.eq(0), collecting.eq(0),
                                 closing.eq(0), pending_clear.eq(0)]
                    m.d[td] += timer.eq(0)
                    m.d.comb += moved.eq(1)
                    m.d.sync += [w_ptr[c].eq(0) for c in range(K)]
                    m.d.sync += [cur_count[c].eq(0) for c in range(K)]
                    m.d.sync += [p_w.eq(0), p_tail.eq(0), p_s.eq(0), rel.eq(0)]
                    m.d.sync += [tail[c].eq(0) for c in range(K)]
                    m.d.sync += [s_ptr[c].eq(0) for c in range(K)]
                with m.Elif(behind):
                    # Back to the oldest unacknowledged frame once every acknowledged one is
                    # released: the tails are where the rings' unacknowledged frames start.
                    with m.If(rel_eq_ack & settled):
                        m.d.sync += sent.eq(ack)
                        m.d.comb += moved.eq(1)
                        rewind()
                with m.Elif(sent_ne_head & rel_eq_ack & settled & fresh):
                    m.d.sync += [rd_ptr.eq(Mux(r_probe, p_s, s_ptr[r_core])), tx_stop.eq(r_stop),
                                 idx.eq(0),
                                 tx_core.eq(r_core), tx_probe.eq(r_probe),
                                 tx_step.eq(r_step), tx_end.eq(r_end)]
                    m.d[td] += timer.eq(0)
                    m.next = "HEADER"
                with m.Elif(sent_ne_ack & t_full & rel_eq_ack & settled):
                    m.d.sync += [self.resent.eq((sent - ack)[:8]), sent.eq(ack)]
                    m.d[td] += timer.eq(0)
                    m.d.comb += moved.eq(1)
                    rewind()
            with m.State("HEADER"):
                m.d.sync += hdr_ok.eq(1)
                m.d.comb += [self.tx_header.valid.eq(hdr_ok),
                             self.tx_header.p.version.eq(protocol.VERSION),
                             self.tx_header.p.seq.eq(sent),
                             self.tx_header.p.cmd.eq(Mux(tx_probe, Command.PROBE_DATA,
                                                         Command.SPIKES)),
                             self.tx_header.p.length.eq(Mux(tx_probe, size,
                                                            _SPIKES.size + 2 * size))]
                with m.If(self.tx_header.ready & hdr_ok):
                    m.d.sync += hdr_ok.eq(0)
                    with m.If(tx_probe):
                        m.next = "PWAIT"
                    with m.Else():
                        m.next = "FIXED"
            with m.State("FIXED"):
                m.d.comb += [self.tx_payload.valid.eq(1),
                             self.tx_payload.payload.eq(fixed[idx])]
                with m.If(self.tx_payload.ready):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == _SPIKES.size - 1):
                        with m.If(size == 0):
                            frame_sent(rd_ptr)
                        with m.Else():
                            m.next = "LO"
            # the rings' read latency
            with m.State("WAIT"):
                m.next = "LO" if mem.latency == 1 else "WAIT2"
            with m.State("WAIT2"):
                m.next = "LO"
            with m.State("PWAIT"):
                m.next = "PBYTE" if pmem.latency == 1 else "PWAIT2"
            with m.State("PWAIT2"):
                m.next = "PBYTE"
            with m.State("PBYTE"):
                m.d.comb += [self.tx_payload.valid.eq(1), self.tx_payload.payload.eq(pmem.r_data)]
                with m.If(self.tx_payload.ready):
                    entry_sent("PWAIT")
            with m.State("LO"):
                m.d.comb += [self.tx_payload.valid.eq(1), self.tx_payload.payload.eq(word[:8])]
                with m.If(self.tx_payload.ready):
                    m.next = "HI"
            with m.State("HI"):
                m.d.comb += [self.tx_payload.valid.eq(1), self.tx_payload.payload.eq(word[8:])]
                with m.If(self.tx_payload.ready):
                    entry_sent("WAIT")

        # At rest: nothing arriving (spikes, probe bytes, a step's begin or end, an OUT_ACK, a
        # clear), no frame to close or release, and either IDLE with nothing to send or resend,
        # or a byte offered and not taken. Registered copies (``size``, the comparisons, the
        # descriptor and ring reads) follow a clock or two late (``SETTLE``).
        sending = Cat(fsm.ongoing(name) for name in ("FIXED", "LO", "HI", "PBYTE")).any()
        waiting = Cat(fsm.ongoing(name) for name in ("WAIT", "WAIT2", "PWAIT", "PWAIT2")).any()
        m.d.comb += self.wake.eq(
            self.spikes.valid | self.probe.valid | self.begin | self.end | self.ack | a_valid
            | self.clear | pending_clear | closing | c_en_q | (rel != ack)
            | (t_full_now != t_full) | waiting
            | (fsm.ongoing("IDLE") & (behind | sent_ne_head | (sent_ne_ack & t_full)))
            | (fsm.ongoing("HEADER") & (~hdr_ok | self.tx_header.ready))
            | (sending & self.tx_payload.ready))
        return m
