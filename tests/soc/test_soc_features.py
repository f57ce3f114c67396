"""PROBE, GENERATORS, TIMER and STATUS of the SoC (``tiny2``: two cores and the router) under
Verilator, through the unchanged host, against the golden chip model.

- Probes: the trace's probe part (``v``, ``i``, ``ref``, ``y`` of chosen neurons of both cores,
  after every step) equals ``GoldenChip.run(probes=...)`` exactly, with the spikes.
- Generators: ``gen_prob`` set on the board equals the same change to the golden image: same
  spikes, same axon words read back; ``enable=False`` writes 0.
- Timer: a period shorter than a step counts one overrun per step; a long period (four times
  the longest busy time) spaces the steps (the run takes at least ``steps x period``
  simulated clocks) without overruns.
- Output frames: a core firing every neuron fills whole SPIKES frames (closed mid-step), a
  silent last core still ends each step with an empty frame.
- STATUS: input stalls (a host that sends each step's input late) and busy clocks.
- Refusals name the broken limit (NAK codes).
"""

import numpy as np
import pytest
from test_chip_soc import SIM_BAUD, TINY2, _rows, random_chip, random_events
from vboard import VirtualBoard

from spikeforge.host.board import Board
from spikeforge.host.link import NakError
from spikeforge.memmap import Region
from spikeforge.presets import preset
from spikeforge.protocol import Command, HelloFlags, NakCode
from spikeforge.sim.golden import GoldenChip
from spikeforge.toolchain import verilator_available

pytestmark = [pytest.mark.verilator, pytest.mark.slow,
              pytest.mark.skipif(not verilator_available(), reason="needs Verilator")]


def _inputs(rng, steps, p=0.3):
    return [[random_events(TINY2.core, rng, "random") if rng.random() > p
             else np.zeros(0, np.int64) for _ in range(TINY2.n_cores)] for _ in range(steps)]


@pytest.fixture(scope="module", params=["hardware", "firmware"])
def vb(request):
    """The ``tiny2`` SoC with each link (``tiny2-fw``: the same chip behind the firmware link,
    at its slower line)."""
    with VirtualBoard(TINY2 if request.param == "hardware" else preset("tiny2-fw")) as board:
        yield board


def _board(vb, **kw):
    return Board(vb.url, baud=SIM_BAUD, timeout=2.0, **kw)


def test_probes_match_golden(vb):
    chip, rng = random_chip(9)
    probes = [(0, 3, "v"), (0, 5, "i"), (0, 4, "ref"), (1, 0, "v"), (1, 15, "y"),
              (1, 7, "ref"), (1, 9, "i")]
    inputs = _inputs(rng, 30)
    first = chip.cores[0].step
    want = GoldenChip(chip).run(30, _rows(first, inputs), probes=probes)
    with _board(vb) as board:
        info = board.hello()
        assert (info["n_probes"], info["probe_payload"]) == (TINY2.n_probes, 256)
        assert info["flags"] & HelloFlags.GENERATORS and info["flags"] & HelloFlags.TIMER
        # the firmware link says so: the host then waits longer for its memory commands
        assert bool(info["flags"] & HelloFlags.FIRMWARE) == (vb.preset.link_kind == "firmware")
        board.upload(chip)
        got = board.run(30, inputs=inputs, probes=probes)
        assert got.probe_names == want.probe_names
        assert len(np.unique(want.probes, axis=0)) > 20         # the state moves
        np.testing.assert_array_equal(got.probes, want.probes)
        np.testing.assert_array_equal(got.spikes, want.spikes)
        # Probes are off after the run: no PROBE_DATA for the next steps.
        board.run(3)
        assert board._probe_frames == []
        # A raw probe every 2nd step on the synapse region of core 1 (words 4..9).
        board.probe(1, core=1, region=Region.SYNAPSE, index=4, count=6, period=2)
        board.run(5)
        frames = board._probe_frames
        assert [f["step"] for f in frames] == [first + 33, first + 35, first + 37]
        assert {(f["probe"], f["core"], f["region"], f["index"], len(f["words"]))
                for f in frames} == {(1, 1, int(Region.SYNAPSE), 4, 12)}
        board.probe(1, period=0)


def test_generators_match_golden(vb):
    chip, _ = random_chip(10)
    for core in chip.cores:
        core.gen_prob[:] = 0
    with _board(vb) as board:
        board.upload(chip)
        board.generators(core=1, first=2, count=9, prob=30_000)
        board.generators(core=0, first=0, count=16, prob=0x1234)
        board.generators(core=0, first=4, count=4, prob=0x1234, enable=False)
        chip.cores[1].gen_prob[2:11] = 30_000
        chip.cores[0].gen_prob[:] = 0x1234
        chip.cores[0].gen_prob[4:8] = 0
        for k in range(2):
            np.testing.assert_array_equal(board.read_image(k).gen_prob, chip.cores[k].gen_prob)
            np.testing.assert_array_equal(board.read_image(k).x, chip.cores[k].x)
        golden = GoldenChip(chip)
        want = golden.run(30)
        assert len(want.spikes) > 0
        np.testing.assert_array_equal(board.run(30).spikes, want.spikes)


