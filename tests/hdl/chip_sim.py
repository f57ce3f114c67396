"""Run a whole ``Chip`` under Verilator from a command file: no Python on the clock.

As ``coresim.py`` does for one core, a small Verilog *player* wraps the chip and executes one
command per line at up to one per clock: memory-port writes and reads (chip addresses), external
events (``inject``), whole steps (``start`` .. ``done``), marks, and a back-pressure mode for
``host_out`` and ``link_out`` (a pseudo-random ``ready``). It logs every read response (``R``),
host spike (``H``), link event (``L``), the clock of each step at which the last core went idle
(``C``: the busiest core's own step time, since a core's output is never held back), the routed
events delivered into the cores with the clocks of the first and the last (``E``) and the step
length (``D``). ``ChipSim`` builds the model once per (configs, limits, fifo depth).
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from coresim import _strip_zero_init

from spikeforge.hdl.chip import Chip
from spikeforge.routing import INDEX
from spikeforge.toolchain import build_root, build_verilator, run_cocotb

__all__ = ["ChipProgram", "ChipSim", "ChipResult", "ChipSegment"]

HERE = Path(__file__).resolve().parent

_PLAYER = """
`timescale 1ns / 1ps
module player(output reg finished /*verilator public_flat_rw*/);
  reg clk = 0, rst = 1;
  always #5 clk = ~clk;
  initial #30 rst = 0;
  localparam AW = {aw}, DW = {dw}, IW = {iw}, HW = {hw}, LW = {lw}, K = {k};
  reg [7:0] op;
  reg [AW-1:0] addr;
  reg [DW-1:0] data;
  reg have, started, bp_mode;
  reg [31:0] cycles, core_end, lfsr, ev_count, ev_first, ev_last;
  reg [7:0] outstanding;
  reg [7:0] f_op;
  reg [AW-1:0] f_addr;
  reg [DW-1:0] f_data;
  integer fd, ofd, rc;
  string cmd_name, out_name;
  reg complete;

  wire req_valid = have && (op == 0 || op == 1);
  wire req_ready, rsp_valid, inj_ready, host_valid, link_valid, busy, done;
  wire [DW-1:0] rsp_data;
  wire [HW-1:0] host_data;
  wire [LW-1:0] link_data;
  wire [31:0] step;
  wire [K-1:0] core_busy, routed;
  wire inj_valid = have && op == 2;
  wire start = have && op == 3 && !started;
  wire out_ready = !bp_mode || lfsr[0];

  chip dut(
    .clk(clk), .rst(rst),
    .mem_req__valid(req_valid), .mem_req__ready(req_ready),
    .mem_req__payload({{data, op == 0, addr}}),
    .mem_rsp__valid(rsp_valid), .mem_rsp__ready(1'b1), .mem_rsp__payload(rsp_data),
    .inject__valid(inj_valid), .inject__ready(inj_ready), .inject__payload(addr[IW-1:0]),
    .host_out__valid(host_valid), .host_out__ready(out_ready), .host_out__payload(host_data),
    .link_out__valid(link_valid), .link_out__ready(out_ready), .link_out__payload(link_data),
    .start(start), .busy(busy), .done(done), .step(step), .core_busy(core_busy),
    .routed(routed));

  initial begin
    if (!$value$plusargs("cmd=%s", cmd_name)) $fatal(1, "no +cmd=");
    if (!$value$plusargs("out=%s", out_name)) $fatal(1, "no +out=");
    fd = $fopen(cmd_name, "r");
    ofd = $fopen(out_name, "w");
    have = 0; started = 0; finished = 0; bp_mode = 0; cycles = 0; core_end = 0; lfsr = 32'h1;
    ev_count = 0; ev_first = 0; ev_last = 0; outstanding = 0;
  end

  always @(posedge clk) begin
    if (!rst && !finished) begin
      lfsr <= {{lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]}};
      if (rsp_valid) $fwrite(ofd, "R %h\\n", rsp_data);
      if (host_valid && out_ready) $fwrite(ofd, "H %h\\n", host_data);
      if (link_valid && out_ready) $fwrite(ofd, "L %h\\n", link_data);
      if (started) cycles <= cycles + 1;
      outstanding <= outstanding + (req_valid && req_ready && op == 1) - rsp_valid;
      if (started && core_busy != 0) core_end <= cycles + 1;
      if (started && routed != 0) begin
        ev_count <= ev_count + $countones(routed);
        if (ev_count == 0) ev_first <= cycles;
        ev_last <= cycles;
      end
      complete = 0;
      if (!have) complete = 1;
      else case (op)
        0, 1: complete = req_ready;
        2: complete = inj_ready;
        3: if (!started) begin
             started <= 1; cycles <= 1; core_end <= 0; ev_count <= 0; ev_first <= 0;
             ev_last <= 0;
           end else if (done) begin
             $fwrite(ofd, "E %h %h %h\\nC %h\\nD %h\\n", ev_count, ev_first, ev_last, core_end,
                     cycles);
             started <= 0; complete = 1;
           end
        // a mark and the end wait for the responses of the reads before them
        4: if (outstanding == {{7'd0, rsp_valid}}) begin
             $fwrite(ofd, "M %h\\n", data); complete = 1;
           end
        5: begin bp_mode <= data[0]; complete = 1; end
        default: if (outstanding == {{7'd0, rsp_valid}}) begin
                   $fclose(ofd); finished <= 1;
                 end
      endcase
      if (complete) begin
        rc = $fscanf(fd, "%h %h %h\\n", f_op, f_addr, f_data);
        if (rc == 3) begin op <= f_op; addr <= f_addr; data <= f_data; have <= 1; end
        else begin op <= 6; have <= 1; end
      end
    end
  end
endmodule
"""


class ChipProgram:
    """A command file for the chip player, built in memory."""

    def __init__(self, chipmap):
        self.chipmap = chipmap
        self.lines = []

    def write(self, addrs, words):
        self.lines.extend(f"0 {int(a):x} {int(w):x}" for a, w in zip(addrs, words, strict=True))

    def read(self, addrs):
        self.lines.extend(f"1 {int(a):x} 0" for a in addrs)

    def inject(self, core, axons):
        shift = self.chipmap.routes.axon_bits
        self.lines.extend(f"2 {(core << shift) | int(a):x} 0" for a in axons)

    def step(self):
        self.lines.append("3 0 0")

    def mark(self, value):
        self.lines.append(f"4 0 {int(value):x}")

    def backpressure(self, on):
        self.lines.append(f"5 0 {int(bool(on))}")

    def load(self, chip):
        self.write(*self.chipmap.chip_writes(chip))

    def clear_tables(self):
        """Write every index entry to 0: no destination, no host flag."""
        for c, config in enumerate(self.chipmap.configs):
            addrs = self.chipmap.table_address(c, INDEX, np.arange(config.n_neurons))
            self.write(addrs.tolist(), [0] * config.n_neurons)

    def text(self):
        return "\n".join([*self.lines, "6 0 0", ""])


@dataclass
class ChipSegment:
    """Output after one mark: per step the host spikes ``(step, core, neuron)`` rows, link
    events ``(core, axon)`` rows, the busiest core's clocks and the step's clocks; and the read
    words, grouped by the steps between them."""
    mark: int
    host: list = field(default_factory=list)
    link: list = field(default_factory=list)
    events: list = field(default_factory=list)     # (count, first clock, last clock) per step
    core_cycles: list = field(default_factory=list)
    cycles: list = field(default_factory=list)
    reads: list = field(default_factory=list)


class ChipResult:
    """The player's output file, split into ``ChipSegment``s by mark."""

    def __init__(self, text, chipmap):
        lay = chipmap.routes
        nb, cb, ab = lay.neuron_bits, lay.core_bits, lay.axon_bits
        self.segments = []
        seg = ChipSegment(mark=-1)
        reads, host, link, core_end, events = [], [], [], 0, (0, 0, 0)

        def flush_reads():
            nonlocal reads
            if reads:
                seg.reads.append(reads)
                reads = []

        for line in text.split("\n"):
            if not line:
                continue
            kind = line[0]
            if kind == "E":
                events = tuple(int(v, 16) for v in line[2:].split())
                continue
            value = int(line[2:], 16)
            if kind == "R":
                reads.append(value)
            elif kind == "H":
                host.append((value >> (nb + cb), (value >> nb) & ((1 << cb) - 1),
                             value & ((1 << nb) - 1)))
            elif kind == "L":
                link.append((value >> ab, value & ((1 << ab) - 1)))
            elif kind == "C":
                core_end = value
            elif kind == "D":
                flush_reads()
                seg.host.append(np.array(host, dtype=np.int64).reshape(-1, 3))
                seg.link.append(np.array(link, dtype=np.int64).reshape(-1, 2))
                seg.core_cycles.append(core_end)
                seg.events.append(events)
                seg.cycles.append(value)
                host, link = [], []
            elif kind == "M":
                flush_reads()
                if seg.mark >= 0 or seg.cycles or seg.reads:
                    self.segments.append(seg)
                seg = ChipSegment(mark=value)
        flush_reads()
        self.segments.append(seg)

    def by_mark(self):
        return {s.mark: s for s in self.segments}


class ChipSim:
    """A chip built once under Verilator; ``run`` plays programs on it."""

    def __init__(self, configs, limits=None, fifo_depth=2):
        from amaranth.back import verilog

        chip = Chip(configs, limits, fifo_depth)
        self.chipmap = cm = chip.chipmap
        text = _strip_zero_init(verilog.convert(chip, name="chip"))
        lay = cm.routes
        player = _PLAYER.format(aw=cm.addr_bits, dw=cm.data_bits,
                                iw=lay.axon_bits + cm.node_bits,
                                hw=lay.neuron_bits + lay.core_bits + 32,
                                lw=lay.axon_bits + lay.core_bits, k=cm.n_cores)
        self.build_dir = build_verilator({"chip.v": text, "player.sv": player}, "player",
                                         public_flat=False,
                                         extra_args=("--timing", "-CFLAGS", "-fcoroutines",
                                                     "--x-initial", "0"))

    def program(self):
        return ChipProgram(self.chipmap)

    def run(self, program, name="chip", max_cycles=None):
        work = build_root() / "verilator-runs" / f"{name}-{uuid.uuid4().hex[:8]}"
        work.mkdir(parents=True)
        cmd, out = work / "cmd.txt", work / "out.txt"
        cmd.write_text(program.text())
        limit = max_cycles if max_cycles is not None else 50 * len(program.lines) + 10**7
        run_cocotb(self.build_dir, "player", "tb_player", HERE, work,
                   plusargs=[f"+cmd={cmd}", f"+out={out}"],
                   extra_env={"PLAYER_MAX_CYCLES": str(limit)})
        result = ChipResult(out.read_text(), self.chipmap)
        shutil.rmtree(work)               # read; a rerun makes the same texts again
        return result

