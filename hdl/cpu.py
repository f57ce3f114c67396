"""A small control processor: SERV, its RAM, and a window of registers.

``ControlCPU`` is the way proposed for a link that fits the iCE40UP5K (``docs/boards.md``, "What
blocks each goal"): the control plane of the protocol as firmware, the byte-rate work (UART,
COBS, CRC) in hardware around it. The processor is SERV (olofk/serv, from PyPI as
``pythondata-cpu-serv``), the bit-serial RV32I core: about 220 LUT4 and one block RAM (its
register file) on the UP5K, 36 clocks an instruction for most (``bench/link_cpu.py``).

Memory map (byte addresses, 32-bit words):

* ``0`` .. ``4 * ram_words - 1``: one RAM holding program, data and stack, its initial words the
  firmware (``spikeforge.hdl.firmware.build_firmware``); bytes written alone (``dbus_sel``).
  ``ram="block"``: the processor's own, block RAM initialised by the bitstream. ``ram="flash"``:
  a RAM outside on the ``ram`` port (``spram.ram_bus``; an iCE40 SPRAM block, which the
  bitstream cannot initialise: ``spram.SharedSpram``), which ``flashboot.FlashBoot`` loads with
  the firmware from the board's SPI flash (``flash``) while SERV waits in reset; ``booted``
  then rises.
* ``0x8000_0000 + 4 * k``: register ``k`` of the window (``k < 2 ** reg_bits``), the ``reg_*``
  ports: a store pulses ``reg_w_en`` for a clock with ``reg_addr`` and ``reg_w_data``; a load
  pulses ``reg_r_en`` with ``reg_addr``, and ``reg_r_data`` must hold the word the clock after
  (a register of the block that answers).

SERV's instruction and data buses take turns (it fetches, then executes), so one port serves
both: an access to its own RAM is acknowledged the clock after it is asked for, as SERV's own
small SoC (``servant``) does, one to a RAM outside when it says, and one to the window two
clocks after (the ``reg_*_en`` pulse comes from a flip-flop, a clock after the ask). No CSRs
and no interrupts: the firmware polls.
"""

from pathlib import Path

from amaranth.hdl import ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .flashboot import FLASH_OFFSET, FlashBoot, flash_pins
from .spram import ram_bus

__all__ = ["ControlCPU", "serv_sources", "WINDOW_BASE", "TB_MAIN"]

WINDOW_BASE = 0x8000_0000

# A C++ main for a Verilator test bench ``tb(clk, rst)`` of a ``ControlCPU``: reset for four
# clocks, then clocks until the bench calls ``$finish`` (exit 0) or 10^8 clocks pass (exit 3).
TB_MAIN = """
#include "Vtb.h"
#include "verilated.h"
int main(int argc, char **argv) {
  Verilated::commandArgs(argc, argv);
  Vtb *t = new Vtb;
  t->rst = 1;
  for (long i = 0; i < 100000000L && !Verilated::gotFinish(); i++) {
    if (i == 4) t->rst = 0;
    t->clk = 0; t->eval(); t->clk = 1; t->eval();
  }
  int ok = Verilated::gotFinish();
  delete t;
  return ok ? 0 : 3;
}
"""


def serv_sources():
    """SERV's Verilog as ``{file name: text}`` (the ``pythondata-cpu-serv`` package): what a
    simulator or a synthesis run of a design with a ``ControlCPU`` needs beside it."""
    try:
        import pythondata_cpu_serv
    except ImportError as e:
        raise RuntimeError("SERV's Verilog is not installed: pip install "
                           "'pythondata-cpu-serv>=1.2,<2'") from e
    rtl = Path(pythondata_cpu_serv.data_location) / "rtl"
    return {path.name: path.read_text() for path in sorted(rtl.glob("serv_*.v"))
            if path.name != "serv_synth_wrapper.v"}


