"""End to end through the CLI against ``spikeforge emulate`` (the tiny SoC under Verilator).

Over TCP and over a pty: push, run, pull; the trace and the learned weights equal the golden
model's exactly, with learning on and off. Fault injection on the line: the run completes,
identical, with the retries shown. The reset button pressed mid-run: a one-line reset error, no
trace written, and the next run is again identical. Bad input: one line, non-zero exit.
"""

import re
import socket
import threading

import numpy as np
import pytest
from e2e_util import cli, golden_run, needs_verilator, one_line_error, small_network

from spikeforge import protocol
from spikeforge.host.link import Frame, FrameDecoder, encode_frame
from spikeforge.host.netfile import load
from spikeforge.protocol import Command
from spikeforge.sim.compare import compare_traces
from spikeforge.sim.trace import Trace

pytestmark = needs_verilator()

STEPS = 150


# Probed every step through the board's probes: membrane, current, refractory count, trace.
PROBES = [(0, 1, "v"), (0, 4, "i"), (0, 4, "ref"), (0, 2, "y")]


def _run_identical(url, net_path, net, out, steps=STEPS):
    probes = [f"out:{n}:{var}" for _, n, var in PROBES]
    r = cli("run", net_path, "--steps", steps, "--out", out, "--port", url,
            *[a for p in probes for a in ("--probe", p)])
    assert r.returncode == 0, r.stderr
    compiled, golden_trace, golden = golden_run(net, steps, PROBES)
    board_trace = Trace.load(out)
    result = compare_traces(golden_trace, board_trace)
    assert result.identical, str(result)
    assert board_trace.spike_count() == golden_trace.spike_count() > 10
    assert board_trace.probe_names == PROBES
    assert np.array_equal(board_trace.probes, golden_trace.probes)
    assert np.ptp(board_trace.probes[:, 0]) > 0          # the membrane moved
    return r, compiled, golden


@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_push_run_pull_identical_to_golden(transport, emulators, tmp_path):
    em = emulators("--pty") if transport == "pty" else emulators()
    assert em.url.startswith("/dev/pts/" if transport == "pty" else "socket://127.0.0.1:")
    for learning in (False, True):
        path = tmp_path / f"net_{learning}.json"
        net = small_network(path, learning=learning, seed=3)
        r = cli("push", path, "--port", em.url)
        assert r.returncode == 0, r.stderr
        assert "verified" in r.stdout and "commands resent" in r.stdout
        _, compiled, golden = _run_identical(em.url, path, net, tmp_path / f"t_{learning}.npz")
        # pull: the board's weights after the run, in mV, as the golden model learned them.
        r = cli("pull", path, "--out", tmp_path / f"learned_{learning}.json", "--port", em.url)
        assert r.returncode == 0, r.stderr
        learned = load(tmp_path / f"learned_{learning}.json").projections[0].weight
        want = compiled.weights_to_user(golden.cores[0].image)["in->out"]
        np.testing.assert_array_equal(learned, want)
        before = compiled.weights_to_user()["in->out"]
        changed = int(np.sum(~np.isnan(want) & (want != before)))
        assert (changed > 0) == learning
        # The learned network is a valid network file: it pushes again.
        r = cli("push", tmp_path / f"learned_{learning}.json", "--port", em.url)
        assert r.returncode == 0, r.stderr


def test_faults_on_the_line_retried_and_identical(emulators, tmp_path):
    # Byte error rate 1e-3 in each direction: half lost bytes, half flipped bits.
    em = emulators("--drop", 5e-4, "--flip", 5e-4, "--seed", 11)
    path = tmp_path / "net.json"
    net = small_network(path, learning=True, seed=5, duration=250.0)
    r, _, _ = _run_identical(em.url, path, net, tmp_path / "t.npz", steps=250)
    m = re.search(r"link: (\d+) commands resent, (\d+) corrupted frames dropped", r.stdout)
    assert m, r.stdout
    assert int(m[1]) + int(m[2]) > 0, r.stdout


