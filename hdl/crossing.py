"""The chip in a clock domain of its own: what crosses between the link and the chip.

The link (UART, framing, command processor, stepper, output buffer) needs a few MHz; the cores
are what a faster clock speeds up. ``ChipCrossing`` lets the chip run on a clock of its own
(``chip_domain``) while the link's blocks keep ``sync``: every signal between them crosses in one
of two asynchronous FIFOs (``amaranth.lib.fifo.AsyncFIFO``, Gray-coded pointers), as tagged words,
so that their order is kept exactly:

- down (link to chip): memory requests, injected events and the step's ``start``: the chip sees
  every request and every event of a step before its start, as when it shared the link's clock;
- up (chip to link): memory read responses, output spikes, the chip's step counter (a word each
  time it changes: at the end of a step's cores, or by a memory write) and the barrier's
  ``done``, last: the link sees a step's spikes and its new step number before its end.

On the link side ``busy`` is a register: set by ``start``, cleared by the ``done`` word, so the
stepper never sees the chip idle between a start and its barrier. Each side writes its FIFO from
a register and reads it into one, so no path runs from a block's handshake into a FIFO's memory
(on the chip's side a word every other clock: the chip side is the faster), and the chip's
``mem_rsp.ready`` stays 1 as on one clock (its memory port's request logic reads it).

``wake`` (``spikeforge.hdl.gating``: the link side may sit in a gated domain) is high while
anything waits to cross or has crossed; ``active`` while anything is under way on either side
(both read signals of the chip's domain: they serve the virtual board, which clocks both domains
from one clock, and the board's ``running`` LED).
"""

from amaranth.hdl import Cat, Module, Shape, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.fifo import AsyncFIFO
from amaranth.lib.wiring import In, Out

__all__ = ["ChipCrossing", "Down", "Up"]


class Down(enum.Enum, shape=2):
    """Tags of the words from the link to the chip."""
    REQUEST = 0
    INJECT = 1
    START = 2


class Up(enum.Enum, shape=2):
    """Tags of the words from the chip to the link."""
    RESPONSE = 0
    SPIKE = 1
    STEP = 2
    DONE = 3


def _width(shape):
    return Shape.cast(shape).width


