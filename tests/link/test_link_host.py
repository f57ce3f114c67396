"""Host codec, layouts and client: against the reference packages and the fake board."""

import random
import socket
import time
from collections import deque

import pytest
from cobs import cobs
from crc import Calculator, Crc32
from linkfuzz import fuzz_stream, ref_encode
from linkpeer import FakeBoard, LoopbackTransport, SocketPeer

from spikeforge import protocol
from spikeforge.host.link import (
    BoardResetError,
    Frame,
    FrameDecoder,
    LinkClient,
    LinkError,
    NakError,
    SerialTransport,
    decode_frame,
    encode_frame,
)
from spikeforge.image import CoreConfig
from spikeforge.memmap import MemoryMap, Region
from spikeforge.protocol import HEADER, REPLY, REQUEST, Command

CONFIG = CoreConfig(n_neurons=16, n_axons=16, weight_bits=8, delay_bits=2, lanes=4)


def test_crc_matches_the_crc_package():
    rng = random.Random(0)
    calc = Calculator(Crc32.CRC32)
    for n in [0, 1, 9, 100, 1029]:
        data = bytes(rng.randrange(256) for _ in range(n))
        assert protocol.crc32(data) == calc.checksum(data)


def test_encode_frame_matches_the_reference_and_round_trips():
    rng = random.Random(1)
    for n in [0, 1, 253, 254, 600, protocol.MAX_PAYLOAD]:
        payload = bytes(rng.choice([0, rng.randrange(256)]) for _ in range(n))
        frame = Frame(rng.randrange(256), Command.WRITE, payload)
        wire = encode_frame(frame)
        assert wire.count(0) == 1 and wire[-1] == 0
        assert decode_frame(wire[:-1]) == frame
        body = cobs.decode(wire[:-1])
        assert body[:HEADER.size] == bytes([1, frame.seq, 2]) + n.to_bytes(2, "little")
        assert Calculator(Crc32.CRC32).checksum(body[:-4]) == int.from_bytes(body[-4:], "little")
        assert len(wire) - n <= protocol.frame_overhead(n)
    with pytest.raises(ValueError, match="payload of 1025 bytes is too long"):
        encode_frame(Frame(0, Command.WRITE, bytes(1025)))


def test_frame_decoder_fuzz_10000_frames_never_passes_a_corrupted_one():
    wire, expected, bad = fuzz_stream(2024, 10_000, protocol.MAX_PAYLOAD, bad_fraction=0.35,
                                      versions=(1, 2))
    dec, got = FrameDecoder(), []
    rng = random.Random(3)
    pos = 0
    while pos < len(wire):                        # arbitrary chunking of the byte stream
        step = rng.randrange(1, 3000)
        got += dec.feed(wire[pos:pos + step])
        pos += step
    assert [(f.version, f.seq, f.cmd, f.payload) for f in got] == \
        [(f.version, f.seq, f.cmd, f.payload) for f in expected]
    assert dec.frames == len(expected) > 6000
    assert dec.errors >= bad > 3000


def test_frame_decoder_survives_random_bytes_then_decodes_the_next_frame():
    rng = random.Random(4)
    dec = FrameDecoder()
    for trial in range(20):
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5000)))
        dec.feed(garbage)
        frame = Frame(trial, Command.ACK, bytes(rng.randrange(256) for _ in range(50)))
        assert dec.feed(b"\x00" + encode_frame(frame)) == [frame]
    # A run longer than any frame without a delimiter is dropped once, not buffered forever.
    dec.feed(bytes([1]) * 100_000)
    assert len(dec._buf) == 0 and dec._overlong
    assert dec.feed(b"\x00" + ref_encode_frame(Frame(7, Command.NAK, b"x"))) == \
        [Frame(7, Command.NAK, b"x")]


def ref_encode_frame(frame):
    from linkfuzz import RefFrame
    return ref_encode(RefFrame(frame.version, frame.seq, int(frame.cmd), frame.payload))


