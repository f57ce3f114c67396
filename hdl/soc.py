"""The SoC top: UART pins, the link, the chip (``n_cores`` cores and the router), one memory map.

``rx``/``tx`` are plain signals (board files connect them to pins). Data path::

    rx -> UARTReceiver -> Deframer -> AckFilter -> CommandProcessor -> FrameMux -> Framer
                                          |               |  (mem port)     ^        -> UART -> tx
                                       OUT_ACK         Stepper -> Chip -> OutputBuffer
                                                                (cores, router, barrier)

With the firmware link (``SocPreset.link_kind`` ``"firmware"``, ``spikeforge.hdl.firmware_link``)
one ``FirmwareProcessor`` is the ack filter, the command processor, the stepper, the probe
engine, the output buffer and the frame multiplexer::

    rx -> UARTReceiver -> FirmwareProcessor -> UART -> tx
                              |  (mem port, inject, start, barrier, spikes)
                             Chip

It frames too (COBS, CRC), in firmware, so there is no ``Deframer`` and no ``Framer``.

The memory map is the preset's ``ChipMap`` (``spikeforge.routing``): every core's regions and
every routing table behind the chip's one memory port; the host reaches them as the regions of
``spikeforge.protocol.link_regions``. The RESET command resets the processor and the stepper
(run state, input queue, counters) and clears the output buffer; the chip's memories and
registers (the image) are kept.
"""

import zlib
from types import SimpleNamespace

from amaranth.hdl import (
    ClockDomain,
    ClockSignal,
    Const,
    DomainRenamer,
    Module,
    Mux,
    ResetInserter,
    ResetSignal,
    Signal,
)
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer
from amaranth.lib.wiring import In, Out

from spikeforge import protocol
from spikeforge.memmap import MemoryMap
from spikeforge.presets import SocPreset

from .chip import Chip, inject_layout
from .crossing import ChipCrossing
from .flashboot import flash_pins
from .framing import Deframer, Framer, HeaderLayout
from .gating import add_gated, gated_domain
from .link import (
    CLEARED_COUNTERS,
    STATUS_COUNTERS,
    AckFilter,
    CommandProcessor,
    hello_template,
)
from .outbuf import OutputBuffer
from .probe import ProbeEngine
from .spram import SharedSpram, spare_words
from .stats import StatsBank
from .stepper import Stepper
from .target import is_ice40
from .uart import UARTReceiver, UARTTransmitter

__all__ = ["FrameMux", "SoC", "StreamRegister", "build_id"]


def build_id(preset):
    """A 32-bit id of the configuration a bitstream was built from (CRC-32 of its text; the
    core and link kinds, left out of the preset's ``repr`` at their defaults, added when
    not)."""
    text = repr(preset)
    if preset.core_kind != "full":
        text += f" core_kind={preset.core_kind}"
    if preset.link_kind != "hardware":
        text += f" link_kind={preset.link_kind}"
    return zlib.crc32(text.encode()) & 0xFFFFFFFF


