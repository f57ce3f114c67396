"""Board bring-up checks: what a person runs first on a freshly flashed board.

``selftest(board)`` takes a ``spikeforge.host.board.Board`` (a serial port or a virtual board:
the checks cannot tell them apart) and returns a list of :class:`Check`:

1. ``link``: HELLO answered three times with the same configuration and session nonce (the
   link loops commands back), and the mean round trip.
2. ``memory <region> core <c>``: every memory region of every core (routing tables included)
   written with a random pattern at its width, read back in full and compared word for word,
   then cleared to zero. The registers are not a memory (some are counters) and are skipped.
3. ``clock``: ``TIMER`` set to a step every ``clock_hz / 100`` clocks, a run of ``steps`` steps
   timed with the host's clock: the board's clock is ``clock_hz`` times the expected duration
   over the measured one. On a real board it must be within ``clock_tolerance`` of what HELLO
   says; a virtual board's simulated clock runs slower than real time, so there it is reported
   only.
4. ``leds``: what the LEDs should show (looked at by the person; not checked by the host).

The test leaves the board's memories zeroed and the timer free-running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from spikeforge import protocol
from spikeforge.host.link import NakError
from spikeforge.memmap import Region
from spikeforge.protocol import Command, NakCode

__all__ = ["Check", "selftest"]


@dataclass
class Check:
    name: str
    ok: bool | None          # None: information only (not a pass/fail check)
    detail: str


def _regions(board):
    wire = board.chipmap or board.memmap
    return {r: lay for r, lay in protocol.link_regions(wire).items() if r != Region.REGISTERS}


def _memory(board, rng):
    checks = []
    wire = board.chipmap or board.memmap
    for core in range(board.n_cores):
        for region, layout in _regions(board).items():
            name = getattr(region, "name", str(region)).lower()
            wb = protocol.word_bytes(wire, region)
            depth = layout.depth
            mask = (1 << layout.width) - 1
            words = rng.integers(0, 1 << 62, depth, dtype=np.int64).astype(object) & mask
            data = b"".join(int(w).to_bytes(wb, "little") for w in words)
            board.link.write_region(core, region, 0, data, wb)
            back = board.link.read_region(core, region, 0, depth, wb)
            got = [int.from_bytes(back[k:k + wb], "little") for k in range(0, len(back), wb)]
            bad = [k for k in range(depth) if k >= len(got) or got[k] != int(words[k])]
            board.link.write_region(core, region, 0, bytes(len(data)), wb)
            if bad:
                k = bad[0]
                seen = got[k] if k < len(got) else None
                detail = (f"{len(bad)} of {depth} words differ; first at {k}: wrote "
                          f"{int(words[k]):#x}, read {seen if seen is None else hex(seen)}")
            else:
                detail = f"{depth} words of {layout.width} bits written and read back"
            checks.append(Check(f"memory {name} core {core}", not bad, detail))
    return checks


def _clock(board, virtual, steps, tolerance, rtt):
    info = board.info
    period = max(info["clock_hz"] // 100, 1)
    try:
        board.link.request(Command.TIMER, period=period)
    except NakError as e:
        if e.code is not NakCode.COMMAND:
            raise
        return Check("clock", None, f"not measured: this bitstream has no TIMER command "
                                    f"(HELLO says {info['clock_hz'] / 1e6:g} MHz)")
    try:
        t0 = time.monotonic()
        board.run(steps, timeout=max(60.0, steps * 10.0))
        elapsed = time.monotonic() - t0 - 2 * rtt
    finally:
        board.link.request(Command.TIMER, period=0)
    expected = steps * period / info["clock_hz"]
    measured = info["clock_hz"] * expected / elapsed
    said = info["clock_hz"] / 1e6
    if virtual:
        return Check("clock", None, f"simulated clock runs at {measured / 1e6:.3g} MHz of real "
                                    f"time ({measured / info['clock_hz']:.0%} of the "
                                    f"{said:g} MHz it models)")
    error = measured / info["clock_hz"] - 1
    return Check("clock", abs(error) <= tolerance,
                 f"{measured / 1e6:.4g} MHz measured over {elapsed:.2f} s, HELLO says "
                 f"{said:g} MHz ({error:+.1%}, limit {tolerance:.0%})")


def selftest(board, *, virtual=False, seed=1, steps=40, clock_tolerance=0.02, memory=True):
    """Run the checks on ``board`` (a ``spikeforge.host.board.Board``); returns ``[Check]``."""
    checks = []
    t0 = time.monotonic()
    infos = [board.hello() for _ in range(3)]
    rtt = (time.monotonic() - t0) / 3
    same = all(i == infos[0] for i in infos)
    i = infos[0]
    checks.append(Check("link", same,
                        f"HELLO x3 {'identical' if same else 'DIFFERENT'}: {i['n_cores']} x "
                        f"{i['n_neurons']} neurons, {i['clock_hz'] / 1e6:g} MHz, {i['baud']} "
                        f"baud, build {i['build_id']:#010x}; round trip {rtt * 1e3:.1f} ms"))
    if memory:
        checks += _memory(board, np.random.default_rng(seed))
    checks.append(_clock(board, virtual, steps, clock_tolerance, rtt))
    checks.append(Check("leds", None, "look at the board: heartbeat blinks at 1 Hz, link lit "
                                      "while this test talked, running lit during the clock "
                                      "run"))
    return checks