class ControlCPU(wiring.Component):
    """SERV running ``firmware`` (32-bit words) from a RAM of ``ram_words`` words; a window of
    ``2 ** reg_bits`` registers on the ``reg_*`` ports. ``compressed``: SERV decodes the
    compressed instructions (RV32IC; its ``COMPRESSED`` and ``ALIGN``), for a firmware built
    with ``build_firmware(..., compressed=True)``, about a quarter smaller."""

    def __init__(self, firmware, *, ram_words=1024, reg_bits=4, compressed=False,
                 ram="block", flash_offset=FLASH_OFFSET):
        firmware = list(firmware)
        if len(firmware) > ram_words:
            raise ValueError(f"firmware of {len(firmware)} words is larger than the RAM of "
                             f"{ram_words} words")
        self.firmware = firmware
        self.ram_words = ram_words
        self.reg_bits = reg_bits
        self.compressed = compressed
        if ram not in ("block", "flash"):
            raise ValueError(f"ram must be 'block' or 'flash', not {ram!r}")
        self.ram_kind = ram
        self.flash_offset = flash_offset
        members = {
            "reg_addr": Out(reg_bits), "reg_w_data": Out(32), "reg_w_en": Out(1),
            "reg_r_en": Out(1), "reg_r_data": In(32),
        }
        if ram == "flash":
            members |= {"ram": Out(ram_bus(max(ram_words - 1, 1).bit_length())),
                        "flash": Out(flash_pins()), "booted": Out(1)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        if hasattr(platform, "add_file"):
            # a bitstream build (an Amaranth platform): SERV's Verilog goes to Yosys with the
            # design (a simulator's build adds ``serv_sources()`` itself)
            for name, text in serv_sources().items():
                platform.add_file(name, text)
        ibus_adr, ibus_cyc = Signal(32), Signal()
        dbus_adr, dbus_dat, dbus_sel = Signal(32), Signal(32), Signal(4)
        dbus_we, dbus_cyc = Signal(), Signal()
        rdt, ack = Signal(32), Signal()
        flash = self.ram_kind == "flash"
        rst = ResetSignal()
        if flash:
            # SERV waits in reset while its RAM is loaded, which then has the boot's writes;
            # the whole RAM (``flashboot.flash_data``): the netlist does not depend on the
            # firmware's length
            m.submodules.boot = boot = FlashBoot(self.ram_words, offset=self.flash_offset)
            wiring.connect(m, wiring.flipped(self.flash), boot.flash)
            # registered: the boot's state reaches SERV's reset (which gates its bus outputs)
            # and the RAM's mux from a flip-flop (the iCEBreaker's critical path at 30 MHz ran
            # from the boot's state through SERV's ``ibus_cyc`` to the window's enables)
            booted = Signal()
            m.d.sync += booted.eq(boot.done)
            rst = rst | ~booted
            m.d.comb += self.booted.eq(booted)
        m.submodules.serv = Instance(
            "serv_rf_top",
            p_RESET_PC=0, p_WITH_CSR=0, p_RESET_STRATEGY="MINI",
            p_COMPRESSED=int(self.compressed), p_ALIGN=int(self.compressed),
            i_clk=ClockSignal(),
            i_i_rst=rst,
            i_i_timer_irq=Const(0, 1),
            o_o_ibus_adr=ibus_adr, o_o_ibus_cyc=ibus_cyc,
            i_i_ibus_rdt=rdt, i_i_ibus_ack=ack & ibus_cyc,
            o_o_dbus_adr=dbus_adr, o_o_dbus_dat=dbus_dat, o_o_dbus_sel=dbus_sel,
            o_o_dbus_we=dbus_we, o_o_dbus_cyc=dbus_cyc,
            i_i_dbus_rdt=rdt, i_i_dbus_ack=ack & ~ibus_cyc,
            i_i_ext_rd=Const(0, 32), i_i_ext_ready=Const(0, 1))

        # one port for both buses (they take turns): the RAM's access (of its own) is
        # acknowledged a clock later, the outside RAM's when it says; the window's is issued
        # a clock after it is asked for (``issued``: the ``reg_*_en`` pulses come from a
        # flip-flop, not through SERV's bus outputs and the address decode) and acknowledged
        # the clock after that
        cyc = ibus_cyc | dbus_cyc
        adr = Mux(ibus_cyc, ibus_adr, dbus_adr)
        we = dbus_we & ~ibus_cyc
        window = adr[31]
        ab = max((self.ram_words - 1).bit_length(), 1)
        issued, took = Signal(), Signal()       # the window's access: issued, acknowledged
        m.d.sync += [issued.eq(cyc & window & ~issued & ~took), took.eq(issued)]
        # its register and direction as they were at the ask (SERV holds them): the window's
        # decode starts from flip-flops too
        reg_addr, reg_we = Signal(self.reg_bits), Signal()
        m.d.sync += [reg_addr.eq(adr[2:2 + self.reg_bits]), reg_we.eq(we)]
        if flash:
            ram = self.ram
            with m.If(booted):
                m.d.comb += [ram.addr.eq(adr[2:2 + ab]), ram.we.eq(we),
                             ram.w_data.eq(dbus_dat), ram.sel.eq(dbus_sel),
                             ram.stb.eq(cyc & ~window)]
            with m.Else():
                m.d.comb += [ram.addr.eq(boot.ram.addr), ram.we.eq(boot.ram.we),
                             ram.w_data.eq(boot.ram.w_data), ram.sel.eq(boot.ram.sel),
                             ram.stb.eq(boot.ram.stb)]
            m.d.comb += [ack.eq(took | ram.ack), boot.ram.ack.eq(ram.ack)]
            ram_data = ram.r_data
        else:
            stb = cyc & ~window & ~ack          # the clock a RAM access is asked for
            ram_ack = Signal()
            m.d.sync += ram_ack.eq(stb)
            m.d.comb += ack.eq(ram_ack | took)
            m.submodules.ram = ram = memory.Memory(shape=unsigned(32), depth=self.ram_words,
                                                   init=self.firmware)
            rp = ram.read_port()
            wp = ram.write_port(granularity=8)
            m.d.comb += [rp.addr.eq(adr[2:2 + ab]), rp.en.eq(stb),
                         wp.addr.eq(adr[2:2 + ab]), wp.data.eq(dbus_dat),
                         wp.en.eq(Mux(stb & we, dbus_sel, 0))]
            ram_data = rp.data

        # SERV holds the address and the data of an access until it is acknowledged
        m.d.comb += [self.reg_addr.eq(reg_addr),
                     self.reg_w_data.eq(dbus_dat),
                     self.reg_w_en.eq(issued & reg_we),
                     self.reg_r_en.eq(issued & ~reg_we),
                     rdt.eq(Mux(took, self.reg_r_data, ram_data))]
        return m