def test_layouts_pack_unpack_and_name_bad_values():
    write = REQUEST[Command.WRITE]
    data = write.pack(b"\x01\x02\x03", core=1, region=5, index=70000)
    assert data == bytes([1, 5]) + (70000).to_bytes(4, "little") + b"\x01\x02\x03"
    assert write.unpack(data) == dict(core=1, region=5, index=70000, words=b"\x01\x02\x03")
    inp = REQUEST[Command.INPUT]
    data = inp.pack([3, 300], step=9, core=0, flags=int(protocol.StepFlags.END_OF_STEP))
    assert inp.unpack(data)["axons"] == [3, 300]
    assert write.offsets()["index"] == (2, 4, False)
    with pytest.raises(ValueError, match=r"^write.region value 256 is out of range \[0, 255\]$"):
        write.pack(core=0, region=256, index=0)
    with pytest.raises(TypeError, match="missing fields \\['index'\\]"):
        write.pack(core=0, region=1)
    with pytest.raises(ValueError, match="input axons of 5 bytes is not a multiple of 2"):
        inp.unpack(data + b"\x01")
    with pytest.raises(ValueError, match="status payload of 1 bytes; expected 0"):
        REQUEST[Command.STATUS].unpack(b"\x00")
    # Every command has a request layout and (except OUT_ACK) a reply layout.
    for cmd in Command:
        if cmd < 0x80:
            assert cmd in REQUEST
            assert (cmd in REPLY) == (cmd != Command.OUT_ACK)


def test_memmap_hash_changes_with_the_map():
    a = protocol.memmap_hash(MemoryMap(CONFIG))
    assert a == protocol.memmap_hash(MemoryMap(CONFIG))
    assert a != protocol.memmap_hash(MemoryMap(CoreConfig(n_neurons=16, n_axons=16,
                                                          weight_bits=9, delay_bits=2)))


def make_client(drop=0.0, corrupt=0.0, window=8, seed=1, config=CONFIG, **board_args):
    board = FakeBoard(config, n_cores=2, window=window, **board_args)
    transport = LoopbackTransport(board, drop=drop, corrupt=corrupt, seed=seed)
    client = LinkClient(transport, window=window, timeout=0.01, tries=30)
    return board, transport, client


def random_words(rng, memmap, region, count):
    wb = protocol.word_bytes(memmap, region)
    return bytes(rng.randrange(256) for _ in range(count * wb)), wb


def test_client_hello_write_read_crc():
    board, _, client = make_client()
    info = client.hello()
    assert info["n_neurons"] == 16 and info["n_cores"] == 2
    assert info["memmap_hash"] == protocol.memmap_hash(MemoryMap(CONFIG))
    rng = random.Random(5)
    region = Region.SYNAPSE
    words, wb = random_words(rng, board.memmap, region, 256)
    client.write_region(1, region, 0, words, wb)
    assert client.read_region(1, region, 0, 256, wb) == words
    assert bytes(board.memory[1, region]) == words
    got = client.request(Command.REGION_CRC, core=1, region=int(region), index=10, count=20)
    assert got["crc"] == protocol.crc32(words[10 * wb:30 * wb])
    with pytest.raises(NakError, match=r"^loopback://fake refused READ: RANGE$"):
        client.request(Command.READ, core=0, region=int(region), index=250, count=7)
    with pytest.raises(NakError, match="refused WRITE: CORE"):
        client.request(Command.WRITE, b"\x00\x00", core=2, region=1, index=0)
    with pytest.raises(NakError, match="refused RUN: COMMAND"):
        client.request(Command.RUN, steps=1)


