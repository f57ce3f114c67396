"""Probes: chosen words of the chip's memories, read after every ``period``-th step.

``ProbeEngine`` holds ``n_probes`` probe settings (the ``PROBE`` command of
``docs/protocol.md``: core, region, first word, word count, period; period 0 switches a probe
off). When a step has passed the chip's barrier (``start``), and before the next step may start,
it visits the probes in order; a probe that is due writes one ``PROBE_DATA`` payload into the
output buffer's ``probe`` port: step, probe, core, region, index (the fixed fields of
``protocol.OUTPUT[PROBE_DATA]``), then the words, each at its region's wire width
(``protocol.word_bytes``), read through the chip's memory port. A probe set with period ``p`` is
due at the first step that ends after the command, then every ``p``-th step.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge import protocol
from spikeforge.protocol import OUTPUT, Command

from .chip import chip_request_layout
from .link import chip_address
from .outbuf import ProbeByte

__all__ = ["ProbeEngine"]

_FIXED = OUTPUT[Command.PROBE_DATA].size


class ProbeEngine(wiring.Component):
    """``n_probes`` probes of the chip of ``chipmap`` (equal cores).

    Ports: ``set`` (a pulse) with ``set_probe``, ``set_core``, ``set_region``, ``set_period``,
    ``set_index``, ``set_count`` (already checked by the command processor); ``start`` (the
    barrier, registered: the step ended in the clock before) with ``step`` (the step that
    ended, held until ``done``: the stepper's ``run_step``); ``busy`` (from ``start`` until
    every due probe is written),
    ``done`` (one clock at the end); ``mem_req`` / ``mem_rsp`` (the chip's memory port, to be
    granted while ``busy``); ``out`` (payload bytes to the output buffer); ``wake`` (a register
    may change at the next clock, ``gating``: from registers only, when ``start`` and ``set``
    are).
    """

    def __init__(self, chipmap, n_probes):
        if not isinstance(n_probes, int) or not 1 <= n_probes <= 16:
            raise ValueError(f"n_probes must be from 1 to 16, not {n_probes!r}")
        self.chipmap = chipmap
        self.n_probes = n_probes
        self.regions = protocol.link_regions(chipmap)
        super().__init__({
            "set": In(1), "set_probe": In(8), "set_core": In(8), "set_region": In(8),
            "set_period": In(8), "set_index": In(32), "set_count": In(16),
            "start": In(1), "step": In(32), "busy": Out(1), "done": Out(1),
            "wake": Out(1),     # a register may change at the next clock (``gating``)
            "mem_req": Out(stream.Signature(chip_request_layout(chipmap))),
            "mem_rsp": In(stream.Signature(chipmap.data_bits)),
            "out": Out(stream.Signature(ProbeByte)),
        })

    def elaborate(self, platform):
        m = Module()
        P, cm = self.n_probes, self.chipmap
        pb = max((P - 1).bit_length(), 1)
        # The processor checked every field of a probe that is on: the core and region exist and
        # the words lie inside the region, so the registers keep only the bits an address uses
        # (the fixed fields are sent zero-extended).
        xb = max(cm.memmaps[0].index_bits, cm.routes.entry_bits)
        core = Array(Signal(cm.node_bits, name=f"core{k}") for k in range(P))
        region = Array(Signal(4, name=f"region{k}") for k in range(P))
        period = Array(Signal(8, name=f"period{k}") for k in range(P))
        index = Array(Signal(xb, name=f"index{k}") for k in range(P))
        count = Array(Signal(16, name=f"count{k}") for k in range(P))
        countdown = Array(Signal(8, name=f"countdown{k}") for k in range(P))
        with m.If(self.set):
            k = self.set_probe[:pb]
            m.d.sync += [core[k].eq(self.set_core), region[k].eq(self.set_region),
                         period[k].eq(self.set_period), index[k].eq(self.set_index),
                         count[k].eq(self.set_count), countdown[k].eq(0)]

        p = Signal(range(P + 1))
        cur = p[:pb]
        # The fixed fields, one byte at a time: ``step`` is held by the stepper while ``busy``.
        fields = [self.step[8 * i:8 * i + 8] for i in range(4)] + [p, core[cur], region[cur]] \
            + [index[cur][8 * i:8 * i + 8] for i in range(4)]
        fixed = Array(Cat(f, Const(0, 8 - len(f))) for f in fields)
        k = Signal(range(_FIXED))
        # The byte ``fixed[k]``, registered (for timing): valid from the clock after ``k`` moved.
        head_byte, head_ok = Signal(8), Signal()
        cd_dec, per_dec, due, on = Signal(8), Signal(8), Signal(), Signal()
        addr_i = Signal(xb)               # the word being read
        left = Signal(16)                 # words still to read, this one included
        word = Signal(cm.data_bits)
        bk = Signal(range(max(cm.data_bits // 8, 1) + 1))
        wb = Signal(range(cm.data_bits // 8 + 2))
        with m.Switch(region[cur]):
            for r, layout in self.regions.items():
                with m.Case(int(r)):
                    m.d.comb += wb.eq((layout.width + 7) // 8)
        addr = chip_address(m, cm, core[cur], region[cur], addr_i)
        # What marks a frame's last byte, in registers set with the fields they follow (for
        # timing: ``last`` reaches the output buffer's frame closing): the probe's bytes per word
        # less one (from its region), ``left == 1`` and ``left == 0``.
        wb_last = Signal.like(wb)
        last_word, no_words = Signal(), Signal()
        m.d.comb += self.mem_rsp.ready.eq(1)
        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += self.busy.eq(self.start)
                with m.If(self.start):
                    m.d.sync += p.eq(0)
                    m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += self.busy.eq(1)
                with m.If(p == P):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    # the probe's next countdown either way, registered (for timing)
                    m.d.sync += [cd_dec.eq(countdown[cur] - 1), per_dec.eq(period[cur] - 1),
                                 due.eq(countdown[cur] == 0), on.eq(period[cur] != 0)]
                    m.next = "DUE"
            with m.State("DUE"):
                m.d.comb += self.busy.eq(1)
                # One decrementer for every probe: a due probe starts over from its period.
                with m.If(on):
                    m.d.sync += countdown[cur].eq(Mux(due, per_dec, cd_dec))
                with m.If(on & due):
                    m.d.sync += [k.eq(0), addr_i.eq(index[cur]), left.eq(count[cur]),
                                 head_ok.eq(0), wb_last.eq(wb - 1),
                                 last_word.eq(count[cur] == 1), no_words.eq(count[cur] == 0)]
                    m.next = "HEAD"
                with m.Else():
                    m.d.sync += p.eq(p + 1)
                    m.next = "SCAN"
            with m.State("HEAD"):
                m.d.sync += [head_byte.eq(fixed[k]), head_ok.eq(1)]
                m.d.comb += [self.busy.eq(1), self.out.valid.eq(head_ok),
                             self.out.payload.data.eq(head_byte),
                             self.out.payload.last.eq((k == _FIXED - 1) & no_words)]
                with m.If(self.out.ready & head_ok):
                    m.d.sync += [k.eq(k + 1), head_ok.eq(0)]
                    with m.If(k == _FIXED - 1):
                        with m.If(no_words):
                            m.d.sync += p.eq(p + 1)
                            m.next = "SCAN"
                        with m.Else():
                            m.next = "REQ"
            with m.State("REQ"):
                m.d.comb += [self.busy.eq(1), self.mem_req.valid.eq(1),
                             self.mem_req.p.addr.eq(addr)]
                with m.If(self.mem_req.ready):
                    m.next = "RSP"
            with m.State("RSP"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.mem_rsp.valid):
                    m.d.sync += [word.eq(self.mem_rsp.payload), bk.eq(0)]
                    m.next = "BYTES"
            with m.State("BYTES"):
                m.d.comb += [self.busy.eq(1), self.out.valid.eq(1),
                             self.out.payload.data.eq(word.word_select(bk, 8)),
                             self.out.payload.last.eq((bk == wb_last) & last_word)]
                with m.If(self.out.ready):
                    m.d.sync += bk.eq(bk + 1)
                    with m.If(bk == wb_last):
                        m.d.sync += [addr_i.eq(addr_i + 1), left.eq(left - 1),
                                     last_word.eq(left == 2)]
                        with m.If(last_word):
                            m.d.sync += p.eq(p + 1)
                            m.next = "SCAN"
                        with m.Else():
                            m.next = "REQ"
        # at rest in IDLE until a step ends or a probe is set
        m.d.comb += self.wake.eq(~fsm.ongoing("IDLE") | self.start | self.set)
        return m
