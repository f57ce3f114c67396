"""Upload efficiency of a whole core image through the SoC's UART pins, in simulated line time.

The SoC of a preset runs under Verilator behind a TCP socket (``spikeforge.boards.virtual``); the
unchanged host (``Board``) says HELLO and uploads a random image (every region, then the
REGION_CRC check). The virtual board counts simulated clocks from the first byte it received to
the last byte it sent, so the result does not depend on how fast the simulation runs:

    efficiency = payload bytes / (baud / 10 x upload time)

with ``baud = clock / clocks_per_bit``. The goal is >= 0.9 (several WRITE frames in flight).
The payload counts the core image's own bytes only (the routing tables travel as overhead); the
board is fresh, so the upload skips its flush step (``Board.upload(flush=False)``). Measured:
0.962 on ``icebreaker`` (a 256 x 256 core, 1024-byte frames), 0.64 on ``tiny`` (a 1 kB image:
HELLO and one frame and one CRC request per region dominate). The same image is then pushed
again with ``skip_held`` (the default of ``Board.upload``: a ``REGION_CRC`` per frame's span, a
WRITE only where it differs): ``again_clocks`` against ``clocks`` is what a push of an unchanged
network costs: 0.080 on ``icebreaker`` (2026-12-03; efficiency 0.929 then).

    python bench/link.py                       # icebreaker-hwlink preset, printed
    python bench/link.py --preset tiny --json FILE
    python bench/link.py --preset tiny-fw --both-links   # side by side: the two links

``--both-links`` measures the preset with each command processor (``link_kind``), every other
setting the same (window, baud, clock): what the firmware link (``FirmwareProcessor``) costs
in line time against the hardware one. ``crc_clocks_per_word``: a REGION_CRC's clocks per word
(the synapse region against one word, each in a session of its own), and ``crc_word_margin``
``protocol.FIRMWARE_WORD_CLOCKS`` over it (what a host allows a firmware link per word).
Measured on ``tiny-fw`` 2026-12-05, session 30 (the window's accesses issued from flip-flops,
a clock later): upload 9.63 x (5,904,315 clocks), unchanged push 21.09 x, a REGION_CRC 4,809.8
clocks a word on the firmware link against 13.0 on the hardware one (margin 3.41 at 16,384);
then with one loop for a REGION_CRC's words (``hal_mem_crc32``): upload 7.50 x (4,658,282),
unchanged push 11.73 x, a REGION_CRC 1,919.0 clocks a word (margin 8.54).
Measured on ``tiny-fw`` (4 MHz, 100 kbaud, window 2;
2026-12-05, session 29: the firmware also the framing, with the window's CRC register): the
upload takes 9.60 x the hardware link's clocks (5,885,412 against 613,137; efficiency 0.069
against 0.660), the unchanged push 21.05 x (its REGION_CRC requests: each word read through
the window). Session 28, the framing in hardware and the CRC on SERV (about 900 clocks a
byte): 8.16 x and 21.5 x. Session 27 measured 9.59 x and 24.8 x: its
counters commit polled the line's counters from every memory request with a call that made
each request save its arguments (20 instructions more a word); the same image's clocks at
each of session 27's commits, in one run: 4,892,939 before it, 4,894,636 (stepper),
4,916,055 (output buffer), 5,877,116 (counters), 5,004,018 now.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hdl"))

from netgen import random_image  # noqa: E402  (the random core images of the core tests)

from spikeforge import protocol  # noqa: E402
from spikeforge.boards.virtual import VirtualBoard  # noqa: E402
from spikeforge.host.board import Board  # noqa: E402
from spikeforge.memmap import MemoryMap, Region  # noqa: E402
from spikeforge.presets import preset  # noqa: E402


def measure(p, seed=0):
    name = p.name
    image, _, _ = random_image(p.core, seed)
    memmap = MemoryMap(p.core)
    payload = sum(protocol.word_bytes(memmap, r) * memmap[r].depth for r in Region)
    with VirtualBoard(p) as vb:
        with Board(vb.url, baud=200_000, timeout=2.0) as board:
            board.hello()
            board.upload(image, verify=True, flush=False, skip_held=False)
        session = vb.session()
        # The same image again, as a push after an unchanged network (skip_held: the host asks
        # for each frame's CRC and writes none of them).
        with Board(vb.url, baud=200_000, timeout=2.0) as board:
            board.hello()
            written = board.upload(image, verify=True, flush=False)
        again = vb.session()
        # A REGION_CRC's clocks per word: the synapses' whole region against one word, each
        # after a HELLO of its own (the difference is the words' work alone)
        crc = []
        for count in (1, memmap[Region.SYNAPSE].depth):
            with Board(vb.url, baud=200_000, timeout=60.0) as board:
                board.hello()
                board.link.request(protocol.Command.REGION_CRC, core=0,
                                   region=int(Region.SYNAPSE), index=0, count=count)
            s = vb.session()
            crc.append((count, s["last_tx"] - s["first_rx"]))
    (n1, c1), (n2, c2) = crc
    crc_word = (c2 - c1) / (n2 - n1)
    clocks = session["last_tx"] - session["first_rx"]
    clocks_again = again["last_tx"] - again["first_rx"]
    efficiency = payload * 10 * p.clocks_per_bit / clocks
    return {"preset": name, "link_kind": p.link_kind, "payload_bytes": payload,
            "wire_bytes_in": session["rx"],
            "clocks": clocks, "clocks_per_bit": p.clocks_per_bit,
            "max_payload": p.max_payload, "efficiency": round(efficiency, 4),
            "again_written_bytes": written, "again_wire_bytes_in": again["rx"],
            "again_clocks": clocks_again, "again_ratio": round(clocks_again / clocks, 4),
            "crc_clocks_per_word": round(crc_word, 1),
            "crc_word_margin": round(protocol.FIRMWARE_WORD_CLOCKS / crc_word, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="icebreaker-hwlink")
    parser.add_argument("--both-links", action="store_true",
                        help="measure the preset with each link kind, side by side")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    p = preset(args.preset)
    kinds = ("hardware", "firmware") if args.both_links else (p.link_kind,)
    results = [measure(dataclasses.replace(p, link_kind=kind)) for kind in kinds]
    for key in results[0]:
        print(f"{key:20}" + "".join(f"{str(r[key]):>14}" for r in results))
    if len(results) == 2:
        hw, fw = results
        print(f"{'firmware / hardware':20}{fw['clocks'] / hw['clocks']:>14.2f} x the upload's "
              f"line time, {fw['again_clocks'] / hw['again_clocks']:.2f} x the unchanged push's")
    if args.json:
        out = results[0] if len(results) == 1 else {r["link_kind"]: r for r in results}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
