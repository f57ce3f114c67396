"""cocotb test run inside the simulator: clock, reset, then wait for the player to finish.

The player (``coresim.py``) drives the core from a command file, so Python wakes only here.
"""

import os

import cocotb
from cocotb.triggers import RisingEdge, with_timeout

PERIOD_NS = 10


@cocotb.test()
async def play(dut):
    """Run the command file to its end within ``PLAYER_MAX_CYCLES`` clocks (the player makes
    its own clock and reset)."""
    limit = int(os.environ.get("PLAYER_MAX_CYCLES", "100000000"))
    await with_timeout(RisingEdge(dut.finished), limit * PERIOD_NS, "ns")
    assert int(dut.finished.value) == 1