def test_reset_mid_run_is_reported_and_nothing_mixed(emulators, tmp_path):
    import subprocess
    import sys

    em = emulators()
    path = tmp_path / "net.json"
    net = small_network(path, learning=True, seed=7, duration=5000.0)
    out = tmp_path / "t.npz"
    run = subprocess.Popen([sys.executable, "-m", "spikeforge", "run", str(path), "--steps",
                            "5000", "--out", str(out), "--port", em.url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = run.stderr.readline()
    assert line.startswith("running 5000 steps"), line + run.communicate(timeout=120)[1]
    threading.Event().wait(1.0)
    em.reset_button()
    _, err = run.communicate(timeout=120)
    assert run.returncode == 1
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "reset" in err
    assert not out.exists()
    # The next run pushes the network again (the board's state moved on) and is identical.
    _run_identical(em.url, path, net, tmp_path / "t2.npz")


def test_emulate_once_exits_after_the_session(emulators):
    em = emulators("--once")
    r = cli("info", "--port", em.url)
    assert r.returncode == 0, r.stderr
    assert "16 neurons, 16 axons" in r.stdout and "protocol     version" in r.stdout
    assert em.proc.wait(timeout=60) == 0        # gone by itself after the session
    err = em.proc.stderr.read()
    assert "session ended" in err and "virtual board stopped" in err


def test_private_board_run_and_demo(tmp_path):
    path = tmp_path / "net.json"
    net = small_network(path, learning=True, seed=9)
    out = tmp_path / "t.npz"
    r = cli("run", path, "--steps", STEPS, "--out", out, "--board", "tiny")
    assert r.returncode == 0, r.stderr
    _, golden_trace, _ = golden_run(net, STEPS)
    assert compare_traces(golden_trace, Trace.load(out)).identical
    r = cli("demo", "--network", path, "--board", "tiny", "--steps", STEPS, "--out",
            tmp_path / "demo")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "VERDICT      IDENTICAL" in r.stdout
    assert "has the golden model's CRC" in r.stdout
    assert "float model" in r.stdout
    for png in ("raster.png", "compare.png"):
        assert (tmp_path / "demo" / png).read_bytes()[:4] == b"\x89PNG"


# -- bad input ---------------------------------------------------------------------------


def test_missing_and_malformed_network(tmp_path):
    r = cli("push", tmp_path / "nope.json", "--board", "tiny")
    assert one_line_error(r) and r.returncode == 2 and "nope.json does not exist" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "spikeforge-network", "version": 1, "dt": 1.0, '
                   '"populations": [{"kind": "lif", "label": "x"}]}')
    for cmd in (("push", bad), ("run", bad, "--steps", 5, "--out", tmp_path / "t.npz"),
                ("pull", bad, "--out", tmp_path / "n.json")):
        r = cli(*cmd, "--board", "tiny")
        assert one_line_error(r) and r.returncode == 2, (cmd, r.stderr)
        assert "bad.json" in r.stderr


def test_network_too_large_names_the_limit(tmp_path):
    path = tmp_path / "big.json"
    small_network(path, learning=False, n_out=40)
    r = cli("push", path, "--board", "tiny")
    assert one_line_error(r) and r.returncode == 2, r.stderr
    assert "does not fit" in r.stderr and "16" in r.stderr and "neuron" in r.stderr


def test_unreachable_port(tmp_path):
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cli("info", "--port", f"socket://127.0.0.1:{port}")
    assert one_line_error(r) and r.returncode == 1, r.stderr
    assert str(port) in r.stderr


def _fake_board(version, ready):
    """A server that answers every command with a HELLO reply of protocol ``version``."""
    layout = protocol.REPLY[Command.HELLO]
    fields = {name: 0 for name, _ in layout.fields}
    fields.update(cmd=int(Command.HELLO), version=version)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        ready.append(srv.getsockname()[1])
        srv.settimeout(30)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(5)
            decoder = FrameDecoder()
            try:
                while data := conn.recv(4096):
                    for frame in decoder.feed(data):
                        conn.sendall(encode_frame(Frame(frame.seq, Command.ACK,
                                                        layout.pack(**fields), version)))
            except OSError:
                pass


def test_wrong_protocol_version():
    ready = []
    server = threading.Thread(target=_fake_board, args=(protocol.VERSION + 1, ready),
                              daemon=True)
    server.start()
    while not ready:
        threading.Event().wait(0.01)
    r = cli("info", "--port", f"socket://127.0.0.1:{ready[0]}")
    assert one_line_error(r) and r.returncode == 1, r.stderr
    assert f"protocol version {protocol.VERSION + 1}" in r.stderr
    server.join(timeout=10)


def test_ctrl_c_stops_cleanly(emulators):
    import signal

    em = emulators()
    assert cli("info", "--port", em.url).returncode == 0
    em.proc.send_signal(signal.SIGINT)
    assert em.proc.wait(timeout=60) == 0
    err = em.proc.stderr.read()
    assert "virtual board stopped" in err and "Traceback" not in err


def test_fst_wave_window(emulators, tmp_path):
    fst = tmp_path / "w.fst"
    em = emulators("--once", "--fst", fst, "--fst-from", 100, "--fst-cycles", 5000)
    assert cli("info", "--port", em.url).returncode == 0
    assert em.proc.wait(timeout=120) == 0
    data = fst.read_bytes()
    # An FST file starts with its header block (type 0) and holds the dumped value changes.
    assert data[0] == 0 and len(data) > 1000
