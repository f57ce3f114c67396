"""A chip: ``K`` cores joined by the router, a host port, one memory access port, the barrier.

Phases of one step ``t`` (``start`` .. ``done``):

1. Between steps (``busy`` low) the host loads memories through ``mem_req`` and injects the
   external events of step ``t`` through ``inject``; the routed events of step ``t - 1`` are
   already in the cores' input bitmaps.
2. ``start`` starts every core at once. While they compute, each core's spikes ``S_t`` stream
   into the router's capture list of that core, the router looks them up and delivers each event
   to its destination core as soon as that core has finished step ``t`` (a core accepts input
   only while idle, so an event for step ``t + 1`` can never enter step ``t``), to the host
   (tagged ``t``) and to the off-chip link.
3. **The barrier:** ``done`` comes when every core has signalled its own ``done`` and the router
   is ``idle`` (every spike of step ``t`` delivered). Only then can step ``t + 1`` start, so a
   core's input set never depends on the order or time events arrived in.

Addresses of ``mem_req`` are those of ``spikeforge.routing.ChipMap``: a core field, a table bit,
then a core's ``MemoryMap`` address or a routing-table address. A read to a core number beyond
``K`` answers 0. Requests and injections are taken only between steps.
"""

from amaranth.hdl import Cat, Const, DomainRenamer, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..presets import CORE_KINDS
from ..routing import ChipMap
from .core import Core
from .router import Router, host_spike_layout, link_event_layout
from .small_core import SmallCore

# the core design of each ``SocPreset.core_kind``
_CORES = dict(zip(CORE_KINDS, (Core, SmallCore), strict=True))

__all__ = ["Chip", "chip_request_layout", "inject_layout"]


def chip_request_layout(chipmap):
    """Payload of the chip's ``mem_req``: ``addr`` (see ``ChipMap``), ``write``, ``data``."""
    return data.StructLayout({"addr": chipmap.addr_bits, "write": 1,
                              "data": chipmap.data_bits})


def inject_layout(chipmap):
    """An external input event: ``axon`` of ``core``, for the next step to run."""
    return data.StructLayout({"axon": chipmap.routes.axon_bits, "core": chipmap.node_bits})