class FrameMux(wiring.Component):
    """Two frame sources (header, then ``length`` payload bytes) onto one; ``a`` goes first.

    Only the handshakes follow the state: the data paths are plain two-way multiplexers.
    """

    a_header: In(stream.Signature(HeaderLayout))
    a_payload: In(stream.Signature(8))
    b_header: In(stream.Signature(HeaderLayout))
    b_payload: In(stream.Signature(8))
    header: Out(stream.Signature(HeaderLayout))
    payload: Out(stream.Signature(8))
    wake: Out(1)                # a register may change at the next clock (``gating``)

    def __init__(self, max_payload=protocol.MAX_PAYLOAD):
        self.max_payload = max_payload
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        grant = Signal()                 # b's frame is under way
        left = Signal(range(self.max_payload + 1))
        pick_b = ~self.a_header.valid
        # the framer writes the version itself: only the other fields are switched
        for name in ("seq", "cmd", "length"):
            m.d.comb += self.header.p[name].eq(Mux(pick_b, self.b_header.p[name],
                                                   self.a_header.p[name]))
        m.d.comb += [self.header.p.version.eq(protocol.VERSION),
                     self.payload.payload.eq(Mux(grant, self.b_payload.payload,
                                                 self.a_payload.payload))]
        m.d.comb += self.wake.eq((self.header.valid & self.header.ready)
                                 | (self.payload.valid & self.payload.ready))
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.header.valid.eq(self.a_header.valid | self.b_header.valid),
                             self.a_header.ready.eq(self.header.ready),
                             self.b_header.ready.eq(pick_b & self.header.ready)]
                with m.If(self.header.valid & self.header.ready):
                    m.d.sync += [grant.eq(pick_b), left.eq(self.header.p.length)]
                    with m.If(self.header.p.length != 0):
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [self.payload.valid.eq(Mux(grant, self.b_payload.valid,
                                                       self.a_payload.valid)),
                             self.a_payload.ready.eq(~grant & self.payload.ready),
                             self.b_payload.ready.eq(grant & self.payload.ready)]
                with m.If(self.payload.valid & self.payload.ready):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.next = "IDLE"
        return m


class StreamRegister(wiring.Component):
    """A stream through one register stage (``o`` is a register), with a ``wake`` (``gating``):
    the link's gated blocks take the chip's output spikes through one and send it memory
    requests through another, so that none of their logic reads the chip's (ungated)
    handshakes. ``full_rate``: ``i.ready`` while ``o`` is taken (it then follows ``o.ready``);
    otherwise only while ``o`` is empty (a transfer every other clock, and ``i.ready`` a
    register's).
    """

    def __init__(self, shape, *, full_rate=True):
        self.full_rate = full_rate
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "wake": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | (self.o.ready if self.full_rate else 0))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.comb += self.wake.eq((self.i.valid & self.i.ready) | (self.o.valid & self.o.ready))
        return m


