"""``docs/protocol.md`` carries field tables and worked examples rendered from
``spikeforge.protocol``; this test fails when they drift apart.

Regenerate the part between the ``generated`` markers with
``.venv/bin/python tests/link/test_protocol_doc.py --write``.
"""

import struct
import sys
from pathlib import Path

from spikeforge import protocol
from spikeforge.host.link import Frame, decode_frame, encode_frame
from spikeforge.image import CoreConfig
from spikeforge.memmap import MemoryMap, Region
from spikeforge.protocol import NAK_PAYLOAD, OUTPUT, REPLY, REQUEST, Command, NakCode, StepFlags
from spikeforge.routing import ChipMap, RouterLimits

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
START, END = "<!-- generated: start -->", "<!-- generated: end -->"

_TYPES = {"B": "u8", "H": "u16", "I": "u32", "b": "i8", "h": "i16", "i": "i32", "Q": "u64"}
_TAILS = {"s": "bytes", "H": "u16[]"}


def field_table(layout):
    rows = ["| offset | field | type |", "|---|---|---|"]
    pos = 0
    for name, (off, _, _) in layout.offsets().items():
        code = dict(layout.fields)[name]
        rows.append(f"| {off} | `{name}` | {_TYPES[code]} |")
        pos = off + struct.calcsize("<" + code)
    if layout.tail is not None:
        rows.append(f"| {pos} | `{layout.tail_name}` | {_TAILS[layout.tail]} to the end |")
    if len(rows) == 2:
        return "(empty)"
    return "\n".join(rows)


def hexs(data):
    return " ".join(f"{b:02x}" for b in data)


CONFIG = CoreConfig()                    # 256 x 256, 8-bit weights, 4 delay bits, plastic
MEMMAP = MemoryMap(CONFIG)
CHIPMAP = ChipMap([CONFIG], RouterLimits(route_entries=1024, fan_out=16))


def examples():
    """``(title, Frame)`` of one frame of each kind, with plausible values."""
    nb = protocol.word_bytes(MEMMAP, Region.NEURON)
    sb = protocol.word_bytes(MEMMAP, Region.SYNAPSE)
    neuron_words = MEMMAP[Region.NEURON].pack(v=[-5, 1200], i=[300, 0], ref=[0, 2], y=[0, 77])
    neuron_bytes = b"".join(int(w).to_bytes(nb, "little") for w in neuron_words)
    syn_words = MEMMAP[Region.SYNAPSE].pack(weight=[12, -3, 100], delay=[0, 5, 15], mask=[1, 1, 0])
    syn_bytes = b"".join(int(w).to_bytes(sb, "little") for w in syn_words)
    hello = dict(version=1, window=8, out_window=8, n_cores=1,
                 flags=int(protocol.HelloFlags.LEARNING | protocol.HelloFlags.GENERATORS
                           | protocol.HelloFlags.TIMER),
                 max_payload=1024, n_neurons=256, n_axons=256, weight_bits=8, delay_bits=4,
                 lanes=4, n_profiles=16, n_probes=4, out_seq=0,
                 memmap_hash=protocol.memmap_hash(CHIPMAP), clock_hz=48_000_000, baud=3_000_000,
                 out_timeout=480_000, build_id=0x1A2B3C4D, nonce=0x9E3779B9,
                 route_entries=1024, fan_out=16, probe_payload=256)
    status = dict(state=1, step=1234, steps_left=766, crc_errors=2, frame_errors=1,
                  uart_errors=0, overruns=0, naks=1, duplicates=3, out_resent=0,
                  timer_overruns=0, busy_last=5210, busy_max=6044, stalls=7,
                  paced=1)

    def req(seq, cmd, tail=b"", **f):
        return Frame(seq, cmd, REQUEST[cmd].pack(tail, **f))

    def ack(seq, cmd, tail=b"", **f):
        return Frame(seq, Command.ACK, REPLY[cmd].pack(tail, cmd=cmd, **f))

    syn = int(Region.SYNAPSE)
    return [
        ("HELLO from client 0x2F6B1C9A", req(0x10, Command.HELLO, client=0x2F6B1C9A)),
        ("ACK to HELLO", ack(0x10, Command.HELLO, **hello)),
        ("WRITE three synapse words from index 0x0100", req(0x11, Command.WRITE, syn_bytes,
                                                            core=0, region=syn, index=0x100)),
        ("ACK to WRITE", ack(0x11, Command.WRITE)),
        ("READ two neuron words from index 3", req(0x12, Command.READ, core=0,
                                                   region=int(Region.NEURON), index=3, count=2)),
        ("ACK to READ", ack(0x12, Command.READ, neuron_bytes)),
        ("REGION_CRC of the whole synapse region",
         req(0x13, Command.REGION_CRC, core=0, region=syn, index=0, count=65536)),
        ("ACK to REGION_CRC", ack(0x13, Command.REGION_CRC, crc=0x3D4C5B6A)),
        ("RUN 1000 steps", req(0x14, Command.RUN, steps=1000)),
        ("ACK to RUN", ack(0x14, Command.RUN, step=234)),
        ("STEP", req(0x15, Command.STEP)),
        ("ACK to STEP", ack(0x15, Command.STEP, step=1234, busy=5210)),
        ("STOP", req(0x16, Command.STOP)),
        ("ACK to STOP", ack(0x16, Command.STOP, step=1235)),
        ("INPUT: axons 3, 17, 200 at step 42, end of step",
         req(0x17, Command.INPUT, [3, 17, 200], step=42, core=0,
             flags=int(StepFlags.END_OF_STEP))),
        ("ACK to INPUT", ack(0x17, Command.INPUT)),
        ("GENERATORS: axons 0..63 fire with p = 0x0CCD / 65536, enabled",
         req(0x18, Command.GENERATORS, core=0, enable=1, first=0, count=64, prob=0x0CCD)),
        ("ACK to GENERATORS", ack(0x18, Command.GENERATORS)),
        ("PROBE 0: neuron words 0..7 every step",
         req(0x19, Command.PROBE, probe=0, core=0, region=int(Region.NEURON), period=1,
             index=0, count=8)),
        ("ACK to PROBE", ack(0x19, Command.PROBE)),
        ("TIMER: one step every 48,000 clocks (1 ms at 48 MHz)",
         req(0x1A, Command.TIMER, period=48_000)),
        ("ACK to TIMER", ack(0x1A, Command.TIMER)),
        ("STATUS", req(0x1B, Command.STATUS)),
        ("ACK to STATUS", ack(0x1B, Command.STATUS, **status)),
        ("RESET", req(0x1C, Command.RESET)),
        ("ACK to RESET", ack(0x1C, Command.RESET)),
        ("NAK: seq 0x1E arrived while 0x1D was expected",
         Frame(0x1E, Command.NAK, NAK_PAYLOAD.pack(cmd=Command.STATUS, code=NakCode.SEQUENCE,
                                                   expected=0x1D))),
        ("SPIKES (output 0x05): neurons 7 and 130 fired at step 42, last frame of the step",
         Frame(0x05, Command.SPIKES, OUTPUT[Command.SPIKES].pack(
             [7, 130], step=42, core=0, flags=int(StepFlags.END_OF_STEP)))),
        ("OUT_ACK: every output frame before 0x06 arrived",
         req(0x00, Command.OUT_ACK, next=0x06)),
        ("PROBE_DATA (output 0x06): probe 0, two neuron words at step 42",
         Frame(0x06, Command.PROBE_DATA, OUTPUT[Command.PROBE_DATA].pack(
             neuron_bytes, step=42, probe=0, core=0, region=int(Region.NEURON), index=0))),
    ]


