"""Run a core under Verilator from a command file: no Python on the clock.

A small Verilog *player* (generated here for each core configuration) wraps the Amaranth core.
It reads one command per line from a text file and drives the core's ports at one command per
clock when the core is ready: memory-port writes and reads, input events, whole timesteps
(``start`` .. ``done``), marks, and a back-pressure mode for the spike output. It writes every
read response (``R``), output spike (``S``), step length in clocks (``D``) and mark (``M``) to an
output file. The cocotb test (``tb_player.py``) only starts the clock, resets, and waits for the
player's ``finished`` flag, so whole runs of many seeds cost one Python wake-up. The player also
counts the clocks in which any synapse lane memory is asked to read and write at once (``C`` at
the end of the output): a single-port memory (SPRAM) must never see one.

``Program`` writes the command file; ``CoreSim`` builds the model once per configuration and runs
programs; ``Result`` splits the output by mark and step.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikeforge.hdl.core import Core
from spikeforge.hdl.dp16kd import DP16KD_MODEL
from spikeforge.hdl.small_core import SmallCore, slots_fit_spram
from spikeforge.hdl.spram import SPRAM_MODEL
from spikeforge.memmap import MemoryMap, Region
from spikeforge.toolchain import (
    VERILATOR_ARGS,
    build_binary,
    build_root,
    build_verilator,
    run_cocotb,
)

__all__ = ["Program", "CoreSim", "Result", "Segment", "core_verilog"]

HERE = Path(__file__).resolve().parent

OP_WRITE, OP_READ, OP_EVENT, OP_STEP, OP_MARK, OP_READY, OP_END = range(7)

# the player's header: under cocotb it makes its own clock and reset (Verilator's scheduler then
# runs every clock without a VPI call, and cocotb only waits for `finished`); as a stand-alone
# executable the C++ main (`_MAIN`) drives them
_HEAD_COCOTB = """
`timescale 1ns / 1ps
module player(output reg finished /*verilator public_flat_rw*/);
  reg clk = 0, rst = 1;
  always #5 clk = ~clk;
  initial #30 rst = 0;
"""
_HEAD_BINARY = """
module player(input clk, input rst, output reg finished);
"""

_MAIN = """
#include "Vplayer.h"
#include "verilated.h"
int main(int argc, char **argv) {
  VerilatedContext ctx;
  ctx.commandArgs(argc, argv);
  Vplayer top{&ctx};
  unsigned long limit = 0;
  const char *arg = ctx.commandArgsPlusMatch("max=");
  if (arg && *arg) limit = strtoul(arg + 5, nullptr, 10);
  top.rst = 1;
  unsigned long t = 0;
  for (; !ctx.gotFinish() && !top.finished && (!limit || t < limit); ++t) {
    top.clk = 0; top.eval();
    top.clk = 1; top.eval();
    if (t == 3) top.rst = 0;
  }
  top.final();
  return top.finished ? 0 : 3;
}
"""

_PLAYER = """
  localparam AW = {aw}, DW = {dw}, AB = {ab}, NB = {nb};
  reg [7:0] op;
  reg [AW-1:0] addr;
  reg [DW-1:0] data;
  reg have, started, rdy_mode;
  reg [31:0] cycles, lfsr;
  reg [7:0] f_op;
  reg [AW-1:0] f_addr;
  reg [DW-1:0] f_data;
  integer fd, ofd, rc;
  reg [31:0] conflicts;
  // clocks in which a synapse lane memory is asked to read and write (hierarchical names)
  wire both = {both};
  // clocks in which a block RAM of a small core is read and written at one address
  reg [31:0] collisions;
  wire collide = {collide};
  string cmd_name, out_name;
  reg complete;
  // read requests whose response has not been written yet (a response may come more than a
  // clock after its request: the player ends only after the last one)
  reg [7:0] outstanding;

  wire req_valid = have && (op == 0 || op == 1);
  wire req_ready, rsp_valid, so_valid, so_ready, ev_ready, busy, done;
  wire [DW-1:0] rsp_data;
  wire [NB-1:0] so_data;
  wire [31:0] step;
  wire ev_valid = have && op == 2;
  wire start = have && op == 3 && !started;
  assign so_ready = !rdy_mode || lfsr[0];

  core dut(
    .clk(clk), .rst(rst),
    .spike_in__valid(ev_valid), .spike_in__ready(ev_ready), .spike_in__payload(addr[AB-1:0]),
    .spike_out__valid(so_valid), .spike_out__ready(so_ready), .spike_out__payload(so_data),
    .mem_req__valid(req_valid), .mem_req__ready(req_ready),
    .mem_req__payload({{data, op == 0, addr}}),
    .mem_rsp__valid(rsp_valid), .mem_rsp__ready(1'b1), .mem_rsp__payload(rsp_data),
    .start(start), .busy(busy), .done(done), .step(step));

  initial begin
    if (!$value$plusargs("cmd=%s", cmd_name)) $fatal(1, "no +cmd=");
    if (!$value$plusargs("out=%s", out_name)) $fatal(1, "no +out=");
    fd = $fopen(cmd_name, "r");
    ofd = $fopen(out_name, "w");
    have = 0; started = 0; finished = 0; rdy_mode = 0; cycles = 0; lfsr = 32'h1;
    conflicts = 0; collisions = 0; outstanding = 0;
  end

  always @(posedge clk) begin
    if (!rst && !finished) begin
      lfsr <= {{lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]}};
      if (rsp_valid) $fwrite(ofd, "R %h\\n", rsp_data);
      if (so_valid && so_ready) $fwrite(ofd, "S %h\\n", so_data);
      if (started) cycles <= cycles + 1;
      if (both) conflicts <= conflicts + 1;
      if (collide) collisions <= collisions + 1;
      outstanding <= outstanding + (req_valid && req_ready && op == 1) - rsp_valid;
      complete = 0;
      if (!have) complete = 1;
      else case (op)
        0, 1: complete = req_ready;
        2: complete = ev_ready;
        3: if (!started) begin started <= 1; cycles <= 1; end
           else if (done) begin
             $fwrite(ofd, "D %h\\n", cycles); started <= 0; complete = 1;
           end
        4: if (outstanding == {{7'd0, rsp_valid}}) begin
             $fwrite(ofd, "M %h\\n", data); complete = 1;
           end
        5: begin rdy_mode <= data[0]; complete = 1; end
        default: if (outstanding == {{7'd0, rsp_valid}}) begin
                   $fwrite(ofd, "X %h\\n", collisions);
                   $fwrite(ofd, "C %h\\n", conflicts); $fclose(ofd); finished <= 1;
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


_ZERO_INIT = re.compile(r"\n *initial begin\n(?: *[\w\\$.]+\[\d+\] = \d+'[hdb]0+;\n)+ *end\n")


def _strip_zero_init(verilog_text):
    """Drop the all-zero ``initial`` blocks of memories (Verilator zero-initialises them with
    ``--x-initial 0``): on the large cores they hold most of the text and of the build time."""
    return _ZERO_INIT.sub("\n", verilog_text)


def core_verilog(config, synapse_memory="block", update_pipeline="long", small_ram_style=None,
                 kind="full"):
    """Verilog of ``Core(config, synapse_memory=..., update_pipeline=..., small_ram_style=...)``
    (``kind="small"``: ``SmallCore(config, synapse_memory=...)``), cached under the
    build folder by configuration and by the text of every module it is generated from
    (conversion of a 1024-neuron core takes ~15 s). With ``"spram"`` the SPRAM blocks are
    instances of ``SB_SPRAM256KA``: add ``SPRAM_MODEL`` to simulate them; with ``"dp16kd"``
    instances of ``DP16KD``: add ``DP16KD_MODEL``."""
    import amaranth

    from spikeforge import image, memmap
    from spikeforge.hdl import core, dp16kd, memory, prng, small_core, spram

    digest = hashlib.sha256(repr((config, synapse_memory, update_pipeline, small_ram_style,
                                  kind, amaranth.__version__)).encode())
    for module in (core, dp16kd, memory, prng, small_core, spram, image, memmap):
        digest.update(Path(module.__file__).read_bytes())
    path = build_root() / "verilog" / f"core-{digest.hexdigest()[:16]}.v"
    if not path.exists():
        from amaranth.back import verilog
        if kind == "small":
            core = SmallCore(config, synapse_memory=synapse_memory)
        else:
            core = Core(config, synapse_memory=synapse_memory, update_pipeline=update_pipeline,
                        small_ram_style=small_ram_style)
        text = _strip_zero_init(verilog.convert(core, name="core"))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.rename(path)
    return path.read_text()


class Program:
    """A command file for the player, built in memory (one command per line)."""

    def __init__(self, memmap):
        self.memmap = memmap
        self.lines = []
        self.n_reads = 0

    def write(self, addrs, words):
        self.lines.extend(f"0 {a:x} {w:x}" for a, w in zip(addrs, words, strict=True))

    def read(self, addrs):
        self.lines.extend(f"1 {a:x} 0" for a in addrs)
        self.n_reads += len(addrs)

    def events(self, axons):
        self.lines.extend(f"2 {int(a):x} 0" for a in axons)

    def step(self):
        self.lines.append("3 0 0")

    def mark(self, value):
        self.lines.append(f"4 0 {int(value):x}")

    def backpressure(self, on):
        self.lines.append(f"5 0 {int(bool(on))}")

    def load(self, image):
        """Write every word of ``image`` through the memory port."""
        self.write(*self.memmap.image_writes(image))

    def read_image(self, regions=None):
        """Read ``regions`` (default all) back; ``Segment.images`` decodes them."""
        self.read(self.memmap.read_addresses(regions))

    def text(self):
        return "\n".join([*self.lines, f"{OP_END} 0 0", ""])


@dataclass
class Segment:
    """Output between two marks: per step the spiking neurons and the clocks, and read words."""
    mark: int
    spikes: list = field(default_factory=list)    # list of int arrays, one per step
    cycles: list = field(default_factory=list)
    reads: list = field(default_factory=list)     # list of lists: words read between steps
    _pending: list = field(default_factory=list)

    def spike_vector(self, step, n_neurons):
        out = np.zeros(n_neurons, dtype=bool)
        out[self.spikes[step]] = True
        return out


class Result:
    """The player's output file, split into ``Segment``s by mark; ``conflicts``: the clocks in
    which a synapse lane memory was asked to read and write at once; ``collisions``: those in
    which a small core's block RAM was read and written at one address (``SmallCore``'s
    ``collision``)."""

    def __init__(self, text):
        self.segments = []
        self.conflicts = None
        self.collisions = None
        seg = Segment(mark=-1)
        pending_reads, pending_spikes = [], []
        for line in text.split("\n"):
            if not line:
                continue
            kind, value = line[0], int(line[2:], 16)
            if kind == "R":
                pending_reads.append(value)
            elif kind == "S":
                pending_spikes.append(value)
            elif kind == "D":
                if pending_reads:
                    seg.reads.append(pending_reads)
                    pending_reads = []
                seg.spikes.append(np.array(pending_spikes, dtype=np.int64))
                seg.cycles.append(value)
                pending_spikes = []
            elif kind == "C":
                self.conflicts = value
            elif kind == "X":
                self.collisions = value
            elif kind == "M":
                if pending_reads:
                    seg.reads.append(pending_reads)
                    pending_reads = []
                if seg.mark >= 0 or seg.spikes or seg.reads:
                    self.segments.append(seg)
                seg = Segment(mark=value)
        if pending_reads:
            seg.reads.append(pending_reads)
        self.segments.append(seg)

    def by_mark(self):
        return {s.mark: s for s in self.segments}


class CoreSim:
    """A core configuration built once under Verilator; ``run`` plays programs on it.

    ``synapse_memory`` is given to ``Core`` (``"block"``, ``"spram"`` or ``"dp16kd"``, the
    last two simulated with the behavioural models of ``SB_SPRAM256KA`` and ``DP16KD``).
    ``engine``: ``"binary"`` (a stand-alone executable whose C++ main drives the clock: no
    Python and no VPI during a run, several times faster) or ``"cocotb"`` (the same player
    under cocotb's Verilator runner, ``tb_player.py``).
    ``update_pipeline`` and ``small_ram_style`` are given to ``Core``; ``kind="small"`` builds
    ``SmallCore`` instead."""

    def __init__(self, config, synapse_memory="block", engine="binary", update_pipeline="long",
                 small_ram_style=None, kind="full"):
        if engine not in ("binary", "cocotb"):
            raise ValueError(f"engine must be 'binary' or 'cocotb', not {engine!r}")
        self.config = config
        self.synapse_memory = synapse_memory
        self.engine = engine
        self.memmap = MemoryMap(config)
        core_v = core_verilog(config, synapse_memory, update_pipeline, small_ram_style, kind)
        mm = self.memmap
        single = [f"syn{j}" for j in range(mm.lanes)]
        if (kind == "small" and synapse_memory == "spram"
                and slots_fit_spram(config, mm[Region.SYNAPSE].width)):
            single.append("slot")           # the small core's slots share the SPRAM scheme
        both = " || ".join(f"(dut.{name}.r_en && dut.{name}.w_en)" for name in single)
        head = _HEAD_BINARY if engine == "binary" else _HEAD_COCOTB
        player = head + _PLAYER.format(aw=mm.addr_bits, dw=mm.data_bits,
                                       ab=max(config.axon_bits, 1),
                                       nb=max(config.neuron_bits, 1), both=both,
                                       collide="dut.collision" if kind == "small" else "1'b0")
        sources = {"core.v": core_v, "player.sv": player}
        if synapse_memory == "spram":
            sources["sb_spram256ka.v"] = SPRAM_MODEL
        elif synapse_memory == "dp16kd":
            sources["dp16kd.v"] = DP16KD_MODEL
        if engine == "binary":
            sources["main.cpp"] = _MAIN
            self.exe = build_binary(sources, "player",
                                    ["-j", "2", *VERILATOR_ARGS, "--x-initial", "0"],
                                    subdir="verilator-core")
        else:
            self.build_dir = build_verilator(sources, "player", public_flat=False,
                                             extra_args=("--timing", "-CFLAGS", "-fcoroutines",
                                                         "--x-initial", "0"))

    def program(self):
        return Program(self.memmap)

    def run(self, program, name="run", max_cycles=None):
        """Run ``program``; return its ``Result``. ``max_cycles`` bounds the simulation."""
        work = build_root() / "verilator-runs" / f"{name}-{uuid.uuid4().hex[:8]}"
        work.mkdir(parents=True)
        cmd, out = work / "cmd.txt", work / "out.txt"
        cmd.write_text(program.text())
        limit = max_cycles if max_cycles is not None else 50 * len(program.lines) + 10**9
        if self.engine == "binary":
            run = subprocess.run([str(self.exe), f"+cmd={cmd}", f"+out={out}", f"+max={limit}"],
                                 cwd=work, capture_output=True, text=True)
            if run.returncode:
                raise RuntimeError(f"core player exited with {run.returncode} (3: not finished "
                                   f"within {limit} clocks) in {work}: {run.stderr[-2000:]}")
        else:
            run_cocotb(self.build_dir, "player", "tb_player", HERE, work,
                       plusargs=[f"+cmd={cmd}", f"+out={out}"],
                       extra_env={"PLAYER_MAX_CYCLES": str(limit)})
        result = Result(out.read_text())
        shutil.rmtree(work)               # read; a rerun makes the same texts again
        return result
