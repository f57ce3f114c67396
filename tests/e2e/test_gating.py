"""The virtual board's gated clocks change nothing the bitstream does (``spikeforge.hdl.gating``).

One recorded host session (upload, a learning run with probes, STATUS, region CRCs) is replayed
through the tiny SoC built both ways (gated clocks; every block on the system clock, as in the
bitstream): the two send the same bytes at the same clocks, so no block's ``wake`` missed a
clock it needed. The
session itself is checked against the golden model, so the gated blocks (the deframer, the
command processor, the counters) did their work in it.
"""

import numpy as np
from e2e_util import golden_run, needs_verilator, small_network

from spikeforge.boards.virtual import VirtualBoard, replay
from spikeforge.host import session
from spikeforge.host.board import Board
from spikeforge.host.session import VIRTUAL_LINK_TRIES
from spikeforge.presets import preset
from spikeforge.sim.compare import compare_traces

pytestmark = needs_verilator()

STEPS = 60
PROBES = [(0, 1, "v"), (0, 3, "y")]


def test_gated_and_ungated_models_send_the_same_bytes(tmp_path):
    p = preset("tiny")
    net = small_network(tmp_path / "net.json", learning=True, seed=4)
    record = tmp_path / "rx.txt"
    with VirtualBoard(p, record=str(record)) as vb:
        with Board(vb.url, baud=vb.baud) as board:
            board.hello()
            compiled = session.compile_for(board, net)
            trace = session.run(board, compiled, STEPS, probes=PROBES)
            board.status()
            _, golden_trace, golden = golden_run(net, STEPS, PROBES)
            final = session.final_image(compiled, [c.image for c in golden.cores])
            assert session.differing_regions(board, final) == []     # learned weights too
        vb.session()
    assert compare_traces(golden_trace, trace).identical
    assert np.array_equal(trace.probes, golden_trace.probes)

    gated = replay(p, record)
    ungated = replay(p, record, clock_gating=False)
    assert gated["tx"] == ungated["tx"] > 1000
    assert gated["hash"] == ungated["hash"]


def test_gated_and_ungated_agree_through_faults_the_step_timer_and_reset(tmp_path):
    """The paths the first session leaves out: frames lost and corrupted on the line both ways
    (NAKs, the host's retries, the output buffer's resend timer), the step timer pacing single
    STEPs, and RESET."""
    p = preset("tiny")
    net = small_network(tmp_path / "net.json", learning=True, seed=5)
    record = tmp_path / "rx.txt"
    with VirtualBoard(p, record=str(record), drop=1e-3, flip=1e-3, seed=11) as vb:
        with Board(vb.url, baud=vb.baud, tries=VIRTUAL_LINK_TRIES) as board:
            board.hello()
            compiled = session.compile_for(board, net)
            trace = session.run(board, compiled, STEPS)
            board.timer(5000)
            steps = [board.step()[0] for _ in range(3)]
            board.timer(0)
            status = board.status()
            board.reset()
            board.status()
        vb.session()
    _, golden_trace, _ = golden_run(net, STEPS)
    assert compare_traces(golden_trace, trace).identical
    assert steps == [STEPS, STEPS + 1, STEPS + 2]
    assert status["out_resent"] + trace.meta["retries"] > 0     # the faults were recovered

    gated = replay(p, record)
    ungated = replay(p, record, clock_gating=False)
    assert gated["tx"] == ungated["tx"] > 1000
    assert gated["hash"] == ungated["hash"]
