"""The link's control as firmware: a ``ControlCPU`` running ``firmware/link.c`` (the command
processor), ``firmware/stepper.c`` (the stepper), ``firmware/outbuf.c`` (the output buffer),
``firmware/frames.c`` (the framing) and ``firmware/board.c`` (the probes, the loop).

``FirmwareProcessor`` takes the UART's bytes and gives it bytes to send (no ``Deframer`` and no
``Framer``: the firmware frames, ``firmware/frames.c``) and has the chip's memory port
(``link.memory_ports``); in place of an ``AckFilter``, a ``Stepper``, a ``ProbeEngine``, an
``OutputBuffer``, a ``FrameMux`` and a ``StatsBank`` it drives the chip, takes its output
spikes and keeps the STATUS counters itself: the SoC takes either link
(``SocPreset.link_kind``), and both carry out every command alike. It is the link that fits
the iCE40UP5K (``docs/boards.md``): a bit-serial processor and a register window in place of
those blocks' thousands of logic cells.

The firmware reaches the SoC through the processor's register window (``REGISTERS``, shared
with the C as ``registers.h``):

* the line: ``RX_BYTE`` pops the receive FIFO (``rx_fifo_bytes``: ``window`` largest frames
  and an OUT_ACK for each output frame; bits 0-7 the byte, ``RX_LOST`` set when a byte before
  it was lost, by the UART or to a full FIFO, ``RX_VALID`` set when a byte came); ``TX_BYTE``
  pushes a byte into the transmit FIFO (``TX_FIFO_BYTES``), whose level (bytes in it)
  ``TX_STATUS`` gives;
* ``CRC``: the protocol's CRC-32 register (``framing.CRCRegister``; a store sets it), which
  takes a byte a store of ``CRC_BYTE``: the frames' CRCs, REGION_CRC's;
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
* ``LINE``: the line's event counters (``LINE_COUNTERS``: UART errors, overruns), 16 bits
  each, counting on from power-on; the firmware adds what they moved by to its own 32-bit
  counters (it counts the others, CRC and frame errors among them, itself);
* ``NONCE``: the free-running counter as it was at the first start bit on the line after a
  reset (power-on or RESET), as the hardware processor takes it.

What must be exact to the clock stays in hardware: the step timer (a step starts
``PERIOD`` clocks after the previous start, once the firmware has armed it with ``START``
and fed the step's input) and the busy clocks, latched at the barrier.

The processor polls: its ``wake`` is always high (the clock gating of the virtual board saves
nothing while it runs), and it is ``idle`` while it waits for bytes (a load of ``RX_BYTE``
found none) with nothing to send and no step under way. So the firmware loads ``RX_BYTE``
only when it has no whole frame waiting to be carried out.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge import protocol

from .chip import inject_layout
from .cpu import ControlCPU
from .firmware import SOURCES, build_firmware, firmware_ram_words, link_config_header, link_sources
from .flashboot import flash_pins
from .framing import CRCRegister
from .link import CLEARED_COUNTERS, STATUS_COUNTERS, control_ports, memory_ports
from .outbuf import output_sizes
from .router import host_spike_layout
from .spram import ram_bus

__all__ = ["FirmwareProcessor", "link_firmware", "REGISTERS", "CONTROL_BITS", "STATUS_BITS",
           "LINE_COUNTERS", "TX_FIFO_BYTES", "rx_fifo_bytes", "registers_header", "soc_header"]

# the register window, in order (``R_<NAME>`` in ``registers.h``); ``MEM_DATA`` is last: the
# chip's data word takes as many registers as it has 32-bit words
REGISTERS = ("RX_BYTE", "TX_BYTE", "TX_STATUS", "CRC", "CRC_BYTE", "MEM_ADDR", "MEM_GO",
             "MEM_STATUS", "NONCE", "CONTROL", "PERIOD", "INJECT", "RUNNING", "SPIKE", "COUNTER",
             "LINE", "CORE_STEP", "BUSY_LAST", "MEM_DATA")
_R = {name: k for k, name in enumerate(REGISTERS)}
# a store to CONTROL: pulses (``C_<NAME>``)
CONTROL_BITS = ("START", "RESET")
_C = {name: 1 << k for k, name in enumerate(CONTROL_BITS)}
# a load of CONTROL (``S_<NAME>``)
STATUS_BITS = ("CORE_BUSY", "ENDED", "PAST", "INJECT_FULL")
_S = {name: 1 << k for k, name in enumerate(STATUS_BITS)}
# the line's counters the window keeps (16 bits each, in LINE); the firmware counts the rest
LINE_COUNTERS = ("uart_errors", "overruns")
assert set(LINE_COUNTERS) <= set(STATUS_COUNTERS[:CLEARED_COUNTERS])
# RX_BYTE's flags above the byte
_RX_LOST, _RX_VALID = 1 << 8, 1 << 9
# the transmit FIFO: one iCE40 block RAM (the firmware pushes a COBS block, 255 bytes, at once)
TX_FIFO_BYTES = 512


def rx_fifo_bytes(window, max_payload, out_window):
    """The receive FIFO's bytes: ``window`` largest frames on the wire (a client waits for a
    reply before it sends more) and an OUT_ACK for each of ``out_window`` output frames, in
    whole 256-entry block RAMs (an iCE40's 9-bit wide mode)."""
    largest = max_payload + protocol.frame_overhead(max_payload)
    need = window * largest + out_window * (1 + protocol.frame_overhead(1))
    return -(-need // 256) * 256


# words: a 32-bit RAM on an iCE40 grows by two 256 x 16 block RAMs side by side (1 KB)
_RAM_STEP = 256


def _mem_words(chipmap):
    return -(-chipmap.data_bits // 32)


def registers_header(chipmap):
    """``registers.h``: the window (``REG(k)``), its register numbers, ``CONTROL``'s bits,
    ``RX_BYTE``'s flags, the transmit FIFO's bytes, the chip's address fields, the event
    counters (``EV_<NAME>``, STATUS's order; the first ``N_KEPT_COUNTERS`` the line's, which
    RESET keeps) and where each goes in the STATUS reply."""
    routes, mm = chipmap.routes, chipmap.memmaps[0]
    status = protocol.REPLY[protocol.Command.STATUS].offsets()
    lines = ["/* generated by spikeforge.hdl.firmware_link */", "#pragma once",
             "#define REG(k) (*(volatile uint32_t *)(0x80000000u + 4u * (k)))"]
    lines += [f"#define R_{name} {k}" for name, k in _R.items()]
    lines += [f"#define C_{name} {bit}u" for name, bit in _C.items()]
    lines += [f"#define S_{name} {bit}u" for name, bit in _S.items()]
    lines += [f"#define RX_LOST {_RX_LOST}u", f"#define RX_VALID {_RX_VALID}u",
              f"#define TX_FIFO_BYTES {TX_FIFO_BYTES}u",
              f"#define R_MEM_WORDS {_mem_words(chipmap)}",
              f"#define LINK_LOCAL_BITS {chipmap.local_bits}",
              f"#define LINK_ENTRY_BITS {routes.entry_bits}",
              f"#define LINK_INDEX_BITS {mm.index_bits}",
              f"#define N_COUNTERS {len(STATUS_COUNTERS)}",
              f"#define N_KEPT_COUNTERS {CLEARED_COUNTERS}",
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
                                for name in ("board.h", "board.c", "frames.c", "stepper.c",
                                               "outbuf.c")}}
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
    slots leave most of, ``spram.SharedSpram``). ``rx_fifo``: the receive FIFO's bytes
    (default ``rx_fifo_bytes``: enough for a client that keeps to the window).

    The line: ``rx``, the UART's received bytes (always taken: a byte the receive FIFO has
    no room for is lost, and counted as an overrun), ``rx_error`` and ``rx_overrun``, the
    UART's pulses when it lost one; ``tx``, the bytes to send. The chip side (a ``Stepper``'s
    and an ``OutputBuffer``'s): ``inject`` (the step's input events), ``start`` (a step
    starts), ``core_busy`` and ``core_done`` (the chip's barrier, a pulse), ``spikes`` (the
    chip's output spikes).
    """

    def __init__(self, chipmap, *, hello, window=8, max_payload=protocol.MAX_PAYLOAD,
                 n_probes=1, probe_payload=256, input_depth=512, out_window=8,
                 resend_clocks=100_000, regions=None, ram_words=None, compressed=False,
                 ram="block", rx_fifo=None):
        self.chipmap = chipmap
        self.firmware, ram_words = link_firmware(
            chipmap, hello=hello, window=window, max_payload=max_payload, n_probes=n_probes,
            probe_payload=probe_payload, input_depth=input_depth, out_window=out_window,
            resend_clocks=resend_clocks, regions=regions, ram_words=ram_words,
            compressed=compressed)
        self.compressed = compressed
        self.ram_words = ram_words
        self.rx_fifo_bytes = rx_fifo or rx_fifo_bytes(window, max_payload, out_window)
        self.ram_kind = ram
        # ``ram="flash"``: the RAM outside, loaded from the flash (``ControlCPU``'s ports)
        outside = {"ram": Out(ram_bus(max(ram_words - 1, 1).bit_length())),
                   "flash": Out(flash_pins())} if ram == "flash" else {}
        super().__init__({
            **outside,
            "rx": In(stream.Signature(8)), "rx_error": In(1), "rx_overrun": In(1),
            "tx": Out(stream.Signature(8)),
            **memory_ports(chipmap),
            **control_ports(stepper=False, probe_settings=False, out_seq=False,
                            counters=False),
            "inject": Out(stream.Signature(inject_layout(chipmap))), "start": Out(1),
            "core_busy": In(1), "core_done": In(1),
            "spikes": In(stream.Signature(host_spike_layout(chipmap.routes))),
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

        # the line: a receive FIFO the UART's bytes go into (a byte lost, by the UART or to a
        # full FIFO, flags the next one in), popped a byte a load of RX_BYTE; a transmit FIFO
        # filled a byte a store of TX_BYTE
        m.submodules.rx_fifo = rxf = fifo.SyncFIFOBuffered(width=9, depth=self.rx_fifo_bytes)
        m.submodules.tx_fifo = txf = fifo.SyncFIFOBuffered(width=8, depth=TX_FIFO_BYTES)
        lost = Signal()
        dropped = self.rx.valid & ~rxf.w_rdy
        m.d.comb += [self.rx.ready.eq(1), rxf.w_en.eq(self.rx.valid),
                     rxf.w_data.eq(Cat(self.rx.payload, lost)),
                     rxf.r_en.eq(cpu.reg_r_en & (addr == _R["RX_BYTE"])),
                     txf.w_en.eq(wrote("TX_BYTE")), txf.w_data.eq(wdata[:8])]
        wiring.connect(m, txf.r_stream, wiring.flipped(self.tx))
        with m.If(rxf.w_en & rxf.w_rdy):
            m.d.sync += lost.eq(0)
        with m.If(self.rx_error | self.rx_overrun | dropped):
            m.d.sync += lost.eq(1)

        # the CRC register: set by a store of CRC, a byte a store of CRC_BYTE
        m.submodules.crc = crc = CRCRegister()
        m.d.comb += [crc.load.eq(wrote("CRC")), crc.value.eq(wdata),
                     crc.feed.eq(wrote("CRC_BYTE")), crc.byte.eq(wdata[:8])]

        # the input events: a one-entry slot
        slot(self.inject, "INJECT", [self.inject.payload.eq(wdata)])

        # CONTROL: pulses from registers (a clock after the store)
        m.d.sync += self.soft_reset.eq(control("RESET"))
        # the line's counters: 16 bits each, in LINE (a byte the receive FIFO had no room
        # for is an overrun, as one the UART's had none for)
        line = Signal(16 * len(LINE_COUNTERS))
        events = {"uart_errors": self.rx_error, "overruns": self.rx_overrun | dropped}
        for k, name in enumerate(LINE_COUNTERS):
            count = line.word_select(k, 16)
            with m.If(events[name]):
                m.d.sync += count.eq(count + 1)
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

        # at rest: the firmware found no byte waiting (it polls), and took none since
        at_rest = Signal()
        with m.If(rxf.r_en):
            m.d.sync += at_rest.eq(~rxf.r_rdy)
        m.d.comb += [self.idle.eq(at_rest & ~running & ~armed & ~self.rx.valid
                                  & (rxf.level == 0) & (txf.level == 0)
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
        assert _RX_LOST == 1 << 8 and _RX_VALID == 1 << 9
        loads = {
            "RX_BYTE": Cat(rxf.r_data, rxf.r_rdy),
            "TX_STATUS": txf.level, "CRC": crc.crc,
            "MEM_STATUS": busy, "NONCE": nonce, "CONTROL": status,
            "LINE": line,
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