class ChipCrossing(wiring.Component):
    """Between the link (``sync``) and a ``Chip`` in ``chip_domain``.

    ``request``, ``inject``, ``spike`` and ``data`` are the payload shapes of the chip's
    ``mem_req``, ``inject``, ``host_out`` and ``mem_rsp``. Link side: ``mem_req``, ``inject``,
    ``start`` in; ``mem_rsp`` (always taken), ``host_out``, ``busy``, ``done`` (a pulse),
    ``step`` (the chip's step counter as last reported) and ``step_moves`` (``step`` changes at
    the next clock) out. Chip side: the ``chip_`` ports, connected to the chip's own.
    ``depth``: words each FIFO holds.
    """

    def __init__(self, *, request, inject, spike, data, chip_domain="chip", depth=4):
        self.chip_domain = chip_domain
        self.depth = depth
        self._down_bits = 2 + max(_width(request), _width(inject))
        self._up_bits = 2 + max(_width(data), _width(spike), 32)
        super().__init__({
            "mem_req": In(stream.Signature(request)),
            "mem_rsp": Out(stream.Signature(data)),
            "inject": In(stream.Signature(inject)),
            "start": In(1),
            "host_out": Out(stream.Signature(spike)),
            "busy": Out(1),
            "done": Out(1),
            "step": Out(32),
            "step_moves": Out(1),
            "wake": Out(1),
            "active": Out(1),
            "chip_mem_req": Out(stream.Signature(request)),
            "chip_mem_rsp": In(stream.Signature(data)),
            "chip_inject": Out(stream.Signature(inject)),
            "chip_start": Out(1),
            "chip_host_out": In(stream.Signature(spike)),
            "chip_done": In(1),
            "chip_step": In(32),
        })

    def elaborate(self, platform):
        m = Module()
        cd = self.chip_domain
        m.submodules.down = down = AsyncFIFO(width=self._down_bits, depth=self.depth,
                                             w_domain="sync", r_domain=cd)
        m.submodules.up = up = AsyncFIFO(width=self._up_bits, depth=self.depth,
                                         w_domain=cd, r_domain="sync")

        # -- link side, down: start (pending until written) before requests before events ---
        start_pend = Signal()
        d_valid, d_word = Signal(), Signal(self._down_bits)
        free = ~d_valid
        req, inj = self.mem_req, self.inject
        m.d.comb += [req.ready.eq(free & ~start_pend),
                     inj.ready.eq(free & ~start_pend & ~req.valid)]
        with m.If(free & start_pend):
            m.d.sync += [d_valid.eq(1), d_word.eq(Down.START), start_pend.eq(0)]
        with m.Elif(req.valid & req.ready):
            m.d.sync += [d_valid.eq(1), d_word.eq(Cat(Down.REQUEST, req.payload))]
        with m.Elif(inj.valid & inj.ready):
            m.d.sync += [d_valid.eq(1), d_word.eq(Cat(Down.INJECT, inj.payload))]
        with m.If(self.start):
            m.d.sync += start_pend.eq(1)
        m.d.comb += [down.w_en.eq(d_valid), down.w_data.eq(d_word)]
        with m.If(d_valid & down.w_rdy):
            m.d.sync += d_valid.eq(0)

        # -- chip side, down: one word every other clock into a register, then its port ------
        c_valid, c_word = Signal(), Signal(self._down_bits)
        m.d.comb += down.r_en.eq(~c_valid)
        with m.If(down.r_rdy & ~c_valid):
            m.d[cd] += [c_valid.eq(1), c_word.eq(down.r_data)]
        tag, body = c_word[:2], c_word[2:]
        creq, cinj = self.chip_mem_req, self.chip_inject
        m.d.comb += [creq.valid.eq(c_valid & (tag == Down.REQUEST)),
                     creq.payload.eq(body),
                     cinj.valid.eq(c_valid & (tag == Down.INJECT)),
                     cinj.payload.eq(body),
                     self.chip_start.eq(c_valid & (tag == Down.START))]
        with m.If((creq.valid & creq.ready) | (cinj.valid & cinj.ready) | self.chip_start):
            m.d[cd] += c_valid.eq(0)

        # -- chip side, up: responses, then spikes, then the step, then the barrier ----------
        # A response is always taken (the chip's ``ready`` stays 1, as on one clock: the
        # chip's port keeps one read outstanding and the link sends the next request only
        # after the response, so its register is free); a spike into a register of its own.
        r_valid, r_data = Signal(), Signal.like(self.chip_mem_rsp.payload)
        s_valid, s_data = Signal(), Signal.like(self.chip_host_out.payload)
        sent_step = Signal(32)           # the step last reported (both sides start at 0)
        done_pend = Signal()
        u_valid, u_word = Signal(), Signal(self._up_bits)
        ufree = ~u_valid | up.w_rdy
        rsp, spk = self.chip_mem_rsp, self.chip_host_out
        step_pend = self.chip_step != sent_step
        m.d.comb += [rsp.ready.eq(1), spk.ready.eq(~s_valid),
                     up.w_en.eq(u_valid), up.w_data.eq(u_word)]
        with m.If(u_valid & up.w_rdy):
            m.d[cd] += u_valid.eq(0)
        with m.If(ufree):
            with m.If(r_valid):
                m.d[cd] += [u_valid.eq(1), u_word.eq(Cat(Up.RESPONSE, r_data)), r_valid.eq(0)]
            with m.Elif(s_valid):
                m.d[cd] += [u_valid.eq(1), u_word.eq(Cat(Up.SPIKE, s_data)), s_valid.eq(0)]
            with m.Elif(step_pend):
                m.d[cd] += [u_valid.eq(1), u_word.eq(Cat(Up.STEP, self.chip_step)),
                            sent_step.eq(self.chip_step)]
            with m.Elif(done_pend):
                m.d[cd] += [u_valid.eq(1), u_word.eq(Up.DONE), done_pend.eq(0)]
        with m.If(rsp.valid):
            m.d[cd] += [r_valid.eq(1), r_data.eq(rsp.payload)]
        with m.If(spk.valid & spk.ready):
            m.d[cd] += [s_valid.eq(1), s_data.eq(spk.payload)]
        with m.If(self.chip_done):
            m.d[cd] += done_pend.eq(1)

        # -- link side, up: one word every other clock into a register, then its meaning -----
        l_valid, l_word = Signal(), Signal(self._up_bits)
        m.d.comb += up.r_en.eq(~l_valid)
        with m.If(up.r_rdy & ~l_valid):
            m.d.sync += [l_valid.eq(1), l_word.eq(up.r_data)]
        utag, ubody = l_word[:2], l_word[2:]
        m.d.comb += [self.mem_rsp.valid.eq(l_valid & (utag == Up.RESPONSE)),
                     self.mem_rsp.payload.eq(ubody),
                     self.host_out.valid.eq(l_valid & (utag == Up.SPIKE)),
                     self.host_out.payload.eq(ubody),
                     self.step_moves.eq(l_valid & (utag == Up.STEP)),
                     self.done.eq(l_valid & (utag == Up.DONE))]
        with m.If(l_valid & ((utag != Up.SPIKE) | self.host_out.ready)):
            m.d.sync += l_valid.eq(0)
        with m.If(self.step_moves):
            m.d.sync += self.step.eq(ubody[:32])
        with m.If(self.start):
            m.d.sync += self.busy.eq(1)
        with m.Elif(self.done):
            m.d.sync += self.busy.eq(0)

        # what is under way: on the link's side; on the chip's (read across the domains)
        chip_side = (c_valid | r_valid | s_valid | u_valid | done_pend | step_pend
                     | (up.w_level != 0))
        m.d.comb += [
            self.wake.eq(self.start | start_pend | d_valid | req.valid | inj.valid | l_valid
                         | chip_side),
            self.active.eq(self.busy | start_pend | d_valid | l_valid | (down.w_level != 0)
                           | chip_side)]
        return m
