"""The spike router: per-core routing tables, lookup engines and a crossbar of small FIFOs.

Data path, for every source core ``s`` (``K`` local cores):

``spikes[s]`` -> *capture list* (a FIFO of ``N_s`` entries) -> *lookup engine* (index entry,
then one destination entry per clock) -> *virtual output queues* ``voq[s][d]`` (one small FIFO
per destination core ``d``), ``link[s]`` (destinations ``d >= K``) and ``host[s]`` (the host
flag) -> per destination a fixed-priority arbiter -> ``events[d]`` / ``link_out`` /
``host_out``.

**Why nothing is dropped and nothing deadlocks.** A core emits each neuron at most once per step,
so the capture list of ``N_s`` entries always has room: ``spikes[s].ready`` is never low, so a
core's output never waits on any input anywhere (in particular not on its own). Everything
downstream waits only for a destination to accept, and a destination core accepts whenever it is
idle, which every core reaches by itself once its step is computed. Hence every queued event
drains, for any table contents and any FIFO depth (``fifo_depth`` 1 included); the link and the
host port must likewise accept without waiting on this chip's next step. ``idle`` is high when
nothing is in flight: the chip's barrier waits for it.

The routing tables (``spikeforge.routing``) sit in ``amaranth.lib.memory`` memories, two per
source core, written and read through ``mem_req`` / ``mem_rsp`` (only while ``idle``; the chip
allows it only between steps).

**Timing.** On a large FPGA board the tables are LUT RAM (``boards/ulx3s.py``), whose read of
1024 words is a deep multiplexer behind a wide fan-out of the address. Every read address of a
table is therefore a flip-flop of its own (the index memory's: the capture list's word, taken
into ``cand``; the destination memory's: ``ptr``), never a multiplexer of several sources nor a
block RAM's output, and only the read enables wait on the queues. The tables are
``BankedMemory``: banks of 256 words, each read from its own copy of the address into its own
register, the bank select after those registers.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..routing import DEST, INDEX, RouteLayout
from .banked import BankedMemory
from .target import is_ice40

__all__ = ["Router", "host_spike_layout", "link_event_layout", "table_request_layout"]


def host_spike_layout(layout):
    """An output spike for the host: ``neuron``, source ``core`` and the ``step`` it fired in."""
    return data.StructLayout({"neuron": layout.neuron_bits, "core": layout.core_bits,
                              "step": 32})


def link_event_layout(layout):
    """An event for a core beyond this chip: destination ``axon`` and ``core``."""
    return data.StructLayout({"axon": layout.axon_bits, "core": layout.core_bits})


def table_request_layout(layout):
    """A routing-table access: ``addr`` = ``core << (1 + entry_bits) | which << entry_bits |
    index``, ``write``, ``data``."""
    return data.StructLayout({"addr": layout.core_bits + layout.addr_bits, "write": 1,
                              "data": layout.data_bits})


class Router(wiring.Component):
    """The routing fabric of the ``RouteLayout`` ``layout``; ``fifo_depth`` sizes every queue
    between the lookup engines and the destinations (the capture lists are ``N_s`` deep).

    Ports: ``spikes[s]`` (neuron numbers of core ``s``), ``events[d]`` (axon numbers for core
    ``d``), ``link_out`` (events for cores ``>= K``), ``host_out`` (spikes whose host flag is set,
    tagged with ``step``), ``step`` (the tag: the step being run), ``mem_req`` / ``mem_rsp`` (the
    tables), ``idle``, ``wake`` (a register may change at the next clock: a FIFO is written,
    read or refills its output register, an engine moves, the table port works;
    ``spikeforge.hdl.gating``).
    """

    def __init__(self, layout, fifo_depth=2):
        if not isinstance(layout, RouteLayout):
            raise TypeError(f"layout must be a RouteLayout, not {layout!r}")
        if isinstance(fifo_depth, bool) or not isinstance(fifo_depth, int) or fifo_depth < 1:
            raise ValueError(f"fifo_depth must be a positive integer, not {fifo_depth!r}")
        self.layout, self.fifo_depth = layout, fifo_depth
        k = layout.n_cores
        super().__init__({
            "spikes": In(stream.Signature(layout.neuron_bits)).array(k),
            "events": Out(stream.Signature(layout.axon_bits)).array(k),
            "link_out": Out(stream.Signature(link_event_layout(layout))),
            "host_out": Out(stream.Signature(host_spike_layout(layout))),
            "step": In(32),
            "mem_req": In(stream.Signature(table_request_layout(layout))),
            "mem_rsp": Out(stream.Signature(layout.data_bits)),
            "idle": Out(1),
            "wake": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lay, k, depth = self.layout, self.layout.n_cores, self.fifo_depth
        ab, cb = lay.axon_bits, lay.core_bits
        idle_parts = []
        wake_parts = [self.mem_req.valid]

        # -- tables -----------------------------------------------------------------------
        # Each table holds its read address in a register (``BankedMemory``): the index
        # memory's, the capture list's word (``cand``); the destination memory's, ``ptr``. Off
        # an iCE40 the tables are LUT RAM (``boards/ulx3s.py``) in banks of 256 words, each
        # bank read from a copy of the address of its own into a register of its own.
        bank_depth = None if is_ice40(platform) else 256
        index, dest = [], []
        for s, config in enumerate(lay.configs):
            m.submodules[f"index{s}"] = im = BankedMemory(
                lay.index.width, config.n_neurons, bank_depth=bank_depth)
            m.submodules[f"dest{s}"] = dm = BankedMemory(
                lay.dest.width, lay.limits.route_entries, bank_depth=bank_depth)
            index.append(im)
            dest.append(dm)
        wake_parts += self._table_port(m, index, dest)

        # -- queues -----------------------------------------------------------------------
        voq = [[None] * k for _ in range(k)]
        link_q, host_q = [], []
        for s in range(k):
            for d in range(k):
                m.submodules[f"voq{s}_{d}"] = voq[s][d] = fifo.SyncFIFOBuffered(
                    width=ab, depth=depth)
            m.submodules[f"link{s}"] = q = fifo.SyncFIFOBuffered(width=ab + cb, depth=depth)
            link_q.append(q)
            m.submodules[f"host{s}"] = q = fifo.SyncFIFOBuffered(width=lay.neuron_bits,
                                                                 depth=depth)
            host_q.append(q)
            idle_parts += [voq[s][d].level == 0 for d in range(k)]
            idle_parts += [link_q[s].level == 0, host_q[s].level == 0]

        # -- capture lists and lookup engines ---------------------------------------------
        # Off an iCE40 a capture list (block RAM, read without its output register: a slow
        # clock-to-out) feeds a three-word FIFO of flip-flops or LUT RAM that the placer can put
        # beside it (``stage``), and the engine reads that: the block RAM's output reaches a
        # register without the engine's logic or a long route to the index memory's address
        # register. It moves a word a clock; a burst of spikes waits one clock more.
        captures = []
        for s, config in enumerate(lay.configs):
            m.submodules[f"capture{s}"] = cap = fifo.SyncFIFOBuffered(
                width=lay.neuron_bits, depth=max(config.n_neurons, 1))
            captures.append(cap)
            wiring.connect(m, wiring.flipped(self.spikes[s]), cap.w_stream)
            idle_parts.append(cap.level == 0)
            if not is_ice40(platform):
                m.submodules[f"stage{s}"] = stage = fifo.SyncFIFOBuffered(
                    width=lay.neuron_bits, depth=3)
                wiring.connect(m, cap.r_stream, stage.w_stream)
                captures.append(stage)
                idle_parts.append(stage.level == 0)
                cap = stage
            idle, moves = self._engine(m, s, cap, index[s], dest[s], voq[s], link_q[s],
                                       host_q[s])
            idle_parts.append(idle)
            wake_parts.append(moves)

        # -- arbiters -----------------------------------------------------------------------
        for d in range(k):
            self._arbiter(m, [voq[s][d] for s in range(k)], self.events[d],
                          lambda s, q: q.r_data)
        self._arbiter(m, link_q, self.link_out, lambda s, q: q.r_data)
        self._arbiter(m, host_q, self.host_out,
                      lambda s, q: Cat(q.r_data, Const(s, cb), self.step))
        m.d.comb += self.idle.eq(Cat(*idle_parts).all())
        # every queue: written, read, or its output register refilling from the queue behind it
        queues = [q for row in voq for q in row] + link_q + host_q + captures
        wake_parts += [(q.w_en & q.w_rdy) | (q.r_en & q.r_rdy) | ((q.level != 0) & ~q.r_rdy)
                       for q in queues]
        m.d.comb += self.wake.eq(Cat(*wake_parts).any())
        return m

    def _engine(self, m, s, cap, im, dm, voq, link_q, host_q):
        """The lookup engine of source core ``s``; returns its idle condition and its ``wake``
        term (a register of the engine may change at the next clock).

        Three stages: the capture list's next word waits in a register (``cand``), the index
        entry of the spike before it is read, and the destination entries of the one before that
        stream out. They overlap, so a neuron with ``count`` destinations costs ``max(count, 1)``
        clocks; the register adds one clock of latency from the capture list to the index read.
        The index read port holds its entry (read enable low) until the destination stage takes
        it; the destination read port holds its word until its queue accepts it. ``cand`` and
        ``ptr`` are the address registers of the index memory ``im`` and the destination
        memory ``dm`` (``BankedMemory``, shared with the table port)."""
        cand, ptr = im.addr, dm.addr
        lay, k = self.layout, self.layout.n_cores
        ab, cb = lay.axon_bits, lay.core_bits
        neuron = Signal(lay.neuron_bits, name=f"e{s}_neuron")
        i_full = Signal(name=f"e{s}_ifull")
        rem = Signal(lay.count_bits, name=f"e{s}_rem")
        d_valid = Signal(name=f"e{s}_dvalid")
        entry = lay.index.offsets()
        p_lo, p_f = entry["ptr"]
        c_lo, c_f = entry["count"]
        h_lo, _ = entry["host"]
        e_ptr = im.data[p_lo:p_lo + p_f.bits]
        e_count = im.data[c_lo:c_lo + c_f.bits]
        e_host = im.data[h_lo]
        d_axon = dm.data[:ab]
        d_core = dm.data[ab:ab + cb]

        # the destination word read last clock goes to its queue; ``push_ok``: it was taken
        push_ok = Signal(name=f"e{s}_push_ok")
        with m.If(d_valid):
            for d in range(k):
                with m.If(d_core == d):
                    m.d.comb += [voq[d].w_data.eq(d_axon), voq[d].w_en.eq(1),
                                 push_ok.eq(voq[d].w_rdy)]
            if (1 << cb) > k:
                with m.If(d_core >= k):
                    m.d.comb += [link_q.w_data.eq(Cat(d_axon, d_core)), link_q.w_en.eq(1),
                                 push_ok.eq(link_q.w_rdy)]
        advance = ~d_valid | push_ok

        # destination stage: read entry ``ptr`` whenever the previous word has gone. ``live``
        # (``rem != 0``) and ``last`` (``rem == 1``) are kept in flip-flops beside ``rem``, for
        # a short path to the read enable.
        live = Signal(name=f"e{s}_live")
        last = Signal(name=f"e{s}_last")
        issue = Signal(name=f"e{s}_issue")
        m.d.comb += issue.eq(advance & live)
        with m.If(issue):
            m.d.comb += dm.en.eq(1)
        with m.If(advance):
            m.d.sync += d_valid.eq(issue)

        # index stage: the held entry moves on (and its host spike out) once the destination
        # stage issues its last read
        free = ~live | (last & issue)
        load = Signal(name=f"e{s}_load")
        m.d.comb += [host_q.w_data.eq(neuron), host_q.w_en.eq(i_full & free & e_host),
                     load.eq(i_full & free & (~e_host | host_q.w_rdy))]
        with m.If(load):
            m.d.comb += [dm.addr_next.eq(e_ptr), dm.addr_load.eq(1)]
            m.d.sync += [rem.eq(e_count), live.eq(e_count != 0), last.eq(e_count == 1)]
        with m.Elif(issue):
            m.d.comb += [dm.addr_next.eq(ptr + 1), dm.addr_load.eq(1)]
            m.d.sync += [rem.eq(rem - 1),
                         live.eq(~last), last.eq(rem == 2)]

        # candidate stage: the capture list's word, registered. The capture list (or its stage
        # FIFO) is read straight from its port; the index memory (LUT RAM at large sizes) is
        # addressed by ``cand``, a flip-flop, so the block RAM's clock-to-out and the index read
        # are on different clocks. ``cand`` refills on the clock it empties: one clock of
        # latency per burst of spikes, none per spike.
        c_full = Signal(name=f"e{s}_cfull")
        pop = Signal(name=f"e{s}_pop")
        take = Signal(name=f"e{s}_take")
        m.d.comb += [pop.eq(c_full & (~i_full | load)),
                     take.eq(cap.r_rdy & (~c_full | pop)),
                     cap.r_en.eq(take)]
        with m.If(take):
            m.d.comb += [im.addr_next.eq(cap.r_data), im.addr_load.eq(1)]
            m.d.sync += c_full.eq(1)
        with m.Elif(pop):
            m.d.sync += c_full.eq(0)
        with m.If(pop):
            m.d.comb += im.en.eq(1)
            m.d.sync += [neuron.eq(cand), i_full.eq(1)]
        with m.Elif(load):
            m.d.sync += i_full.eq(0)

        idle = Signal(name=f"e{s}_idle")
        m.d.comb += idle.eq(~c_full & ~i_full & ~live & ~d_valid)
        # the engine moves: a word into ``cand``, on to the index stage, an entry loaded, a
        # destination read or its word pushed (``d_valid`` follows ``issue`` when it advances)
        return idle, take | pop | load | (advance & (d_valid | live))

    @staticmethod
    def _arbiter(m, queues, out, payload):
        """Fixed priority (lowest source first) from ``queues`` onto the stream ``out``."""
        taken = Const(0, 1)
        for s, q in enumerate(queues):
            mine = q.r_rdy & ~taken
            with m.If(mine):
                m.d.comb += [out.valid.eq(1), out.payload.eq(payload(s, q)),
                             q.r_en.eq(out.ready)]
            taken = taken | q.r_rdy

    def _table_port(self, m, index_mems, dest_mems):
        """``mem_req`` / ``mem_rsp``: one read at a time, its response two clocks after it is
        accepted (the address goes into the memory's address register, then the memory is
        read). The memories (``BankedMemory``) and their address registers are shared with the
        engines, which are idle whenever the port is used; the engines' assignments come later
        in ``elaborate`` and take precedence. Returns the port's ``wake`` terms."""
        lay = self.layout
        eb = lay.entry_bits
        req, rsp = self.mem_req, self.mem_rsp
        index = req.payload.addr[:eb]
        which = req.payload.addr[eb]
        core = req.payload.addr[eb + 1:]
        t_valid = Signal()          # a read's address is in the registers: read it this clock
        t_core = Signal(lay.core_bits)
        t_which = Signal()
        rsp_valid = Signal()
        rsp_core = Signal(lay.core_bits)
        rsp_which = Signal()
        m.d.comb += req.ready.eq(~t_valid & (~rsp_valid | rsp.ready))
        accept = req.valid & req.ready
        m.d.sync += t_valid.eq(accept & ~req.payload.write)
        with m.If(accept):
            m.d.sync += [t_core.eq(core), t_which.eq(which)]
        with m.If(t_valid):
            m.d.sync += [rsp_valid.eq(1), rsp_core.eq(t_core), rsp_which.eq(t_which)]
        with m.Elif(rsp.ready):
            m.d.sync += rsp_valid.eq(0)
        m.d.comb += rsp.valid.eq(rsp_valid)
        for s, (im, dm) in enumerate(zip(index_mems, dest_mems, strict=True)):
            nb = lay.configs[s].neuron_bits
            here = accept & (core == s)
            with m.If(here & ~req.payload.write):
                with m.If(which == INDEX):
                    m.d.comb += [im.addr_next.eq(index[:nb]), im.addr_load.eq(1)]
                with m.Else():
                    m.d.comb += [dm.addr_next.eq(index), dm.addr_load.eq(1)]
            m.d.comb += [im.en.eq(t_valid & (t_core == s) & (t_which == INDEX)),
                         dm.en.eq(t_valid & (t_core == s) & (t_which == DEST)),
                         im.w_addr.eq(index[:nb]), dm.w_addr.eq(index),
                         im.w_data.eq(req.payload.data), dm.w_data.eq(req.payload.data),
                         im.w_en.eq(here & req.payload.write & (which == INDEX)),
                         dm.w_en.eq(here & req.payload.write & (which == DEST))]
            with m.If(rsp_core == s):
                with m.If(rsp_which == DEST):
                    m.d.comb += rsp.payload.eq(dm.data)
                with m.Else():
                    m.d.comb += rsp.payload.eq(im.data)
        return [t_valid, rsp_valid]
