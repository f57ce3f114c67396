"""The link's control as firmware: a ``ControlCPU`` running ``firmware/link.c`` (the command
processor), ``firmware/stepper.c`` (the stepper), ``firmware/outbuf.c`` (the output buffer)
and ``firmware/board.c`` (the probes, the loop).

``FirmwareProcessor`` has the ``CommandProcessor``'s frame ports (validated frames in from the
deframer, replies and output frames out to the framer, the chip's memory port:
``link.frame_ports``), and in place of an ``AckFilter``, a ``Stepper``, a ``ProbeEngine``, an
``OutputBuffer``, a ``FrameMux`` and a ``StatsBank`` it drives the chip, takes its output
spikes and keeps the STATUS counters itself: the SoC takes either link
(``SocPreset.link_kind``), and both carry out every command alike. It is the link that fits
the iCE40UP5K (``docs/boards.md``): a bit-serial processor and a register window in place of
those blocks' thousands of logic cells.

The firmware reaches the SoC through the processor's register window (``REGISTERS``, shared
with the C as ``registers.h``):

* frames: the received header (valid bit, version, number, command; length) and a take strobe;
  payload bytes popped one a load (bit 8 set when a byte came); the reply's header and bytes
  pushed one a store into one-entry slots (``TX_STATUS`` says when they are free), replies
  and output frames alike;
* the chip: a request's address, data words and a go strobe, whose read response lands in the
  same data words; ``CORE_STEP``, its step counter;
* ``CONTROL``: a store pulses the bits of ``CONTROL_BITS`` (a step's start, RESET); a load
  gives ``STATUS_BITS`` (the chip busy, the step ended at the chip's barrier, the step timer
  past its period, the inject slot full);
* the step: ``INJECT`` (an input event into the chip, a one-entry slot), ``PERIOD`` (the
  TIMER's clocks from start to start), ``BUSY_LAST`` (the clocks from the last start to its
  barrier), ``RUNNING`` (a level: a step under way or output frames unacknowledged, for
  ``idle``);
* the output: ``SPIKE``, the chip's next output spike (a load takes it: neuron in bits 0-15,
  core in 16-23, bit 31 set when one came), ``COUNTER`` (the free-running clock counter, the
  resend timer's);
* ``LINE0``, ``LINE1``: the line's event counters (``LINE_COUNTERS``: CRC errors, frame
  errors, UART errors, overruns), 16 bits each, two a register, counting on from power-on;
  the firmware adds what they moved by to its own 32-bit counters (it keeps the others,
  NAKs, duplicates, resends, overruns and stalls, itself);
* ``NONCE``: the free-running counter as it was at the first start bit on the line after a
  reset (power-on or RESET), as the hardware processor takes it.

What must be exact to the clock stays in hardware: the step timer (a step starts
``PERIOD`` clocks after the previous start, once the firmware has armed it with ``START``
and fed the step's input) and the busy clocks, latched at the barrier.

The processor polls: its ``wake`` is always high (the clock gating of the virtual board saves
nothing while it runs), and it is ``idle`` while it waits for a frame with nothing to send
and no step under way.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge import protocol

from .chip import inject_layout
from .cpu import ControlCPU
from .firmware import SOURCES, build_firmware, firmware_ram_words, link_config_header, link_sources
from .flashboot import flash_pins
from .link import CLEARED_COUNTERS, STATUS_COUNTERS, control_ports, frame_ports
from .outbuf import output_sizes
from .router import host_spike_layout
from .spram import ram_bus

__all__ = ["FirmwareProcessor", "link_firmware", "REGISTERS", "CONTROL_BITS", "STATUS_BITS",
           "registers_header", "soc_header"]

# the register window, in order (``R_<NAME>`` in ``registers.h``); ``MEM_DATA`` is last: the
# chip's data word takes as many registers as it has 32-bit words
REGISTERS = ("RX_HEADER", "RX_LENGTH", "RX_TAKE", "RX_BYTE", "TX_HEADER", "TX_BYTE",
             "TX_STATUS", "MEM_ADDR", "MEM_GO", "MEM_STATUS", "NONCE", "CONTROL", "PERIOD",
             "INJECT", "RUNNING", "SPIKE", "COUNTER", "LINE0", "LINE1", "CORE_STEP",
             "BUSY_LAST", "MEM_DATA")
_R = {name: k for k, name in enumerate(REGISTERS)}
# a store to CONTROL: pulses (``C_<NAME>``)
CONTROL_BITS = ("START", "RESET")
_C = {name: 1 << k for k, name in enumerate(CONTROL_BITS)}
# a load of CONTROL (``S_<NAME>``)
STATUS_BITS = ("CORE_BUSY", "ENDED", "PAST", "INJECT_FULL")
# the line's counters (those RESET keeps), in the window's LINE registers, 16 bits each
LINE_COUNTERS = STATUS_COUNTERS[:CLEARED_COUNTERS]
assert len(LINE_COUNTERS) == 4
_S = {name: 1 << k for k, name in enumerate(STATUS_BITS)}


# words: a 32-bit RAM on an iCE40 grows by two 256 x 16 block RAMs side by side (1 KB)
_RAM_STEP = 256


def _mem_words(chipmap):
    return -(-chipmap.data_bits // 32)


def registers_header(chipmap):
    """``registers.h``: the window (``REG(k)``), its register numbers, ``CONTROL``'s bits,
    the chip's address fields, the event counters (``EV_<NAME>``, STATUS's order; the first
    ``N_LINE_COUNTERS`` in the LINE registers) and where each goes in the STATUS reply."""
    routes, mm = chipmap.routes, chipmap.memmaps[0]
    status = protocol.REPLY[protocol.Command.STATUS].offsets()
    lines = ["/* generated by spikeforge.hdl.firmware_link */", "#pragma once",
             "#define REG(k) (*(volatile uint32_t *)(0x80000000u + 4u * (k)))"]
    lines += [f"#define R_{name} {k}" for name, k in _R.items()]
    lines += [f"#define C_{name} {bit}u" for name, bit in _C.items()]
    lines += [f"#define S_{name} {bit}u" for name, bit in _S.items()]
    lines += [f"#define R_MEM_WORDS {_mem_words(chipmap)}",
              f"#define LINK_LOCAL_BITS {chipmap.local_bits}",
              f"#define LINK_ENTRY_BITS {routes.entry_bits}",
              f"#define LINK_INDEX_BITS {mm.index_bits}",
              f"#define N_COUNTERS {len(STATUS_COUNTERS)}",
              f"#define N_LINE_COUNTERS {len(LINE_COUNTERS)}",
              *(f"#define EV_{name.upper()} {k}" for k, name in enumerate(STATUS_COUNTERS)),
              "#define COUNTER_OFFSETS {" + ", ".join(str(status[name][0])
                                                     for name in STATUS_COUNTERS) + "}"]
    return "\n".join(lines) + "\n"


def soc_header(chipmap, *, input_depth, out_window, n_probes, probe_payload, max_payload,
               resend_clocks):
    """``soc.h``: the stepper's and the output buffer's sizes (``stepper.c``, ``outbuf.c``);
    the output buffer's as ``spikeforge.hdl.outbuf.output_sizes`` gives them."""
    n = chipmap.memmaps[0].config.n_neurons
    sizes = output_sizes(n, n_cores=chipmap.n_cores, n_probes=n_probes,
                         probe_payload=probe_payload, out_window=out_window,
                         max_payload=max_payload)
    return "\n".join([
        "/* generated by spikeforge.hdl.firmware_link */", "#pragma once",
        f"#define LINK_INPUT_DEPTH {input_depth}",
        f"#define LINK_N_NEURONS {n}",
        f"#define LINK_NEURON_T {'uint8_t' if n <= 256 else 'uint16_t'}",
        f"#define LINK_OUT_WINDOW {out_window}",
        f"#define LINK_PER_FRAME {sizes['per_frame']}",
        f"#define LINK_FRAMES_PER_STEP {sizes['frames_per_step']}",
        f"#define LINK_OUT_RING {sizes['ring']}",
        f"#define LINK_PROBE_RING {sizes['probe_ring']}",
        f"#define LINK_RESEND_CLOCKS {resend_clocks}u",
    ]) + "\n"


