"""Trace comparison: identical traces, each kind of first divergence, the CLI's exit codes."""

import numpy as np
import pytest

from spikeforge.cli import main
from spikeforge.sim.compare import compare_traces
from spikeforge.sim.trace import Trace


def trace(spikes, probes=None, names=((0, 1, "v"),), first=0, n=10):
    probes = np.zeros((n, len(names)), np.int64) if probes is None else probes
    return Trace(first, n, np.array(spikes, np.int64).reshape(-1, 3), list(names), probes)


def test_identical():
    a = trace([[1, 0, 2], [3, 0, 1]])
    r = compare_traces(a, trace([[1, 0, 2], [3, 0, 1]]))
    assert r.identical and r.first is None
    assert r.summary["spikes_a"] == 2 and r.summary["divergent_steps"] == 0


def test_first_spike_divergence_names_step_core_neuron():
    a = trace([[1, 0, 2], [3, 0, 1], [5, 1, 7]])
    b = trace([[1, 0, 2], [4, 0, 1], [5, 1, 7]])
    r = compare_traces(a, b)
    assert not r.identical
    d = r.first
    assert (d.step, d.core, d.neuron, d.variable, d.a, d.b) == (3, 0, 1, "spike", True, False)
    assert r.summary["spikes_only_a"] == 1 and r.summary["spikes_only_b"] == 1
    assert r.summary["divergent_steps"] == 2
    assert "step 3, core 0, neuron 1, spike: True vs False" in str(r)


def test_probe_divergence_comes_first_when_earlier():
    pa = np.arange(10).reshape(10, 1)
    pb = pa.copy()
    pb[2, 0] = 99
    r = compare_traces(trace([[6, 0, 0]], pa), trace([[7, 0, 0]], pb))
    d = r.first
    assert (d.step, d.core, d.neuron, d.variable, d.a, d.b) == (2, 0, 1, "v", 2, 99)
    assert r.summary["probe_mismatches"] == 1


def test_same_step_probe_before_spike():
    # In one step the state is the cause: the probe divergence is reported first.
    pa = np.zeros((10, 1), np.int64)
    pb = pa.copy()
    pb[4, 0] = 5
    r = compare_traces(trace([[4, 0, 1]], pa), trace([], pb))
    assert r.first.variable == "v" and r.first.step == 4


def test_only_common_steps_are_compared():
    a = trace([[2, 0, 0], [12, 0, 0]], first=0, n=20, probes=np.zeros((20, 1), np.int64))
    b = trace([[2, 0, 0]], first=0, n=10)
    assert compare_traces(a, b).identical
    with pytest.raises(ValueError, match="share no step"):
        compare_traces(trace([], first=0, n=5), trace([], first=5, n=5))


def test_cli_exit_codes_and_plot(tmp_path, capsys):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    trace([[1, 0, 2]]).save(a)
    trace([[1, 0, 3]]).save(b)
    assert main(["compare", str(a), str(a)]) == 0
    assert "identical" in capsys.readouterr().out
    png = tmp_path / "cmp.png"
    assert main(["compare", str(a), str(b), "--plot", str(png)]) == 1
    out = capsys.readouterr().out
    assert "first divergence at step 1, core 0, neuron 2" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["compare", str(a), str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err
    assert "missing.npz" in err and err.strip().count("\n") == 0


def test_golden_against_itself_and_against_float(tmp_path):
    from spikeforge import examples

    g, f = tmp_path / "g.npz", tmp_path / "f.npz"
    assert main(["simulate", examples.path("feedforward"), "--steps", "200", "--out", str(g)]) == 0
    assert main(["compare", str(g), str(g)]) == 0
    assert main(["simulate", examples.path("feedforward"), "--steps", "200", "--out", str(f),
                 "--float"]) == 0
    # The float model's probes differ in type; its spikes may or may not match, but the
    # comparison must run and agree with the library call.
    r = compare_traces(Trace.load(g), Trace.load(f))
    assert main(["compare", str(g), str(f)]) == (0 if r.identical else 1)
