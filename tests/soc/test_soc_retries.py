"""Retries through the SoC (``tiny2``) under Verilator, with frames lost on purpose.

A transport filter drops chosen frames on their way to the host, once each: the ACKs of RUN,
INPUT, STEP and RESET (the board acted, the host did not hear it and sends the command again:
the board answers from its reply history and never acts twice: the run has exactly its steps
and equals the golden model), a SPIKES frame (the board sends it again from its output buffer:
the trace is complete) and a corrupted SPIKES frame (its CRC fails: same). A board reset behind
the host's back is a clear ``BoardResetError``, and the next HELLO shows a new nonce.
"""

import numpy as np
import pytest
from test_chip_soc import SIM_BAUD, TINY2, _rows, random_chip, random_events
from vboard import VirtualBoard

from spikeforge.host.board import Board
from spikeforge.host.link import BoardResetError, FrameError, SerialTransport, decode_frame
from spikeforge.protocol import Command
from spikeforge.sim.golden import GoldenChip
from spikeforge.toolchain import verilator_available

pytestmark = [pytest.mark.verilator, pytest.mark.slow,
              pytest.mark.skipif(not verilator_available(), reason="needs Verilator")]


class Lossy(SerialTransport):
    """A serial transport that drops (or corrupts) received frames chosen by ``rules``: a list
    of ``(name, predicate(frame), "drop" | "flip")``, each applied to the first frame it
    matches; ``done`` lists the names applied."""

    def __init__(self, url, baud, rules):
        super().__init__(url, baud)
        self.rules, self.done, self._held = list(rules), [], b""

    def read(self, timeout):
        data = self._held + super().read(timeout)
        cut = data.rfind(b"\x00") + 1
        self._held, data = data[cut:], data[:cut]
        out = []
        for wire in data.split(b"\x00")[:-1]:
            try:
                frame = decode_frame(wire)
            except FrameError:
                frame = None
            rule = next((r for r in self.rules if frame is not None and r[1](frame)), None)
            if rule is not None:
                self.rules.remove(rule)
                self.done.append(rule[0])
                if rule[2] == "drop":
                    continue
                wire = wire[:-3] + bytes([wire[-3] ^ 0x10]) + wire[-2:]
            out.append(wire + b"\x00")
        return b"".join(out)


def _ack_of(cmd):
    return lambda f: f.cmd == Command.ACK and f.payload[:1] == bytes([cmd])


def _board(vb, rules):
    # 1 s a try: a lost SPIKES frame comes back after the board's resend timeout, counted in
    # simulated clocks, which a loaded machine stretches (0.4 s failed now and then at load 8).
    transport = Lossy(vb.url, SIM_BAUD, rules)
    return Board(transport=transport, baud=SIM_BAUD, timeout=1.0, tries=4), transport


@pytest.fixture(scope="module")
def vb():
    with VirtualBoard(TINY2) as board:
        yield board


def test_lost_acks_never_act_twice(vb):
    chip, rng = random_chip(9)
    golden = GoldenChip(chip)
    inputs = [[random_events(TINY2.core, rng, "random") for _ in range(2)] for _ in range(20)]
    want = golden.run(20, _rows(chip.cores[0].step, inputs))
    board, transport = _board(vb, [])
    with board:
        board.upload(chip)
        transport.rules = [(c.name, _ack_of(c), "drop")
                           for c in (Command.INPUT, Command.RUN, Command.STEP, Command.RESET)]
        t0 = board.status()["step"]
        np.testing.assert_array_equal(board.run(20, inputs=inputs).spikes, want.spikes)
        status = board.status()
        assert status["step"] == t0 + 20 and status["state"] == 0     # RUN acted once
        step, _, fired = board.step()
        assert step == t0 + 20 and board.status()["step"] == t0 + 21  # STEP acted once
        gstep = golden.step()
        np.testing.assert_array_equal(
            fired, np.array([(c, n) for c in range(2) for n in np.flatnonzero(
                gstep[c] & golden.host_out[c])]).reshape(-1, 2))
        assert board.status()["duplicates"] >= 3
        nonce = board.info["nonce"]
        board.reset()                                   # its ACK is lost too
        assert board.info["nonce"] != nonce
        assert transport.done == ["INPUT", "RUN", "STEP", "RESET"]
        assert board.status()["step"] == t0 + 21        # RESET keeps the image
        np.testing.assert_array_equal(board.run(5).spikes, golden.run(5).spikes)


def test_lost_and_corrupted_output_frames_are_resent(vb):
    chip, _ = random_chip(8)
    want = GoldenChip(chip).run(12)
    spikes = lambda f: f.cmd == Command.SPIKES and len(f.payload) > 6  # noqa: E731
    board, transport = _board(vb, [("lost", spikes, "drop"), ("flipped", spikes, "flip")])
    with board:
        board.upload(chip)
        got = board.run(12)
        assert transport.done == ["lost", "flipped"]
        np.testing.assert_array_equal(got.spikes, want.spikes)
        assert board.status()["out_resent"] >= 2


def test_reset_behind_the_hosts_back_is_a_clear_error(vb):
    board, _ = _board(vb, [])
    with board:
        info = board.hello()
        board.link.request(Command.RESET)               # as if the board was power-cycled
        with pytest.raises(BoardResetError, match=r"^socket://127\.0\.0\.1:\d+ was reset "
                                                  r"\(no HELLO since\); call hello\(\) again$"):
            board.run(3)
        assert board.hello()["nonce"] != info["nonce"]
        board.run(3)