def link_firmware(chipmap, *, hello, window, max_payload, n_probes, probe_payload, input_depth,
                  out_window, resend_clocks, regions=None, ram_words=None, compressed=False):
    """``(image, ram_words)``: the link firmware of a ``FirmwareProcessor`` of these
    settings (its arguments), and its RAM's words (``ram_words``, or the fewest whole block
    RAMs that hold it)."""
    if len(hello) != protocol.REPLY[protocol.Command.HELLO].size:
        raise ValueError(f"HELLO reply of {len(hello)} bytes, not "
                         f"{protocol.REPLY[protocol.Command.HELLO].size}")
    config = link_config_header(chipmap, window=window, max_payload=max_payload,
                                hello=bytes(hello), n_probes=n_probes,
                                probe_payload=probe_payload, regions=regions)
    soc = soc_header(chipmap, input_depth=input_depth, out_window=out_window,
                     n_probes=n_probes, probe_payload=probe_payload,
                     max_payload=max_payload, resend_clocks=resend_clocks)
    sources = {**link_sources(config), "registers.h": registers_header(chipmap),
               "soc.h": soc, **{name: (SOURCES / name).read_text()
                                for name in ("board.h", "board.c", "stepper.c", "outbuf.c")}}
    if ram_words is None:
        ram_words = firmware_ram_words(sources, step=_RAM_STEP, compressed=compressed)
    return build_firmware(sources, ram_words, compressed=compressed), ram_words


