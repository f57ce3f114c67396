"""The command line: version, help, one-line errors with exit codes, simulate and demo."""

import subprocess
import sys

import numpy as np
import pytest

from spikeforge.cli import main
from spikeforge.sim.trace import Trace


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "spikeforge", *args],
                          capture_output=True, text=True, timeout=300)


def test_version_and_help():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("spikeforge ")
    r = run_cli("--help")
    assert r.returncode == 0
    for name in ("demo", "simulate", "compare", "emulate", "push", "run", "pull", "info"):
        assert name in r.stdout


def test_missing_file_is_one_line_error(tmp_path, capsys):
    code = main(["simulate", str(tmp_path / "nope.json"), "--steps", "5",
                 "--out", str(tmp_path / "t.npz")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "nope.json does not exist" in err


def test_malformed_network_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ this is not json")
    r = run_cli("simulate", str(bad), "--steps", "5", "--out", str(tmp_path / "t.npz"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    assert "bad.json" in r.stderr


def test_simulate_writes_a_trace_equal_to_the_library_call(tmp_path):
    from spikeforge import examples
    from spikeforge.host.compiler import compile_network
    from spikeforge.host.netfile import load
    from spikeforge.sim.golden import simulate

    path = examples.path("stdp_demo")
    out = tmp_path / "trace.npz"
    assert main(["simulate", path, "--steps", "300", "--out", str(out)]) == 0
    trace = Trace.load(out)
    compiled = compile_network(load(path))
    expected = simulate(compiled.chip, 300, compiled.inputs)
    assert trace.spike_count() > 0
    assert np.array_equal(trace.spikes, expected.spikes)


@pytest.mark.slow
def test_demo_golden_only_runs_and_writes_a_raster(tmp_path):
    # The demo on a board is tested end to end in tests/e2e (tiny preset).
    r = run_cli("demo", "--golden-only", "--steps", "500", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "spikes" in r.stdout and "Hz" in r.stdout
    png = (tmp_path / "raster.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_board_names_and_aliases_choose_the_boards_preset():
    from spikeforge.boards import BOARDS
    from spikeforge.cli.common import board_preset

    assert board_preset("tiny") == "tiny"
    for b in BOARDS.values():
        for name in (b.name, *b.aliases):
            assert board_preset(name) == b.preset
    assert board_preset("ulx3s") == "ulx3s-85f"
    with pytest.raises(ValueError, match=r"^no SoC preset or board named 'ulx3s-12f'; presets"):
        board_preset("ulx3s-12f")


def test_bad_values_are_one_line_errors(tmp_path):
    from spikeforge import examples

    cases = [
        (["run", examples.path("feedforward"), "--steps", "0", "--out", str(tmp_path / "t.npz")],
         "--steps must be a positive integer, not 0"),
        (["emulate", "--board", "nosuch"], "no SoC preset or board named 'nosuch'"),
        (["emulate", "--board", "tiny", "--clocks-per-bit", "2"], "below the minimum 4"),
        (["run", examples.path("feedforward"), "--steps", "5", "--out",
          str(tmp_path / "no" / "t.npz")], "of --out does not exist"),
        (["push", examples.path("feedforward"), "--board", "nosuch"],
         "no SoC preset or board named 'nosuch'"),
    ]
    for argv, message in cases:
        r = run_cli(*argv)
        assert r.returncode == 2, (argv, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
        assert message in r.stderr, (argv, r.stderr)


def test_run_input_file_replaces_source_spikes(tmp_path):
    import json

    from spikeforge import examples
    from spikeforge.host.netfile import load
    from spikeforge.host.session import load_inputs

    net = load(examples.path("feedforward"))
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"input": [[0, 3.0], [2, 9.0]]}))
    new = load_inputs(net, str(path))
    src = new["input"]
    assert list(src.neurons) == [0, 2] and list(src.times) == [3.0, 9.0]
    path.write_text(json.dumps({"nope": [[0, 1.0]]}))
    with pytest.raises(ValueError, match="'nope' is not a spike source"):
        load_inputs(net, str(path))
