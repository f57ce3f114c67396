"""The whole receive and transmit path under Verilator, at the pin level, without Python per bit.

``Loopback`` wires UART receiver -> ``Deframer`` -> ``Framer`` -> UART transmitter, so every
valid frame comes back out. A Verilog player (generated here) is the independent line model: it
sends the bytes of an input file on ``rx`` with its own bit timer (a fractional bit period, so
the sender's baud may differ from the receiver's) and decodes ``tx`` mid-bit into an output
file, then writes the design's counters. A C++ main loop toggles the clock: the model is a
stand-alone Verilator executable, and no Python runs during a simulation.
"""

import os
import shutil
import subprocess
import time
import uuid

from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hdl.framing import Deframer, Framer
from spikeforge.hdl.uart import UARTReceiver, UARTTransmitter
from spikeforge.toolchain import VERILATOR_ARGS, build_binary, build_root

__all__ = ["Loopback", "LoopRun", "COUNTERS"]

COUNTERS = ("frames", "crc_errors", "frame_errors", "overflows", "uart_errors", "overruns")


class Loopback(wiring.Component):
    rx: In(1, init=1)
    tx: Out(1)
    frames: Out(32)
    crc_errors: Out(32)
    frame_errors: Out(32)
    overflows: Out(32)
    uart_errors: Out(32)
    overruns: Out(32)

    def __init__(self, clocks_per_bit, max_payload, buffer_bytes):
        self.cpb = clocks_per_bit
        self.max_payload = max_payload
        self.buffer_bytes = buffer_bytes
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.urx = urx = UARTReceiver(self.cpb)
        m.submodules.utx = utx = UARTTransmitter(self.cpb)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        self.path(m, urx, utx)
        with m.If(urx.error):
            m.d.sync += self.uart_errors.eq(self.uart_errors + 1)
        with m.If(urx.overrun):
            m.d.sync += self.overruns.eq(self.overruns + 1)
        return m

    def path(self, m, urx, utx):
        """From the UART's received bytes to the bytes it sends: a ``Deframer``, ``middle``
        and a ``Framer``, whose frames the counters count; a subclass may frame otherwise
        (its counters but the UART's then stay 0)."""
        m.submodules.deframer = deframer = Deframer(max_payload=self.max_payload,
                                                      buffer_bytes=self.buffer_bytes)
        m.submodules.framer = framer = Framer()
        m.d.comb += deframer.rx_error.eq(urx.error | urx.overrun)
        wiring.connect(m, urx.o, deframer.i)
        self.middle(m, deframer, framer)
        wiring.connect(m, framer.o, utx.i)
        for name, pulse in (("frames", deframer.frame), ("crc_errors", deframer.crc_error),
                            ("frame_errors", deframer.frame_error),
                            ("overflows", deframer.overflow)):
            counter = getattr(self, name)
            m.d.sync += counter.eq(counter + pulse)

    def middle(self, m, deframer, framer):
        """What sits between the deframer and the framer: nothing here (an echo); a
        subclass puts a command processor there."""
        wiring.connect(m, deframer.header, framer.header)
        wiring.connect(m, deframer.payload, framer.payload)