class FirmwareProcessor(wiring.Component):
    """The link firmware for the chip of ``chipmap`` on a ``ControlCPU`` of ``ram_words``.

    ``hello``: the HELLO reply's bytes (``protocol.REPLY[Command.HELLO]``; its ``nonce`` and
    ``out_seq`` are filled in as it is sent). ``regions``: ``{link region id: (word bytes,
    depth)}`` the memory commands reach (default: every one of ``protocol.link_regions``).
    ``input_depth``: entries of the input queue (in the firmware's RAM, as the ``Stepper``'s
    are counted); ``out_window`` and ``resend_clocks``: the output frames kept until
    acknowledged, and the clocks without an OUT_ACK after which they are sent again.
    ``ram_words``: the RAM's words (default: the fewest whole block RAMs that
    hold the firmware, its data and its stack). ``compressed``: RV32IC firmware and decoder
    (``bench/link_cpu.py``: a quarter less RAM, 2 EBR at the iCEBreaker's sizes, for about
    300 LUT4 more). ``ram``: ``"block"``, its own RAM (block RAM the bitstream initialises),
    or ``"flash"``, a RAM outside on the ``ram`` port, which it loads from the SPI flash on
    ``flash`` at power-on (``ControlCPU``'s; on the iCEBreaker the SPRAM block the core's delay
    slots leave most of, ``spram.SharedSpram``).

    The chip side (a ``Stepper``'s and an ``OutputBuffer``'s): ``inject`` (the step's input
    events), ``start`` (a step starts), ``core_busy`` and ``core_done`` (the chip's barrier, a
    pulse), ``spikes`` (the chip's output spikes); ``line_events``, the line's events
    (``LINE_COUNTERS``), as amounts to count.
    """

    def __init__(self, chipmap, *, hello, window=8, max_payload=protocol.MAX_PAYLOAD,
                 n_probes=1, probe_payload=256, input_depth=512, out_window=8,
                 resend_clocks=100_000, regions=None, ram_words=None, compressed=False,
                 ram="block"):
        self.chipmap = chipmap
        self.firmware, ram_words = link_firmware(
            chipmap, hello=hello, window=window, max_payload=max_payload, n_probes=n_probes,
            probe_payload=probe_payload, input_depth=input_depth, out_window=out_window,
            resend_clocks=resend_clocks, regions=regions, ram_words=ram_words,
            compressed=compressed)
        self.compressed = compressed
        self.ram_words = ram_words
        self.ram_kind = ram
        # ``ram="flash"``: the RAM outside, loaded from the flash (``ControlCPU``'s ports)
        outside = {"ram": Out(ram_bus(max(ram_words - 1, 1).bit_length())),
                   "flash": Out(flash_pins())} if ram == "flash" else {}
        super().__init__({
            **outside,
            **frame_ports(chipmap),
            **control_ports(stepper=False, probe_settings=False, out_seq=False,
                            counters=False),
            "inject": Out(stream.Signature(inject_layout(chipmap))), "start": Out(1),
            "core_busy": In(1), "core_done": In(1),
            "spikes": In(stream.Signature(host_spike_layout(chipmap.routes))),
            "line_events": In(data.StructLayout(dict.fromkeys(LINE_COUNTERS, 2))),
        })

    def elaborate(self, platform):  # noqa: C901 - one register window, read top to bottom
        m = Module()
        nw = _mem_words(self.chipmap)
        reg_bits = (len(REGISTERS) - 1 + nw - 1).bit_length()
        m.submodules.cpu = cpu = ControlCPU(self.firmware, ram_words=self.ram_words,
                                            reg_bits=reg_bits, compressed=self.compressed,
                                            ram=self.ram_kind)
        if self.ram_kind == "flash":
            wiring.connect(m, cpu.ram, wiring.flipped(self.ram))
            wiring.connect(m, cpu.flash, wiring.flipped(self.flash))
        addr, wdata = cpu.reg_addr, cpu.reg_w_data

        def wrote(name):
            return cpu.reg_w_en & (addr == _R[name])

        def control(name):
            """a store to CONTROL with ``name``'s bit set"""
            return wrote("CONTROL") & wdata.bit_select(CONTROL_BITS.index(name), 1)

        def slot(port, register, payload):
            """a one-entry slot: a store to ``register`` fills ``port`` with ``payload``"""
            with m.If(port.ready):
                m.d.sync += port.valid.eq(0)
            with m.If(wrote(register)):
                m.d.sync += [port.valid.eq(1), *payload]

        # received frames: the header stays until taken, payload bytes are popped by loads
        hp = self.header.payload
        m.d.comb += [self.header.ready.eq(wrote("RX_TAKE")),
                     self.payload.ready.eq(cpu.reg_r_en & (addr == _R["RX_BYTE"]))]

        # the reply and output frames, the input events: one-entry slots
        tx = self.tx_header.p
        slot(self.tx_header, "TX_HEADER",
             [tx.version.eq(protocol.VERSION), tx.seq.eq(wdata[:8]), tx.cmd.eq(wdata[8:16]),
              tx.length.eq(wdata[16:])])
        slot(self.tx_payload, "TX_BYTE", [self.tx_payload.payload.eq(wdata[:8])])
        slot(self.inject, "INJECT", [self.inject.payload.eq(wdata)])

        # CONTROL: pulses from registers (a clock after the store)
        m.d.sync += self.soft_reset.eq(control("RESET"))
        # the line's counters: 16 bits each, two a LINE register
        line = Signal(16 * len(LINE_COUNTERS))
        for k, name in enumerate(LINE_COUNTERS):
            count = line.word_select(k, 16)
            m.d.sync += count.eq(count + self.line_events[name])
        # the output spikes: a load of SPIKE takes the one waiting
        m.d.comb += self.spikes.ready.eq(cpu.reg_r_en & (addr == _R["SPIKE"]))
        sp = self.spikes.payload

        # the step timer: clocks since the last start (bit 32 sticks: a step of 2^32 clocks or
        # more). A step armed by ``START`` starts once ``PERIOD`` clocks have passed since the
        # previous one; ``reached`` is ``since >= period`` and ``past`` ``since > period``,
        # registered (from ``since + 1`` the clock before, as the ``Stepper``'s)
        since = Signal(33, init=1 << 32)
        period, busy_last = Signal(32), Signal(32)
        armed, ended, reached, past = Signal(), Signal(), Signal(), Signal()
        with m.If(~since[32]):
            m.d.sync += since.eq(since + 1)
        m.d.sync += [reached.eq(since + ~since[32] >= period), past.eq(reached)]
        m.d.comb += self.start.eq(armed & reached)
        with m.If(self.start):
            m.d.sync += [since.eq(1), armed.eq(0)]
        with m.If(self.core_done):
            m.d.sync += [ended.eq(1), busy_last.eq(since)]
        with m.If(control("START")):
            m.d.sync += [armed.eq(1), ended.eq(0)]
        with m.If(wrote("PERIOD")):
            m.d.sync += period.eq(wdata)
        running = Signal()                  # a run or a step under way (the firmware's)
        with m.If(wrote("RUNNING")):
            m.d.sync += running.eq(wdata[0])
        nonce, armed_nonce = Signal(32), Signal(init=1)
        with m.If(control("RESET")):
            m.d.sync += [armed.eq(0), ended.eq(0), since.eq(since.init), period.eq(0),
                         busy_last.eq(0), running.eq(0), armed_nonce.eq(1)]

        # at rest: the firmware found no frame waiting (it polls), and took none since
        at_rest = Signal()
        with m.If(cpu.reg_r_en & (addr == _R["RX_HEADER"]) & ~self.header.valid):
            m.d.sync += at_rest.eq(1)
        with m.If(wrote("RX_TAKE")):
            m.d.sync += at_rest.eq(0)
        m.d.comb += [self.idle.eq(at_rest & ~running & ~armed & ~self.header.valid
                                  & ~self.tx_header.valid & ~self.tx_payload.valid
                                  & ~self.inject.valid & ~self.spikes.valid),
                     self.wake.eq(1)]

        # the nonce: the counter at the first start bit after a reset
        with m.If(self.rx_start & armed_nonce):
            m.d.sync += [nonce.eq(self.counter), armed_nonce.eq(0)]

        # the chip's memory port: a request held until taken, a read's answer into ``data``
        data = Signal(32 * nw)
        busy = Signal()
        waiting = Signal()                  # a read's answer is still to come
        req = self.mem_req
        m.d.comb += [req.p.data.eq(data), self.mem_rsp.ready.eq(1)]
        with m.If(req.ready):
            m.d.sync += req.valid.eq(0)
        with m.If(wrote("MEM_ADDR")):
            m.d.sync += req.p.addr.eq(wdata)
        with m.If(wrote("MEM_GO")):
            m.d.sync += [req.valid.eq(1), req.p.write.eq(wdata[0]), busy.eq(1),
                         waiting.eq(~wdata[0])]
        with m.If(req.valid & req.ready & req.p.write):
            m.d.sync += busy.eq(0)
        with m.If(self.mem_rsp.valid & waiting):
            m.d.sync += [data.eq(self.mem_rsp.payload), busy.eq(0), waiting.eq(0)]
        for k in range(nw):
            with m.If(cpu.reg_w_en & (addr == _R["MEM_DATA"] + k)):
                m.d.sync += data.word_select(k, 32).eq(wdata)

        # loads: the word is registered (the window's contract: it comes a clock later)
        status = Cat(self.core_busy, ended, past, self.inject.valid)
        assert len(status) == len(STATUS_BITS)
        loads = {
            "RX_HEADER": Cat(hp.version, hp.seq, hp.cmd, Const(0, 7), self.header.valid),
            "RX_LENGTH": hp.length,
            "RX_BYTE": Cat(self.payload.payload, self.payload.valid),
            "TX_STATUS": Cat(self.tx_header.valid, self.tx_payload.valid),
            "MEM_STATUS": busy, "NONCE": nonce, "CONTROL": status,
            "LINE0": line[:32], "LINE1": line[32:],
            "CORE_STEP": self.core_step, "BUSY_LAST": busy_last, "COUNTER": self.counter,
            "SPIKE": Cat(sp.neuron, Const(0, 16 - len(sp.neuron)), sp.core,
                         Const(0, 15 - len(sp.core)), self.spikes.valid),
        }
        with m.If(cpu.reg_r_en):
            with m.Switch(addr):
                for name, value in loads.items():
                    with m.Case(_R[name]):
                        m.d.sync += cpu.reg_r_data.eq(value)
                for k in range(nw):
                    with m.Case(_R["MEM_DATA"] + k):
                        m.d.sync += cpu.reg_r_data.eq(data.word_select(k, 32))
        return m