class Chip(wiring.Component):
    """``len(configs)`` cores (one ``CoreConfig`` each), the ``Router`` with ``limits`` (router
    table sizes, ``spikeforge.routing.RouterLimits``) and ``fifo_depth``.

    Ports: ``mem_req`` / ``mem_rsp`` (every core memory and routing table), ``inject``
    (external events), ``host_out`` (output spikes tagged with their step), ``link_out`` (events
    for cores beyond this chip), ``start`` (pulse; remembered while busy), ``busy``, ``done``
    (one clock at the barrier), ``step`` (core 0's step counter), ``step_moved`` (``step``
    was written at the last clock edge, a flip-flop of core 0), ``core_busy`` (each core) and
    ``routed`` (one bit per core: a routed event enters that core this clock; for performance
    counters).

    ``router_domain``: the clock domain of the router (a gated one in the virtual board, see
    ``spikeforge.hdl.gating``; ``router_wake`` is its ``wake``). ``core_kind``: ``"full"``
    (``Core``) or ``"small"`` (``SmallCore``, one lane: for small FPGAs). ``slot_memories``:
    ``{core: memory}``, a small core's delay slots in a memory given from outside (its
    ``slot_memory``).
    """

    def __init__(self, configs, limits=None, fifo_depth=2, router_domain="sync",
                 core_kind="full", slot_memories=None):
        if core_kind not in _CORES:
            raise ValueError(f"core_kind must be one of {CORE_KINDS}, not {core_kind!r}")
        if slot_memories and core_kind != "small":
            raise ValueError("only small cores take their slot memory from outside")
        self.core_kind = core_kind
        self.slot_memories = dict(slot_memories or {})
        self.chipmap = cm = ChipMap(configs, limits)
        self.configs = cm.configs
        self.fifo_depth = fifo_depth
        self.router_domain = router_domain
        lay = cm.routes
        super().__init__({
            "mem_req": In(stream.Signature(chip_request_layout(cm))),
            "mem_rsp": Out(stream.Signature(cm.data_bits)),
            "inject": In(stream.Signature(inject_layout(cm))),
            "host_out": Out(stream.Signature(host_spike_layout(lay))),
            "link_out": Out(stream.Signature(link_event_layout(lay))),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "step": Out(32),
            "step_moved": Out(1),
            "core_busy": Out(len(cm.configs)),
            "routed": Out(len(cm.configs)),
            "router_wake": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cm, k = self.chipmap, self.chipmap.n_cores
        router = Router(cm.routes, self.fifo_depth)
        m.submodules.router = DomainRenamer({"sync": self.router_domain})(router)
        m.d.comb += self.router_wake.eq(router.wake)
        cores = []
        for c, config in enumerate(self.configs):
            given = {"slot_memory": self.slot_memories[c]} if c in self.slot_memories else {}
            m.submodules[f"core{c}"] = core = _CORES[self.core_kind](config, **given)
            cores.append(core)
            m.d.comb += [router.spikes[c].valid.eq(core.spike_out.valid),
                         router.spikes[c].payload.eq(core.spike_out.payload),
                         core.spike_out.ready.eq(router.spikes[c].ready),
                         self.core_busy[c].eq(core.busy)]
        wiring.connect(m, router.host_out, wiring.flipped(self.host_out))
        wiring.connect(m, router.link_out, wiring.flipped(self.link_out))
        m.d.comb += [self.step.eq(cores[0].step), self.step_moved.eq(cores[0].step_moved)]

        # -- the barrier ----------------------------------------------------------------------
        idle = Signal()
        outstanding = Signal()      # a memory read waits for its response
        pending = Signal()          # a start pulse seen while busy
        seen = Signal(k)            # cores that signalled done in this step
        done_now = Cat(*(core.done for core in cores)) | seen
        # A step begins the clock after its ``start`` pulse, from ``pending`` alone: ``start`` is
        # the stepper's decision of that clock, and no path runs from it through the barrier
        # into the cores' memory ports (the whole SoC's longest on the ECP5). Memory requests
        # and injected events come only between steps (the stepper starts a step after its
        # inputs are in; the link refuses memory commands while it runs), so one clock of
        # ``start`` not yet closing ``open_`` changes nothing.
        with m.If(self.start):
            m.d.sync += pending.eq(1)
        go = pending
        with m.FSM(name="barrier"):
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                with m.If(go & ~outstanding):
                    m.d.sync += [pending.eq(0), seen.eq(0), router.step.eq(cores[0].step)]
                    m.d.comb += [core.start.eq(1) for core in cores]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.sync += seen.eq(done_now)
                with m.If(done_now.all() & router.idle):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~idle)

        # -- events into the cores: routed while running, injected between steps --------------
        inj = self.inject
        open_ = idle & ~go
        for c, core in enumerate(cores):
            ev = router.events[c]
            mine = open_ & inj.valid & (inj.payload.core == c)
            m.d.comb += [core.spike_in.valid.eq(ev.valid | mine),
                         ev.ready.eq(core.spike_in.ready),
                         self.routed[c].eq(ev.valid & core.spike_in.ready)]
            with m.If(ev.valid):
                m.d.comb += core.spike_in.payload.eq(ev.payload)
            with m.Else():
                m.d.comb += core.spike_in.payload.eq(inj.payload.axon)
            with m.If(inj.payload.core == c):
                m.d.comb += inj.ready.eq(open_ & core.spike_in.ready & ~ev.valid)
        if (1 << cm.node_bits) > k:
            with m.If(inj.payload.core >= k):       # no such core: taken and ignored
                m.d.comb += inj.ready.eq(open_)

        self._memory_port(m, cores, router, open_ & ~self.start, outstanding)
        return m

    def _memory_port(self, m, cores, router, stays_open, outstanding):
        """Decode ``mem_req`` by core field and table bit; one read outstanding at a time, so
        responses come back in order. ``stays_open``: the barrier is idle and no step begins
        at the next clock (``pending`` and ``start`` clear)."""
        cm, k = self.chipmap, self.chipmap.n_cores
        lb = cm.local_bits
        req, rsp = self.mem_req, self.mem_rsp
        node = req.payload.addr[lb + 1:]
        table = req.payload.addr[lb]
        local = req.payload.addr[:lb]
        rsp_node = Signal(cm.node_bits)
        rsp_table = Signal()
        null_valid = Signal()       # the answer to a read of a core beyond K
        target_ready = Signal()
        # ``port_open`` (``open_ & ~outstanding``, the barrier's and the read's state) is a
        # flip-flop loaded a clock ahead, so that it reaches the cores' request handshakes and
        # their write decodes from a register (the ULX3S's critical path at 100 MHz, 10.64 ns:
        # ``outstanding`` -> ``pending``'s logic -> the core's ``mem_req.ready`` / ``valid`` ->
        # its ``accept`` -> the write decode ``mq_w_neuron``). It opens when the barrier stays
        # idle and no read is outstanding after this clock: exact, but for a step's end, which
        # reopens the port a clock late.
        port_open = Signal(name="port_open")
        out_next = Signal()
        m.d.comb += req.ready.eq(port_open & target_ready)
        accept = req.valid & req.ready
        m.d.comb += out_next.eq(outstanding)
        with m.If(accept & ~req.payload.write):
            m.d.comb += out_next.eq(1)
            m.d.sync += [rsp_node.eq(node), rsp_table.eq(table)]
        with m.If(rsp.valid & rsp.ready):
            m.d.comb += out_next.eq(0)
        m.d.sync += [outstanding.eq(out_next), port_open.eq(stays_open & ~out_next)]

        rreq = router.mem_req
        m.d.comb += [rreq.payload.addr.eq(Cat(local[:cm.routes.addr_bits], node)),
                     rreq.payload.write.eq(req.payload.write),
                     rreq.payload.data.eq(req.payload.data)]
        for c, core in enumerate(cores):
            mm = cm.memmaps[c]
            creq = core.mem_req
            here = node == c
            m.d.comb += [creq.payload.addr.eq(local[:mm.addr_bits]),
                         creq.payload.write.eq(req.payload.write),
                         creq.payload.data.eq(req.payload.data[:mm.data_bits]),
                         creq.valid.eq(req.valid & port_open & here & ~table)]
            with m.If(here):
                m.d.comb += [rreq.valid.eq(req.valid & port_open & table),
                             target_ready.eq(Mux(table, rreq.ready, creq.ready))]
            with m.If(outstanding & (rsp_node == c)):
                with m.If(rsp_table):
                    m.d.comb += [rsp.valid.eq(router.mem_rsp.valid),
                                 rsp.payload.eq(router.mem_rsp.payload),
                                 router.mem_rsp.ready.eq(rsp.ready)]
                with m.Else():
                    m.d.comb += [rsp.valid.eq(core.mem_rsp.valid),
                                 rsp.payload.eq(core.mem_rsp.payload),
                                 core.mem_rsp.ready.eq(rsp.ready)]
        if (1 << cm.node_bits) > k:
            with m.If(node >= k):
                m.d.comb += target_ready.eq(1)
            with m.If(accept & ~req.payload.write & (node >= k)):
                m.d.sync += null_valid.eq(1)
            with m.Elif(rsp.ready):
                m.d.sync += null_valid.eq(0)
            with m.If(outstanding & (rsp_node >= k)):
                m.d.comb += [rsp.valid.eq(null_valid), rsp.payload.eq(Const(0))]