def test_full_frames_and_an_empty_last_core(vb):
    """Core 0 fires (nearly) every neuron each step: its spikes fill whole SPIKES frames,
    closed before the step ends; core 1 is silent, yet its (empty) frame ends each step."""
    chip, _ = random_chip(9)
    loud = chip.cores[0]
    loud.threshold[:], loud.refractory[:], loud.bias[:] = 1, 0, 1 << 16
    loud.v[:], loud.i[:], loud.slots[:], loud.weight[:] = 0, 0, 0, np.maximum(loud.weight, 0)
    chip.host_out[0][:] = True
    chip.cores[1].bias[:] = -1000
    chip.cores[1].v[:] = 0
    chip.cores[1].threshold[:] = (1 << 22)
    chip.routes = chip.routes[chip.routes[:, 2] == 0]
    want = GoldenChip(chip).run(20)
    per_step = np.bincount(want.spikes[want.spikes[:, 1] == 0, 0] - want.first_step)
    assert per_step.max() == TINY2.core.n_neurons and not (want.spikes[:, 1] == 1).any()
    with _board(vb) as board:
        board.upload(chip)
        np.testing.assert_array_equal(board.run(20).spikes, want.spikes)


def test_timer_overruns_and_spacing(vb):
    chip, _ = random_chip(9)
    with _board(vb) as board:
        board.upload(chip)
        board.timer(20)                         # far shorter than a step
        board.run(10)
        status = board.status()
        assert status["busy_last"] > 20 and status["timer_overruns"] == 10
        board.timer(0)
        board.run(5)
        status = board.status()
        assert status["timer_overruns"] == 10
        # a period well above a whole step: four times the longest busy time yet (a step
        # ends after its barrier once its frames are closed, which on the firmware link
        # takes SERV about as long again)
        period = max(20_000, 4 * status["busy_max"])
        board.timer(period)
    vb.session()
    with _board(vb) as board:
        board.hello()
        board.run(8)
        status = board.status()
        board.timer(0)
    clocks = vb.session()
    assert status["timer_overruns"] == 10 and status["busy_max"] < period
    # 8 steps started ``period`` clocks apart: at least 7 periods between the first and the
    # last.
    assert clocks["last_tx"] - clocks["first_rx"] > 7 * period


def test_stalls_counted(vb):
    chip, rng = random_chip(9)
    inputs = _inputs(rng, 20, p=0.0)
    want = GoldenChip(chip).run(20, _rows(chip.cores[0].step, inputs))
    with _board(vb, input_queue=4) as board:   # each step's input sent after the last step
        board.upload(chip)
        stalls = board.status()["stalls"]
        got = board.run(20, inputs=inputs)
        np.testing.assert_array_equal(got.spikes, want.spikes)
        assert board.status()["stalls"] > stalls


def test_refusals(vb):
    with _board(vb) as board:
        board.hello()
        cases = [
            (dict(probe=TINY2.n_probes, core=0, region=1, period=1, index=0, count=1),
             Command.PROBE, NakCode.ARGUMENT),
            (dict(probe=0, core=2, region=1, period=1, index=0, count=1),
             Command.PROBE, NakCode.CORE),
            (dict(probe=0, core=0, region=7, period=1, index=0, count=1),
             Command.PROBE, NakCode.REGION),
            (dict(probe=0, core=0, region=1, period=1, index=10, count=7),
             Command.PROBE, NakCode.RANGE),
            (dict(probe=0, core=0, region=5, period=1, index=0, count=200),
             Command.PROBE, NakCode.RANGE),        # 11 + 200 x 2 bytes > probe_payload
            (dict(core=2, enable=1, first=0, count=1, prob=1),
             Command.GENERATORS, NakCode.CORE),
            (dict(core=0, enable=1, first=10, count=7, prob=1),
             Command.GENERATORS, NakCode.RANGE),
        ]
        for fields, cmd, code in cases:
            with pytest.raises(NakError) as exc:
                board.link.request(cmd, **fields)
            assert exc.value.code is code, (cmd, fields)
        with pytest.raises(ValueError, match=r"^probe 2 is out of range \[0, 1\]$"):
            board.probe(2)
        with pytest.raises(ValueError, match=r"^timer period -1 is out of range"):
            board.timer(-1)
        chip, _ = random_chip(9)
        with pytest.raises(ValueError, match=r"has 2 cores: upload a ChipImage, not a "):
            board.upload(chip.cores[0])
        with pytest.raises(ValueError, match=r"^probe variable 'w' is not one of v, i, ref, y$"):
            board.run(1, probes=[(0, 0, "w")])
        with pytest.raises(ValueError, match=r"^a step's input must list 2 cores, not 1$"):
            board.run(1, inputs=[[[1, 2]]])
