"""The SoC through its UART pins under Verilator, driven by the unchanged host (``Board``).

One build of the ``tiny`` preset serves every test (``vboard.VirtualBoard``): the host reaches
it over ``socket://`` and the C++ loop moves the bytes to and from the pins at the SoC's clocks
per bit, losing or corrupting bytes when asked.
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from cobs import cobs
from vboard import VirtualBoard

from spikeforge import protocol
from spikeforge.hdl.link import STATUS_COUNTERS
from spikeforge.host.board import Board
from spikeforge.host.link import BoardResetError, Frame, NakError, encode_frame
from spikeforge.memmap import Region
from spikeforge.presets import preset
from spikeforge.protocol import REQUEST, Command, NakCode
from spikeforge.sim.golden import GoldenCore
from spikeforge.toolchain import verilator_available

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hdl"))

from netgen import first_difference, random_image, random_inputs  # noqa: E402

pytestmark = [pytest.mark.verilator, pytest.mark.slow,
              pytest.mark.skipif(not verilator_available(), reason="needs Verilator")]

TINY = preset("tiny")
# the same SoC behind each link: the command processor in hardware, and as firmware on SERV
# (``tiny-fw``: its line slower, its window 2)
LINKS = pytest.mark.parametrize("name", ["tiny", "tiny-fw"])
# The simulation runs ~1e6 clocks/s: 4 clocks per bit make ~25 kB/s of line.
SIM_BAUD = 200_000


def _board(vb, **kw):
    return Board(vb.url, baud=SIM_BAUD, timeout=kw.pop("timeout", 1.0), **kw)


def _image(seed):
    im, _, rng = random_image(TINY.core, seed)
    im.step = 7 + seed            # far from the 32-bit wrap: input steps are u32
    return im, rng


def _golden_trace(image, inputs):
    golden = GoldenCore(image.copy())
    rows = []
    for k, ext in enumerate(inputs):
        fired = np.flatnonzero(golden.step(ext))
        rows.extend((int(image.step) + k, 0, int(n)) for n in fired)
    return np.array(rows, dtype=np.int64).reshape(-1, 3), golden.image


@LINKS
def test_hello_upload_readback_crc(name):
    with VirtualBoard(preset(name)) as vb, _board(vb) as board:
        with pytest.raises(BoardResetError):
            board.link.request(Command.STATUS)        # no HELLO yet: NOT_SYNCED
        info = board.hello()
        assert info["memmap_hash"] == protocol.memmap_hash(board.chipmap)
        assert (info["n_neurons"], info["n_axons"]) == (16, 16)
        assert info["max_payload"] == TINY.max_payload
        im, _ = _image(1)
        board.upload(im, verify=True)
        back = board.read_image()
        assert first_difference(back, im) is None
        for region in Region:
            wb = protocol.word_bytes(board.memmap, region)
            data = b"".join(int(w).to_bytes(wb, "little")
                            for w in board.memmap.region_words(im, region))
            assert board.region_crc(region) == protocol.crc32(data)
        # Refusals (4 NAKs with the NOT_SYNCED above): no core 1, no region 7, past the end.
        with pytest.raises(NakError) as exc:
            board.link.request(Command.READ, core=1, region=1, index=0, count=1)
        assert exc.value.code is NakCode.CORE
        with pytest.raises(NakError) as exc:
            board.link.request(Command.READ, core=0, region=7, index=0, count=1)
        assert exc.value.code is NakCode.REGION
        with pytest.raises(NakError) as exc:
            board.link.request(Command.READ, core=0, region=1, index=16, count=1)
        assert exc.value.code is NakCode.RANGE
        status = board.status()
        assert status["naks"] == 4 and status["crc_errors"] == 0
        nonce = info["nonce"]
        board.reset()
        assert board.info["nonce"] != nonce           # a reset draws a new nonce
        assert first_difference(board.read_image(), im) is None   # the image survives


def test_upload_writes_only_what_the_board_does_not_hold():
    with VirtualBoard(TINY) as vb, _board(vb) as board:
        board.hello()
        im, _ = _image(5)
        sent = board.image_bytes(im)
        registers = len(sent[0, Region.REGISTERS])
        assert board.upload(im, flush=False) > registers            # a fresh board: zeros
        assert board.upload(im, flush=False) == registers           # held: registers only
        # One weight changed: the frame that holds it goes again.
        im.weight[3, 5] ^= 1
        per = board.link.max_payload - REQUEST[Command.WRITE].size
        written = board.upload(im, flush=False)
        assert registers < written <= registers + per
        assert first_difference(board.read_image(), im) is None
        assert board.upload(im, flush=False, skip_held=False) == sum(map(len, sent.values()))


def _runs_match_golden(board, seeds, steps):
    """Upload a random image per seed, run it with random inputs: every spike, and every
    memory read back after, equal the golden model's. Returns the last image after its run."""
    for seed in seeds:
        im, rng = _image(seed)
        inputs = random_inputs(TINY.core, rng, "random", steps)
        want, after = _golden_trace(im, inputs)
        board.upload(im)
        trace = board.run(steps, inputs=inputs)
        assert trace.first_step == im.step
        np.testing.assert_array_equal(trace.spikes, want)
        assert first_difference(board.read_image(), after) is None
    return after