class SoC(wiring.Component):
    """A SoC of ``preset`` (a ``spikeforge.presets.SocPreset``).

    ``active`` is high while anything is under way besides the line (a step, output frames not
    yet acknowledged, a command being executed): a simulation may stop clocking when it is low
    and the line is quiet. A preset with a ``chip_clock_hz`` adds the input ``chip_clk``, the
    chip's clock (its reset is ``sync``'s, synchronised).

    ``firmware_ram``: where the firmware link's processor keeps its program and data:
    ``"block"``, block RAM the bitstream initialises, or ``"spram"``, the iCE40 UltraPlus SPRAM
    block that holds the (small, single) core's delay slots, which use a quarter of it
    (``spram.SharedSpram``: the core has the block whenever it asks, the processor the clocks
    it leaves); the processor then loads its firmware from the board's SPI flash at power-on
    (``flashboot``), on the ``flash`` port, and waits until it has.
    """

    def __init__(self, preset, *, firmware_ram="block"):
        if not isinstance(preset, SocPreset):
            raise TypeError(f"preset must be a SocPreset, not {preset!r}")
        if firmware_ram not in ("block", "spram"):
            raise ValueError(f"firmware_ram must be 'block' or 'spram', not {firmware_ram!r}")
        if firmware_ram == "spram" and not preset.firmware_fits_slot_spram:
            raise ValueError("the firmware's RAM shares an SPRAM block with a small core's "
                             "delay slots: a firmware link, small cores, one clock")
        self.preset = preset
        self.firmware_ram = firmware_ram
        self.memmap = MemoryMap(preset.core)
        self.chipmap = preset.chipmap
        members = {"rx": In(1, init=1), "tx": Out(1, init=1), "active": Out(1)}
        if preset.chip_clock_hz is not None:
            members["chip_clk"] = In(1)
        if firmware_ram == "spram":
            members["flash"] = Out(flash_pins())
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        p, c = self.preset, self.preset.core
        cpb = p.clocks_per_bit
        # The deframer takes a byte in at most 8 clocks (its serial CRC), the firmware's FIFO
        # in one, and bytes arrive 40 or more clocks apart: one byte of buffer, in flip-flops,
        # is all the receiver needs.
        m.submodules.urx = urx = UARTReceiver(cpb, fifo_depth=1)
        slots = {}
        if self.firmware_ram == "spram":
            # core 0's delay slots and the processor's RAM in one SPRAM block
            slots[0] = SharedSpram(c.slot_bits, c.n_slots * c.n_neurons,
                                   self._spram_ram_words())
        proc = self._processor(ram_words=slots[0].bus_words if slots else None)
        # the router runs on the link's gated clock (in the virtual board): it idles but for the
        # few clocks a spike takes through it; with a chip clock of its own, on the chip's
        separate = p.chip_clock_hz is not None
        chip = Chip([c] * p.n_cores, p.limits,
                    router_domain="sync" if separate else gated_domain("link"),
                    core_kind=p.core_kind, slot_memories=slots)
        if slots:
            wiring.connect(m, proc.ram, slots[0].bus)
            wiring.connect(m, proc.flash, wiring.flipped(self.flash))
        firmware = p.link_kind == "firmware"
        # the clock of what moves on every clock beside gated blocks (the resend timer, the
        # step timer)
        m.domains.free = ClockDomain("free", local=True)
        m.d.comb += [ClockSignal("free").eq(ClockSignal("sync")),
                     ResetSignal("free").eq(ResetSignal("sync"))]
        # RESET reaches several hundred flip-flops in each of these blocks: the processor's
        # ``soft_reset`` is a register (its own blocks' reset) and every other block gets a
        # registered copy of it, one clock later (when the processor, just reset, is idle and
        # unsynchronised), so no net spans the chip from one flip-flop. ``~copy`` in each
        # copy's input keeps Yosys from merging them (the pulse is one clock long).
        # The copies for the blocks on the link's gate are registers of its domain: a gated
        # block whose logic read a register of the system clock (its reset, in every
        # next-state process) would be evaluated on every clock in the virtual board. The gate
        # is open on the processor's pulse (its ``wake``) and on each copy's (below).
        link = gated_domain("link")

        def reset_copy(name, domain="sync"):
            copy = Signal(name=f"reset_{name}")
            m.d[domain] += copy.eq(proc.soft_reset & ~copy)
            return copy

        port = self._chip_port(m, chip, separate, direct=is_ice40(platform))
        m.submodules.utx = utx = UARTTransmitter(cpb)
        m.d.comb += urx.rx.eq(self.rx)

        # the nonce: a free-running counter latched at the first start bit after a reset
        counter = Signal(32)
        m.d.sync += counter.eq(counter + 1)
        rx_s, rx_prev = Signal(init=1), Signal(init=1)
        m.submodules.rx_sync = FFSynchronizer(self.rx, rx_s, init=1)
        m.d.sync += rx_prev.eq(rx_s)
        # the processor's view of the SoC
        m.d.comb += [proc.rx_start.eq(rx_prev & ~rx_s), proc.counter.eq(counter),
                     proc.core_step.eq(port.step)]

        # Between the UART and the chip: the hardware processor's deframer, ack filter,
        # stepper, probe engine, output buffer, frame multiplexer and framer, or the firmware,
        # which is all of them
        if firmware:
            side = self._firmware_side(m, proc, urx, utx, port)
        else:
            side = self._hardware_side(m, proc, urx, utx, port, chip, reset_copy)

        # The STATUS counters (the hardware link's; the firmware keeps them in its RAM, but
        # for the UART's, which it reads from counters of its window). Each event is counted a
        # clock late, from a register (no path from the deframer's or the UART's logic into
        # the adders) of the link's gated domain: the gate is open in every clock with an event
        # (the UART's are in its ``wake``, the others come from its blocks while they are
        # awake).
        counters = {} if firmware else {"stats": self._stats_bank(
            m, proc, side.events | {"naks": proc.nak_made, "duplicates": proc.duplicate},
            reset_copy("stats", link))}
        # The deframer, the ack filter, the processor, the probe engine, the counters, the
        # stepper, the output path (the output buffer, the frame multiplexer and the framer)
        # and the chip's router idle through most of a run (but for an OUT_ACK now and then,
        # the probes and the stepper's work at the ends of a step, and a spike or a byte for the
        # line every ~100 clocks): in the virtual board they are clocked only in the clocks
        # after one that one of them had work in (``gating``). Beside the blocks' own ``wake``
        # terms: the registers of the link's domain above (each is written while the gate is
        # open for what it copies), the reset copies the blocks' ``wake`` does not see, and the
        # UART's error pulses. The processor's ``wake`` covers its use of the counters' RAM (the
        # reply history), which theirs leaves out.
        # the hardware processor is reset by its own RESET pulse; the firmware resets its
        # state itself (a reset processor would start its program again)
        blocks = {**side.blocks, **counters, **port.blocks}
        add_gated(m, platform, "link", blocks,
                  side.wake | sum(c.wake for c in counters.values()) | port.wake
                  | urx.error | urx.overrun)
        m.d.comb += [self.tx.eq(utx.tx),
                     self.active.eq(~proc.idle | side.active | port.active | utx.busy)]
        return m

    def _stats_bank(self, m, proc, events, clear):
        """The hardware processor's ``StatsBank`` of ``events`` (``STATUS_COUNTERS``' sources),
        which it shares its reply history's RAM with; ``clear`` is RESET's copy."""
        p = self.preset
        # the fewest clocks between two events: a UART byte time for what happens once a byte,
        # a frame or a command; the resend timeout; a step's four stepper states
        byte, step = 10 * p.clocks_per_bit, 4
        gaps = dict.fromkeys(STATUS_COUNTERS, byte) | dict(
            out_resent=p.resend_clocks, timer_overruns=step, stalls=step)
        stats = StatsBank(
            [len(events[name]) for name in STATUS_COUNTERS],
            gaps=[gaps[name] for name in STATUS_COUNTERS], first_cleared=CLEARED_COUNTERS,
            shared=proc.history_words, shared_stall=proc.history_stall)
        m.d[gated_domain("link")] += [getattr(stats, f"inc{k}").eq(events[name])
                                      for k, name in enumerate(STATUS_COUNTERS)]
        m.d.comb += [stats.clear.eq(clear), stats.rd_req.eq(proc.sb_req),
                     stats.rd_index.eq(proc.sb_index), proc.sb_done.eq(stats.rd_done),
                     proc.sb_value.eq(stats.value)]
        # the processor's reply history lives in the bank's RAM too
        m.d.comb += [stats.sh_addr.eq(proc.hist_addr), stats.sh_en.eq(proc.hist_en),
                     stats.sh_we.eq(proc.hist_we), stats.sh_data.eq(proc.hist_data),
                     proc.hist_q.eq(stats.sh_q)]
        return stats

    @staticmethod
    def _firmware_side(m, proc, urx, utx, port):
        """The ``FirmwareProcessor`` between the UART and the chip: it frames, takes OUT_ACKs,
        runs the steps, reads the probes and sends the output frames itself."""
        wiring.connect(m, urx.o, proc.rx)
        wiring.connect(m, proc.tx, utx.i)
        m.d.comb += [proc.rx_error.eq(urx.error), proc.rx_overrun.eq(urx.overrun)]
        wiring.connect(m, proc.inject, port.inject)
        wiring.connect(m, port.spikes, proc.spikes)
        wiring.connect(m, proc.mem_req, port.mem_req)       # the chip's memory port: its own
        m.d.comb += [port.start.eq(proc.start), proc.core_busy.eq(port.busy),
                     proc.core_done.eq(port.done),
                     proc.mem_rsp.payload.eq(port.rsp_data), proc.mem_rsp.valid.eq(port.rsp_valid)]
        return SimpleNamespace(blocks={"proc": proc}, wake=proc.wake, active=0)

    def _hardware_side(self, m, proc, urx, utx, port, chip, reset_copy):
        """The ``CommandProcessor`` between the UART and the chip, with the ``Deframer``, the
        ``AckFilter``, the ``Stepper``, the ``ProbeEngine``, the ``OutputBuffer``, the
        ``FrameMux`` and the ``Framer``."""
        p, c = self.preset, self.preset.core
        link = gated_domain("link")
        deframer, framer = Deframer(max_payload=p.max_payload), Framer(p.max_payload)
        # The receiver's error (comb from its bit timer) is registered: the deframer's ``wake``
        # reads it, and through the link gate's enable it was a ULX3S critical path (15.3 ns).
        # A clock later is harmless: a byte in error is never written, and the bytes before it
        # are older still.
        m.d.sync += deframer.rx_error.eq(urx.error | urx.overrun)
        wiring.connect(m, urx.o, deframer.i)
        wiring.connect(m, framer.o, utx.i)
        filt = AckFilter(p.max_payload)
        stepper = Stepper(inject_layout(self.chipmap).size, input_depth=p.input_depth,
                          timer_domain="free")
        outbuf = OutputBuffer(c.n_neurons, n_cores=p.n_cores, n_probes=p.n_probes,
                              probe_payload=p.probe_payload,
                              spike_shape=chip.host_out.payload.shape(),
                              out_window=p.out_window, max_payload=p.max_payload,
                              timeout=p.resend_clocks, timer_domain="free")
        rst_stepper, rst_outbuf = reset_copy("stepper", link), reset_copy("outbuf", link)
        rst_probes = reset_copy("probes", link)
        probes = ProbeEngine(self.chipmap, p.n_probes)
        mux = FrameMux(p.max_payload)
        # the payload bytes reach the framer through a register whose ``ready`` is its own
        # (a byte every other clock, against a UART byte every ~10 bit times): the framer's
        # ``ready`` (from its serial CRC) would otherwise run back through the multiplexer into
        # the output buffer's transmit logic (the ULX3S's critical path at 93.75 MHz, 10.92 ns)
        tx_reg = StreamRegister(8, full_rate=False)
        wiring.connect(m, deframer.header, filt.i_header)
        wiring.connect(m, deframer.payload, filt.i_payload)
        wiring.connect(m, filt.o_header, proc.header)
        wiring.connect(m, filt.o_payload, proc.payload)
        m.d.comb += proc.out_seq.eq(outbuf.out_seq)

        # The chip's memory port: the probe engine's while it works (between the barrier and
        # the end of a step, when the processor never uses it), else the processor's. The
        # probe engine only reads, so the write data is always the processor's.
        req, rsp_valid, rsp_data = port.mem_req, port.rsp_valid, port.rsp_data
        m.d.comb += [req.p.data.eq(proc.mem_req.p.data),
                     req.p.write.eq(proc.mem_req.p.write & ~probes.busy)]
        with m.If(probes.busy):
            m.d.comb += [req.valid.eq(probes.mem_req.valid),
                         req.p.addr.eq(probes.mem_req.p.addr),
                         probes.mem_req.ready.eq(req.ready)]
        with m.Else():
            m.d.comb += [req.valid.eq(proc.mem_req.valid),
                         req.p.addr.eq(proc.mem_req.p.addr),
                         proc.mem_req.ready.eq(req.ready)]
        m.d.comb += [proc.mem_rsp.payload.eq(rsp_data), probes.mem_rsp.payload.eq(rsp_data),
                     proc.mem_rsp.valid.eq(rsp_valid & ~probes.busy),
                     probes.mem_rsp.valid.eq(rsp_valid & probes.busy)]

        m.d.comb += [probes.set.eq(proc.pr_set), probes.set_probe.eq(proc.pr_probe),
                     probes.set_core.eq(proc.pr_core), probes.set_region.eq(proc.pr_region),
                     probes.set_period.eq(proc.pr_period), probes.set_index.eq(proc.pr_index),
                     probes.set_count.eq(proc.pr_count),
                     probes.step.eq(stepper.run_step), stepper.period.eq(proc.period)]
        # The step's end (the stepper's, at the chip's barrier), registered here: the probe
        # engine's state and ``wake`` then start at a flip-flop; ``busy`` rises from it, the
        # clock after the end. A register of the link's domain: the stepper's ``wake`` holds
        # on the clock of the end (BUSY with the barrier seen).
        m.d[link] += probes.start.eq(stepper.end & ~rst_probes)
        wiring.connect(m, probes.out, outbuf.probe)
        m.d.comb += [stepper.run.eq(proc.st_run), stepper.run_steps.eq(proc.st_run_steps),
                     stepper.step.eq(proc.st_step), stepper.stop.eq(proc.st_stop),
                     stepper.commit.eq(proc.st_commit), stepper.abort.eq(proc.st_abort),
                     stepper.commit_step.eq(proc.st_commit_step),
                     stepper.commit_end.eq(proc.st_commit_end),
                     proc.st_state.eq(stepper.state), proc.st_idle.eq(stepper.idle),
                     proc.st_step_done.eq(stepper.step_done),
                     proc.st_done_step.eq(stepper.done_step),
                     proc.st_busy_last.eq(stepper.busy_last),
                     proc.st_busy_max.eq(stepper.busy_max),
                     proc.st_steps_left.eq(stepper.steps_left),
                     proc.st_input_floor.eq(stepper.input_floor),
                     proc.st_last_input.eq(stepper.last_input),
                     proc.st_queued.eq(stepper.queued),
                     proc.st_free.eq(stepper.free), proc.st_paced.eq(stepper.paced)]
        wiring.connect(m, proc.st_push, stepper.push)

        # stepper, chip and output buffer; events for cores beyond the chip are dropped
        m.d.comb += [port.inject.valid.eq(stepper.spike_in.valid),
                     port.inject.payload.eq(stepper.spike_in.payload),
                     stepper.spike_in.ready.eq(port.inject.ready)]
        wiring.connect(m, port.spikes, outbuf.spikes)
        m.d.comb += [port.start.eq(stepper.start), stepper.core_busy.eq(port.busy),
                     stepper.core_done.eq(port.done), stepper.core_step.eq(port.step),
                     stepper.room.eq(outbuf.room), outbuf.begin.eq(stepper.begin),
                     outbuf.step.eq(port.step), outbuf.step_moves.eq(port.step_moves),
                     outbuf.end.eq(probes.done),
                     stepper.post_busy.eq(probes.busy | outbuf.closing),
                     outbuf.ack.eq(filt.ack), outbuf.ack_next.eq(filt.next),
                     outbuf.clear.eq(rst_outbuf)]

        # transmit path: replies first, then output frames
        wiring.connect(m, proc.tx_header, mux.a_header)
        wiring.connect(m, proc.tx_payload, mux.a_payload)
        wiring.connect(m, outbuf.tx_header, mux.b_header)
        wiring.connect(m, outbuf.tx_payload, mux.b_payload)
        wiring.connect(m, mux.header, framer.header)
        wiring.connect(m, mux.payload, tx_reg.i)
        wiring.connect(m, tx_reg.o, framer.payload)
        # the line's events (the UART's overruns and the frames the deframer's ring had no
        # room for are both ``overruns``) and the link's
        return SimpleNamespace(
            events={"crc_errors": deframer.crc_error, "frame_errors": deframer.frame_error,
                    "uart_errors": urx.error, "overruns": deframer.overflow + urx.overrun,
                    "out_resent": outbuf.resent, "timer_overruns": stepper.overrun,
                    "stalls": stepper.stall},
            blocks={"deframer": deframer, "filter": filt,
                    "proc": ResetInserter(proc.soft_reset)(proc),
                    "probes": ResetInserter(rst_probes)(probes),
                    "outbuf": outbuf, "mux": mux, "tx_reg": tx_reg,
                    # the step timer (domain ``free``) restarts on RESET too
                    "stepper": ResetInserter({"sync": rst_stepper, "free": rst_stepper})(stepper),
                    "framer": framer},
            wake=(deframer.wake | filt.wake | proc.wake | probes.wake | rst_probes
                  | stepper.wake | rst_stepper | outbuf.wake | mux.wake | tx_reg.wake
                  | framer.wake),
            active=(~stepper.idle | outbuf.pending | tx_reg.o.valid
                    | deframer.header.valid))

    def _spram_ram_words(self):
        """The firmware's RAM in SPRAM (``firmware_ram="spram"``): the rows of the block that
        the delay slots leave, two a 32-bit word."""
        c = self.preset.core
        return spare_words(c.n_slots * c.n_neurons)

    def flash_image(self):
        """What the board's flash holds at ``flashboot.FLASH_OFFSET`` for this SoC (bytes): the
        firmware, which a ``firmware_ram="spram"`` SoC loads at power-on; ``None`` for one
        whose firmware is in the bitstream (or that has none)."""
        if self.firmware_ram != "spram":
            return None
        from .firmware_link import link_firmware
        from .flashboot import flash_data

        ram_words = self._spram_ram_words()
        image, _ = link_firmware(self.chipmap, **self._firmware_settings(), ram_words=ram_words)
        return flash_data(image, ram_words)

    def _firmware_settings(self):
        """The preset's settings of the ``FirmwareProcessor`` (``link_firmware``'s)."""
        p = self.preset
        template = hello_template(self.chipmap, window=p.window, out_window=p.out_window,
                                  n_probes=p.n_probes, probe_payload=p.probe_payload,
                                  max_payload=p.max_payload, firmware=True,
                                  **self._hello_fields())
        return dict(window=p.window, max_payload=p.max_payload, n_probes=p.n_probes,
                    probe_payload=p.probe_payload, input_depth=p.input_depth,
                    out_window=p.out_window, resend_clocks=p.resend_clocks, hello=template)

    def _processor(self, ram_words=None):
        """The preset's command processor: the ``CommandProcessor`` (``link_kind``
        ``"hardware"``) or the ``FirmwareProcessor`` (``"firmware"``), of the same ports;
        ``ram_words``: the firmware's RAM outside (``firmware_ram`` ``"spram"``)."""
        p = self.preset
        if p.link_kind == "firmware":
            from .firmware_link import FirmwareProcessor

            return FirmwareProcessor(
                self.chipmap, **self._firmware_settings(),
                **({"ram": "flash", "ram_words": ram_words} if ram_words else {}))
        return CommandProcessor(self.chipmap, window=p.window, n_probes=p.n_probes,
                                probe_payload=p.probe_payload, out_window=p.out_window,
                                max_payload=p.max_payload, hello=self._hello_fields())

    def _hello_fields(self):
        """The HELLO reply's fields that come from the preset beside the chip's."""
        p = self.preset
        return dict(clock_hz=p.clock_hz, baud=p.baud, out_timeout=p.resend_clocks,
                    build_id=build_id(p))

    def _chip_port(self, m, chip, separate, direct=False):
        """Add ``chip`` to ``m`` and return the link's side of it: ``mem_req`` and ``inject``
        (streams to drive), ``rsp_valid``/``rsp_data``, ``spikes`` (a stream to take), ``start``
        (to drive), ``busy``, ``done``, ``step``, ``step_moves``, the ``blocks`` to clock on the
        link's gate, and the ``wake`` and ``active`` terms.

        On one clock the link's blocks meet the chip through registers of their domain, so that
        none of their logic reads the chip's handshakes: the memory requests, the injected
        events and the output spikes through a ``StreamRegister`` each (a request or an event
        every other clock at most: reads wait for their response anyway, and the stepper feeds
        an event every other clock at best; the step's start waits for the last event to leave
        its register), the responses, the step counter, ``busy`` and ``done``
        a clock late (the chip's step moves when its cores finish a step, or by a memory
        write). With a chip clock of its own (``separate``: the preset's ``chip_clock_hz``, the
        clock domain ``chip`` on the ``chip_clk`` input) everything crosses in a
        ``ChipCrossing``. ``direct`` (an iCE40 bitstream: no gated clocks, and logic cells
        too few for 84-bit copies at a clock speed that does not need them): the memory
        requests and their responses go straight between the link and the chip, without the
        request register (107 flip-flops on the iCEBreaker) and the response's (85).
        """
        link = gated_domain("link")
        m.d.comb += chip.link_out.ready.eq(1)
        if separate:
            m.domains.chip = ClockDomain("chip", local=True)
            m.d.comb += ClockSignal("chip").eq(self.chip_clk)
            m.submodules.chip_reset = ResetSynchronizer(ResetSignal("sync"), domain="chip")
            m.submodules.chip = DomainRenamer({"sync": "chip"})(chip)
            x = ChipCrossing(request=chip.mem_req.payload.shape(),
                             inject=chip.inject.payload.shape(),
                             spike=chip.host_out.payload.shape(),
                             data=chip.mem_rsp.payload.shape())
            wiring.connect(m, x.chip_mem_req, chip.mem_req)
            wiring.connect(m, chip.mem_rsp, x.chip_mem_rsp)
            wiring.connect(m, x.chip_inject, chip.inject)
            wiring.connect(m, chip.host_out, x.chip_host_out)
            m.d.comb += [chip.start.eq(x.chip_start), x.chip_done.eq(chip.done),
                         x.chip_step.eq(chip.step)]
            return SimpleNamespace(
                mem_req=x.mem_req, inject=x.inject, rsp_valid=x.mem_rsp.valid,
                rsp_data=x.mem_rsp.payload, spikes=x.host_out, start=x.start, busy=x.busy,
                done=x.done, step=x.step, step_moves=x.step_moves, blocks={"crossing": x},
                wake=x.wake, active=x.active)
        m.submodules.chip = chip
        mem_req = None if direct else StreamRegister(chip.mem_req.payload.shape(),
                                                     full_rate=False)
        inject = StreamRegister(chip.inject.payload.shape(), full_rate=False)
        spikes = StreamRegister(chip.host_out.payload.shape())
        if direct:
            req, req_wake = chip.mem_req, Const(0)
            blocks = {"spikes": spikes, "inject": inject}
        else:
            wiring.connect(m, mem_req.o, chip.mem_req)
            req, req_wake = mem_req.i, mem_req.wake
            blocks = {"spikes": spikes, "mem_req": mem_req, "inject": inject}
        wiring.connect(m, inject.o, chip.inject)
        wiring.connect(m, chip.host_out, spikes.i)
        # the step's start waits for its last event to leave the inject register
        start, start_pend = Signal(), Signal()
        m.d.comb += chip.start.eq((start | start_pend) & ~inject.o.valid)
        with m.If(chip.start):
            m.d[link] += start_pend.eq(0)
        with m.Elif(start):
            m.d[link] += start_pend.eq(1)
        if direct:
            rsp_valid, rsp_data = chip.mem_rsp.valid, chip.mem_rsp.payload
        else:
            rsp_valid, rsp_data = Signal(), Signal.like(chip.mem_rsp.payload)
        step, busy, done = Signal(32), Signal(), Signal()
        copies = [step.eq(chip.step), busy.eq(chip.busy), done.eq(chip.done)]
        if not direct:
            copies[:0] = [rsp_valid.eq(chip.mem_rsp.valid), rsp_data.eq(chip.mem_rsp.payload)]
        m.d[link] += copies
        # high on a clock after which ``step`` moves: ``step`` follows the chip's a clock late,
        # and the chip's moved at the last edge (a flip-flop of core 0's, no 32-bit comparison)
        step_moves = Signal()
        m.d.comb += [step_moves.eq(chip.step_moved), chip.mem_rsp.ready.eq(1)]
        return SimpleNamespace(
            mem_req=req, inject=inject.i, rsp_valid=rsp_valid, rsp_data=rsp_data,
            spikes=spikes.o, start=start, busy=busy, done=done, step=step,
            step_moves=step_moves, blocks=blocks,
            wake=(spikes.wake | req_wake | inject.wake | start_pend | chip.router_wake
                  | step_moves | (chip.busy != busy) | chip.done | chip.mem_rsp.valid
                  | rsp_valid),
            active=chip.busy | start_pend)
