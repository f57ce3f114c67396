"""The iCEBreaker SoC after synthesis (Yosys ``synth_ice40 -dsp``: LUTs, carries, flip-flops,
EBR, SPRAM and DSP cells, simulated with Yosys's own cell models) behind the virtual board's
C++ main, driven by the unchanged host and compared spike for spike with the golden model.

The SoC is the board's chip behind the hardware link (``icebreaker-hwlink``: the board's own
firmware link would spend hundreds of millions of gate-level clocks verifying the image,
``spikeforge.boards.netlist``). The line runs at 10 clocks per bit (3 Mbaud at 30 MHz) instead
of the board's 30 so that the gate-level simulation spends its clocks on the SoC, not the UART;
the image is sparse (the memories start at zero, as the bitstream leaves them) so that the
upload is short.
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from spikeforge.host.board import Board
from spikeforge.presets import preset
from spikeforge.sim.golden import GoldenCore
from spikeforge.toolchain import verilator_available

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hdl"))

from netgen import random_image, random_inputs  # noqa: E402

# Part of `make test`: 4.5 minutes cold on an idle machine (Yosys, then g++ on the netlist's
# model, then the run), 2.7 minutes once built (cached under build/netlist*/): the run itself.
pytestmark = [pytest.mark.synth, pytest.mark.verilator, pytest.mark.slow,
              pytest.mark.timeout(3600),
              pytest.mark.skipif(not verilator_available(), reason="needs Verilator")]

PRESET = dataclasses.replace(preset("icebreaker-hwlink"), baud=3_000_000)
ACTIVE = 8          # axons with synapses and inputs
STEPS = 12


def _sparse_image(seed):
    im, _, rng = random_image(PRESET.core, seed, learn=1)
    for name in ("weight", "delay", "mask"):
        getattr(im, name)[ACTIVE:] = 0
    im.x[ACTIVE:] = 0
    im.gen_prob[:] = 0
    im.step = 100
    return im.validate(), rng


def _nonzero_runs(data, wb, gap=64):
    """``[(first word, bytes)]`` covering every nonzero word of ``data``."""
    words = [data[k:k + wb] for k in range(0, len(data), wb)]
    nz = [k for k, w in enumerate(words) if any(w)]
    runs = []
    for k in nz:
        if runs and k - runs[-1][1] <= gap:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    return [(a, data[a * wb:(b + 1) * wb]) for a, b in runs]


def test_icebreaker_netlist_matches_golden():
    from spikeforge import protocol
    from spikeforge.boards.build import tool_command
    from spikeforge.boards.netlist import netlist_board

    try:
        tool_command("YOSYS")
    except Exception as e:  # noqa: BLE001
        pytest.skip(str(e))
    im, rng = _sparse_image(5)
    inputs = [[a for a in np.flatnonzero(np.asarray(step)) if a < ACTIVE]
              if np.asarray(step).dtype == bool else [a for a in step if a < ACTIVE]
              for step in random_inputs(PRESET.core, rng, "random", STEPS)]
    golden = GoldenCore(im.copy())
    want = []
    for k, ext in enumerate(inputs):
        want.extend((im.step + k, 0, int(n)) for n in np.flatnonzero(golden.step(ext)))
    want = np.array(want, dtype=np.int64).reshape(-1, 3)

    with netlist_board("icebreaker", PRESET) as vb, \
            Board(vb.url, baud=20_000, timeout=300.0, tries=2, window=2) as board:
        board.hello()
        sent = board.image_bytes(im)
        for (core, region), data in sent.items():
            wb = protocol.word_bytes(board.chipmap or board.memmap, region)
            for first, chunk in _nonzero_runs(data, wb):
                board.link.write_region(core, region, first, chunk, wb)
        board.verify(sent)          # every region's CRC, computed by the netlist
        trace = board.run(STEPS, inputs=inputs, timeout=600)
    assert len(want) > 0, "the network must spike for the comparison to mean something"
    np.testing.assert_array_equal(trace.spikes, want)