def render():
    out = [START, "", "### Field tables", ""]
    out += ["Header (5 bytes, then the payload, then the CRC-32):", "",
            field_table(protocol.HEADER), ""]
    for cmd, layout in REQUEST.items():
        out += [f"#### {cmd.name} (0x{cmd:02x})", "", "Request payload:", "",
                field_table(layout), ""]
        if cmd in REPLY:
            out += ["ACK payload:", "", field_table(REPLY[cmd]), ""]
    out += ["#### NAK (0x81) payload", "", field_table(NAK_PAYLOAD), ""]
    for cmd, layout in OUTPUT.items():
        out += [f"#### {cmd.name} (0x{cmd:02x}) payload", "", field_table(layout), ""]
    out += ["### Worked examples", "",
            "For each frame: the payload, the body before COBS (header | payload | CRC-32), and",
            "the bytes on the wire (COBS, then the 0x00 delimiter). Core configuration: "
            "`CoreConfig()` (256 neurons, 256 axons, 8-bit weights, 4 delay bits, plastic): "
            f"synapse words take {protocol.word_bytes(MEMMAP, Region.SYNAPSE)} bytes, neuron "
            f"words {protocol.word_bytes(MEMMAP, Region.NEURON)}.", ""]
    for title, frame in examples():
        wire = encode_frame(frame)
        body = protocol.HEADER.pack(version=1, seq=frame.seq, cmd=int(frame.cmd),
                                    length=len(frame.payload)) + frame.payload
        crc = protocol.crc32(body).to_bytes(4, "little")
        out += [f"**{title}**", "", "```text",
                f"payload {hexs(frame.payload) or '(empty)'}",
                f"body    {hexs(body[:5])} | {hexs(frame.payload) + ' | ' if frame.payload else ''}"
                f"{hexs(crc)}",
                f"wire    {hexs(wire)}", "```", ""]
    out.append(END)
    return "\n".join(out)


def test_doc_matches_the_declaration():
    text = DOC.read_text()
    assert START in text and END in text, f"{DOC} lacks the generated markers"
    generated = text[text.index(START):text.index(END) + len(END)]
    assert generated == render(), "run: python tests/link/test_protocol_doc.py --write"


def test_examples_decode_back():
    for _, frame in examples():
        assert decode_frame(encode_frame(frame)[:-1]) == frame


if __name__ == "__main__":
    if "--write" in sys.argv:
        text = DOC.read_text()
        DOC.write_text(text[:text.index(START)] + render() + text[text.index(END) + len(END):])
    else:
        print(render())