_PLAYER = """
module player(input wire clk, input wire rst, output reg finished);
  localparam CPB = {cpb};
  localparam [31:0] PERIOD = {period};   // the sender's bit time in 1/256 clocks
  reg rx;
  wire tx;
  wire [31:0] frames, crc_errors, frame_errors, overflows, uart_errors, overruns;
  loop dut(.clk(clk), .rst(rst), .rx(rx), .tx(tx), .frames(frames), .crc_errors(crc_errors),
           .frame_errors(frame_errors), .overflows(overflows), .uart_errors(uart_errors),
           .overruns(overruns));
  integer fd, ofd, rc;
  string in_name, out_name;
  reg [9:0] sh;
  reg [7:0] b, rsh;
  reg [31:0] acc, rcnt, idle;
  reg [3:0] left, rbits;
  reg sending, eof, rbusy;

  initial begin
    if (!$value$plusargs("in=%s", in_name)) $fatal(1, "no +in=");
    if (!$value$plusargs("out=%s", out_name)) $fatal(1, "no +out=");
    fd = $fopen(in_name, "r");
    ofd = $fopen(out_name, "w");
    rx = 1; finished = 0; sending = 0; eof = 0; rbusy = 0; acc = 0; idle = 0;
  end

  always @(posedge clk) begin
    if (!rst && !finished) begin
      // Sender: 8N1 with a fractional bit period.
      if (sending) begin
        acc = acc + 256;
        if (acc >= PERIOD) begin
          acc = acc - PERIOD; sh = {{1'b1, sh[9:1]}}; left = left - 1;
          if (left == 0) sending = 0;
        end
      end
      if (!sending && !eof) begin
        rc = $fscanf(fd, "%h\\n", b);
        if (rc == 1) begin sh = {{1'b1, b, 1'b0}}; left = 10; sending = 1; end
        else eof = 1;
      end
      rx <= sending ? sh[0] : 1'b1;
      // Receiver: a falling edge starts a byte; sample the middle of every bit.
      if (!rbusy) begin
        if (tx == 0) begin rbusy = 1; rcnt = CPB + CPB / 2 - 1; rbits = 0; end
      end else if (rcnt != 0) rcnt = rcnt - 1;
      else if (rbits < 8) begin rsh = {{tx, rsh[7:1]}}; rbits = rbits + 1; rcnt = CPB - 1; end
      else begin
        if (tx) $fwrite(ofd, "%02x\\n", rsh); else $fwrite(ofd, "E\\n");
        rbusy = 0;
      end
      idle = (sending || rbusy || !tx) ? 0 : idle + 1;
      if (eof && idle > {idle_limit}) begin
        $fwrite(ofd, "C %h %h %h %h %h %h\\n", frames, crc_errors, frame_errors, overflows,
                uart_errors, overruns);
        $fclose(ofd);
        finished <= 1;
        $finish;
      end
    end
  end
endmodule
"""

# The clock loop in C++: no Python and no timing scheduler between two edges.
_MAIN = """
#include "Vplayer.h"
#include "verilated.h"
int main(int argc, char **argv) {
  VerilatedContext ctx;
  ctx.commandArgs(argc, argv);
  Vplayer top{&ctx};
  top.rst = 1;
  for (unsigned long t = 0; !ctx.gotFinish(); ++t) {
    top.clk = 0; top.eval();
    top.clk = 1; top.eval();
    if (t == 3) top.rst = 0;
  }
  top.final();
  return 0;
}
"""


class LoopRun:
    """Builds the loopback model once per (clocks per bit, max payload, sender skew)."""

    def __init__(self, clocks_per_bit=4, max_payload=256, skew=0.0, buffer_factor=4, *,
                 top=None, idle_limit=None, sources=None):
        # An echo queues many short frames behind a long one being sent back (the command
        # processor of the SoC consumes faster), hence a ring of several largest frames.
        # ``top``: a ``Loopback`` (subclass) of one's own, ``sources`` the Verilog files it
        # needs beside it; ``idle_limit``: clocks of a quiet line after the last byte sent
        # that end the run.
        buffer_bytes = 1 << (buffer_factor * max_payload - 1).bit_length()
        if top is None:
            top = Loopback(clocks_per_bit, max_payload, buffer_bytes)
        design = verilog.convert(top, name="loop")
        player = _PLAYER.format(cpb=clocks_per_bit,
                                period=round(clocks_per_bit * 256 * (1 + skew)),
                                idle_limit=idle_limit or 40 * (max_payload + 20))
        self.cpb = clocks_per_bit
        self.exe = build_binary({**(sources or {}), "loop.v": design, "player.sv": player,
                                 "main.cpp": _MAIN}, "player", ["-j", "2", *VERILATOR_ARGS])

    def run(self, wire):
        """Send ``wire``; returns (bytes sent back on tx, counters dict, seconds)."""
        run_dir = build_root() / "linkloop" / uuid.uuid4().hex[:12]
        run_dir.mkdir(parents=True)
        (run_dir / "in.hex").write_text("".join(f"{b:02x}\n" for b in wire))
        t0 = time.monotonic()
        subprocess.run([str(self.exe), f"+in={run_dir / 'in.hex'}",
                        f"+out={run_dir / 'out.hex'}"], cwd=run_dir, check=True,
                       capture_output=True, timeout=600)
        seconds = time.monotonic() - t0
        lines = (run_dir / "out.hex").read_text().split()
        counters_at = len(lines) - len(COUNTERS) - 1
        assert lines[counters_at] == "C", lines[-8:]
        counters = dict(zip(COUNTERS, (int(x, 16) for x in lines[counters_at + 1:]),
                            strict=True))
        body = lines[:counters_at]
        if "E" in body:
            raise AssertionError(f"framing error on tx at byte {body.index('E')}")
        if not os.environ.get("SPIKEFORGE_KEEP_RUNS"):
            shutil.rmtree(run_dir, ignore_errors=True)
        return bytes(int(x, 16) for x in body), counters, seconds