@LINKS
def test_run_matches_golden(name):
    with VirtualBoard(preset(name)) as vb, _board(vb) as board:
        after = _runs_match_golden(board, (2, 3), 40)
        step, busy, fired = board.step()
        assert step == after.step and busy > 0
        status = board.status()
        assert status["state"] == 0 and status["step"] == step + 1
        assert status["busy_last"] == busy


@pytest.mark.parametrize("ratio", [2, 3])
def test_a_chip_clock_of_its_own_matches_golden(ratio):
    """The chip on a clock of its own, ``ratio`` times the link's (``ChipCrossing``; the virtual
    board derives the link's clock from the chip's): uploads, runs with inputs and readbacks
    agree with the golden model bit for bit, and a STEP reports its step and busy clocks."""
    p = dataclasses.replace(preset("tiny-chipclock"), chip_clock_hz=ratio * TINY.clock_hz)
    assert p.core == TINY.core and p.chip_ratio == ratio
    with VirtualBoard(p) as vb, _board(vb) as board:
        assert vb.clocks_per_bit == ratio * TINY.clocks_per_bit
        assert board.hello()["clock_hz"] == TINY.clock_hz       # the link's clock
        after = _runs_match_golden(board, (4, 5), 30)
        step, busy, _ = board.step()
        assert step == after.step and busy > 0
        assert board.status()["step"] == step + 1


@LINKS
def test_faults_never_act_twice(name):
    """Lost and corrupted bytes both ways: every retry of RUN, INPUT, STEP and RESET is answered
    from the history (never acted on twice), lost SPIKES frames come back from the board's
    buffer, and the run still equals the golden model step for step."""
    with VirtualBoard(preset(name), drop=0.002, flip=0.002, seed=5) as vb, \
            _board(vb, tries=20, timeout=0.5) as board:
        board.hello()
        im, rng = _image(4)
        inputs = random_inputs(TINY.core, rng, "random", 60)
        want, _ = _golden_trace(im, inputs)
        board.upload(im)
        trace = board.run(60, inputs=inputs)
        np.testing.assert_array_equal(trace.spikes, want)
        for _ in range(5):
            board.step()
        status = board.status()
        assert status["step"] == im.step + 65
        assert status["crc_errors"] + status["frame_errors"] > 0
        assert board.link.resent > 0 and status["out_resent"] > 0