@pytest.mark.parametrize("drop,corrupt", [(0.1, 0.0), (0.0, 0.1), (0.08, 0.08)])
def test_client_over_a_lossy_line_acts_exactly_once(drop, corrupt):
    board, transport, client = make_client(drop, corrupt, seed=int(drop * 100 + corrupt * 7),
                                           config=CoreConfig(n_neurons=64, n_axons=64),
                                           max_payload=256)
    client.hello()
    rng = random.Random(6)
    memmap = board.memmap
    expected = {}
    n_writes = 0
    for region in [Region.SYNAPSE, Region.NEURON, Region.PROFILE, Region.SLOT]:
        depth = memmap[region].depth
        words, wb = random_words(rng, memmap, region, depth)
        per = (client.max_payload - 6) // wb
        n_writes += -(-depth // per)
        client.write_region(0, region, 0, words, wb)
        expected[region] = words
    for region, words in expected.items():
        wb = protocol.word_bytes(memmap, region)
        assert client.read_region(0, region, 0, memmap[region].depth, wb) == words
    writes = [seq for cmd, seq in board.executed if cmd == Command.WRITE]
    assert len(writes) == n_writes                # no retried WRITE acted twice
    assert transport.faults > 0 and client.resent > 0
    status = client.request(Command.STATUS)
    assert status["duplicates"] + status["naks"] > 0


def test_client_window_keeps_several_commands_in_flight():
    board = FakeBoard(CONFIG, window=4, max_payload=64)
    transport = LoopbackTransport(board)
    client = LinkClient(transport, window=8, timeout=0.01, tries=2)
    assert client.hello()["window"] == 4 and client.window == 4
    sent = []
    transport.write = sent.append                 # the board never sees these frames
    words, wb = random_words(random.Random(7), board.memmap, Region.SYNAPSE, 256)
    with pytest.raises(LinkError, match="no answer from loopback://fake after 2 tries"):
        client.write_region(0, Region.SYNAPSE, 0, words, wb)
    # Four different frames went out before any answer, then only retries of those four.
    assert len(set(sent[:4])) == 4 and set(sent) == set(sent[:4])


def test_no_answer_names_the_transport_and_tries():
    board = FakeBoard(CONFIG)
    transport = LoopbackTransport(board, drop=1.0)
    client = LinkClient(transport, timeout=0.005, tries=3)
    with pytest.raises(LinkError, match=r"^no answer from loopback://fake after 3 tries "
                                        r"\(HELLO seq \d+\)$"):
        client.hello()


class SlowTransport(LoopbackTransport):
    """A peer slower than its line: every answer arrives ``delay`` seconds after the request."""

    def __init__(self, board, delay):
        super().__init__(board)
        self.delay = delay
        self.held = deque()
        self.sends = 0

    def write(self, data):
        self.sends += 1
        self.held.append((time.monotonic() + self.delay, bytes(data)))

    def read(self, timeout):
        while self.held and self.held[0][0] <= time.monotonic():
            super().write(self.held.popleft()[1])
        return super().read(timeout)


def test_the_wait_doubles_with_each_resend():
    # An answer four timeouts late: a constant timeout gives up after three (3 tries), the
    # backoff waits 1 + 2 + 4 timeouts for it.
    timeout = 0.05
    client = LinkClient(SlowTransport(FakeBoard(CONFIG), 4 * timeout), timeout=timeout, tries=3)
    t0 = time.monotonic()
    assert client.hello()["version"] == protocol.VERSION
    assert 4 * timeout <= time.monotonic() - t0 < 7 * timeout + 1.0
    assert 2 <= client.transport.sends <= 3     # the first send and its copies after 1 and 3
    # With nothing answering at all, the three sends still give up after 1 + 2 + 4 timeouts.
    client = LinkClient(LoopbackTransport(FakeBoard(CONFIG), drop=1.0), timeout=timeout, tries=3)
    t0 = time.monotonic()
    with pytest.raises(LinkError, match="after 3 tries"):
        client.hello()
    assert time.monotonic() - t0 >= 7 * timeout


@pytest.mark.parametrize("firmware", [False, True])
def test_a_firmware_links_memory_commands_get_time_for_their_words(firmware):
    # A REGION_CRC of 4,096 words answered 0.3 s late, one try, a 0.05 s timeout: a board whose
    # HELLO says FIRMWARE gets FIRMWARE_WORD_CLOCKS of its clocks a word more (48 MHz here:
    # 1.4 s), any other is given up on.
    config = CoreConfig(n_neurons=64, n_axons=64, weight_bits=8, delay_bits=2, lanes=4)
    transport = SlowTransport(FakeBoard(config, firmware=firmware), 0.0)
    client = LinkClient(transport, timeout=0.05, tries=1)
    assert bool(client.hello()["flags"] & protocol.HelloFlags.FIRMWARE) == firmware
    count = MemoryMap(config)[Region.SYNAPSE].depth
    assert count * protocol.FIRMWARE_WORD_CLOCKS / 48e6 > 1.0
    transport.delay = 0.3
    ask = dict(core=0, region=int(Region.SYNAPSE), index=0, count=count)
    if firmware:
        assert client.request(Command.REGION_CRC, **ask)["crc"] == protocol.crc32(
            bytes(count * protocol.word_bytes(MemoryMap(config), Region.SYNAPSE)))
    else:
        with pytest.raises(LinkError, match="after 1 tries"):
            client.request(Command.REGION_CRC, **ask)


def test_board_reset_is_detected_and_hello_resynchronises():
    board, _, client = make_client()
    nonce = client.hello()["nonce"]
    client.request(Command.RESET)
    with pytest.raises(BoardResetError, match="loopback://fake was reset"):
        client.request(Command.STATUS)
    assert client.hello()["nonce"] != nonce
    client.request(Command.STATUS)


def test_duplicate_is_answered_from_the_reply_history():
    board = FakeBoard(CONFIG, window=4)
    hello = encode_frame(Frame(10, Command.HELLO, REQUEST[Command.HELLO].pack(client=99)))
    first = board.receive(hello)
    write = encode_frame(Frame(11, Command.WRITE,
                               REQUEST[Command.WRITE].pack(b"\x05", core=0, region=4, index=0)))
    ack = board.receive(write)
    assert board.receive(write) == ack and board.receive(hello) == first
    assert [c for c, _ in board.executed] == [Command.HELLO, Command.WRITE]
    ahead = decode_frame(board.receive(encode_frame(Frame(13, Command.STATUS)))[:-1])
    assert ahead.cmd == Command.NAK
    assert protocol.NAK_PAYLOAD.unpack(ahead.payload) == dict(
        cmd=Command.STATUS, code=protocol.NakCode.SEQUENCE, expected=12)
    # Another client's HELLO with the same number is not a retry: it resynchronises.
    other = encode_frame(Frame(10, Command.HELLO, REQUEST[Command.HELLO].pack(client=7)))
    assert decode_frame(board.receive(other)[:-1]).cmd == Command.ACK
    assert board.expected == 11 and len(board.executed) == 3


def test_output_frames_arrive_once_in_order_over_a_lossy_line():
    board, transport, client = make_client(0.1, 0.05, seed=9, out_timeout=0.003)
    client.hello()
    sent = 0
    for step in range(60):
        while board.emit(Command.SPIKES, [step, step + 1], step=step, core=0,
                         flags=int(protocol.StepFlags.END_OF_STEP)) is None:
            client.poll(0.002)
        transport.push(board.out_unacked[-1][1])
        sent += 1
    for _ in range(2000):
        if len(client.outputs) == sent:
            break
        client.poll(0.002)
    steps = [fields["step"] for cmd, fields in client.outputs]
    assert steps == list(range(60))
    assert all(fields["neurons"] == [s, s + 1] for s, (_, fields) in enumerate(client.outputs))
    assert board.counters["out_resent"] > 0


def test_socket_url_through_pyserial():
    board = FakeBoard(CONFIG)
    peer = SocketPeer(board)
    try:
        with SerialTransport(peer.url, baud=3_000_000) as transport:
            # small frames go at once (no 40 ms wait for the peer's delayed ACK under Nagle)
            sock = transport._port._socket
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            client = LinkClient(transport)
            assert client.hello()["n_axons"] == 16
            words, wb = random_words(random.Random(8), board.memmap, Region.AXON, 16)
            client.write_region(0, Region.AXON, 0, words, wb)
            assert client.read_region(0, Region.AXON, 0, 16, wb) == words
    finally:
        peer.close()


def test_timeouts_follow_the_baud_rate_and_bad_arguments_are_named():
    board = FakeBoard(CONFIG)
    slow = LinkClient(LoopbackTransport(board), baud=115_200, window=4)
    fast = LinkClient(LoopbackTransport(board), baud=3_000_000, window=4)
    # Ten frames of 1,039 wire bytes at 10 bits per byte, plus 50 ms of bridge latency.
    assert slow.timeout == pytest.approx(10 * 1039 * 10 / 115_200 + 0.05, rel=0.01)
    assert fast.timeout < slow.timeout / 10
    with pytest.raises(ValueError, match="^window 200 is out of range \\[1, 127\\]$"):
        LinkClient(LoopbackTransport(board), window=200)
    with pytest.raises(ValueError, match="baud rate must be a positive integer, not 0"):
        LinkClient(LoopbackTransport(board), baud=0)
    with pytest.raises(LinkError, match="cannot open socket://127.0.0.1:1"):
        SerialTransport("socket://127.0.0.1:1")


def test_a_second_client_takes_over_and_the_first_is_told():
    board = FakeBoard(CONFIG)
    first = LinkClient(LoopbackTransport(board), timeout=0.01)
    second = LinkClient(LoopbackTransport(board), timeout=0.01)
    first.hello()
    first.request(Command.STATUS)
    # Even a HELLO with the very number the first client sends next is no retry: it resyncs.
    second._seq = first._seq
    second.hello()
    second.request(Command.STATUS)
    with pytest.raises(LinkError, match=r"^loopback://fake answered STATUS seq \d+ with an ACK "
                                        r"for HELLO \(another client\? call hello\(\) again\)$"):
        first.request(Command.STATUS)
    first._seq = (second._seq + 100) % 256      # a number far from the board's
    with pytest.raises(LinkError, match=r"^loopback://fake expects command \d+, which this "
                                        r"client did not send"):
        first.request(Command.STATUS)