@LINKS
def test_status_counts_each_event_exactly(name):
    """Each STATUS counter (kept in the SoC's statistics RAM) counts exactly the events made:
    a CRC error, a frame error, a NAK and a duplicate; a RESET clears the link's counters
    (NAKs, duplicates) and keeps those of the line (CRC and frame errors)."""
    with VirtualBoard(preset(name)) as vb, _board(vb) as board:
        board.hello()
        link = board.link
        before = board.status()
        body = protocol.HEADER.pack(version=protocol.VERSION, seq=link._seq,
                                    cmd=int(Command.STATUS), length=0)
        bad_crc = body + ((protocol.crc32(body) ^ 1).to_bytes(protocol.CRC_BYTES, "little"))
        link.transport.write(cobs.encode(bad_crc) + b"\x00")         # a CRC error
        link.transport.write(b"\x02\x01\x00")                         # too short: frame error
        with pytest.raises(NakError):
            link.request(Command.READ, core=0, region=7, index=0, count=1)
        last = (link._seq - 1) % protocol.SEQ_MODULO
        link.transport.write(encode_frame(Frame(last, Command.READ, REQUEST[Command.READ].pack(
            b"", core=0, region=7, index=0, count=1))))              # a duplicate
        after = board.status()
        counts = {name: after[name] - before[name] for name in STATUS_COUNTERS}
        assert counts == dict.fromkeys(STATUS_COUNTERS, 0) | dict(
            crc_errors=1, frame_errors=1, naks=1, duplicates=1)
        board.reset()
        status = board.status()
        assert status["naks"] == status["duplicates"] == status["out_resent"] == 0
        assert (status["crc_errors"], status["frame_errors"]) == (after["crc_errors"],
                                                                  after["frame_errors"])


@LINKS
def test_run_control_and_input_refusals(name):
    """RUN, STOP, STEP and INPUT's refusals, the same on both links: while a RUN goes on, the
    commands that need the chip idle are refused BUSY and STATUS reports the run; STOP answers
    with the next step; an INPUT for another core, with an axon past the core's or for a step
    already run is refused, and leaves nothing queued (the run after equals the golden
    model's)."""
    with VirtualBoard(preset(name)) as vb, _board(vb) as board:
        board.hello()
        im, rng = _image(6)
        board.upload(im)
        first = board.link.request(Command.RUN, steps=0)["step"]     # until STOP
        assert first == im.step
        status = board.status()
        assert status["state"] == protocol.RunState.RUNNING and status["steps_left"] == 0
        for cmd, fields in [(Command.WRITE, dict(core=0, region=1, index=0)),
                            (Command.READ, dict(core=0, region=1, index=0, count=1)),
                            (Command.STEP, {}), (Command.RUN, dict(steps=1)),
                            (Command.GENERATORS, dict(core=0, enable=0, first=0, count=1,
                                                      prob=0))]:
            with pytest.raises(NakError) as exc:
                board.link.request(cmd, **fields)
            assert exc.value.code is NakCode.BUSY, cmd
        stopped = board.link.request(Command.STOP)["step"]
        assert stopped > first and board.status()["state"] == protocol.RunState.IDLE
        assert board.status()["step"] == stopped
        n_axons = TINY.core.n_axons
        for fields, tail, code in [
                (dict(step=stopped, core=1, flags=0), [0], NakCode.CORE),
                (dict(step=stopped, core=0, flags=0), [1, n_axons], NakCode.ARGUMENT),
                (dict(step=stopped - 1, core=0, flags=0), [1], NakCode.ARGUMENT)]:
            with pytest.raises(NakError) as exc:
                board.link.request(Command.INPUT, tail, **fields)
            assert exc.value.code is code, (fields, tail)
        # the image as it stands after the run, then a run with inputs from there
        now = board.read_image()
        assert now.step == stopped
        inputs = random_inputs(TINY.core, rng, "random", 12)
        want, _ = _golden_trace(now, inputs)
        trace = board.run(12, inputs=inputs)
        np.testing.assert_array_equal(trace.spikes, want)
