"""Network files: exact round trips (inline and side-file arrays), malformed and unknown files."""

import importlib.util
import json
import os
import re

import numpy as np
import pytest

from spikeforge.host.netfile import (
    FORMAT,
    VERSION,
    load_network,
    network_to_json,
    save_network,
)
from spikeforge.host.network import STDP, FixedProbability, Network

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")


def _make_examples():
    """The example generator script, imported from its file (it is not an installed module)."""
    spec = importlib.util.spec_from_file_location(
        "make_examples", os.path.join(EXAMPLES, "make_examples.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _small():
    net = Network(dt=0.25)
    src = net.spike_source(3, times=[[0.1, 2.0], [], [1e-3]], label="in")
    gen = net.poisson_source(2, rate_hz=[0.1, 123.456789], seed=7, label="gen")
    net.poisson_source(1, rate_hz=5.0, label="no-seed")          # seed None -> null
    lif = net.population(4, tau_mem=1 / 3, tau_syn=0.1 + 0.2, v_th=-50.0, v_rest=-65.0,
                         v_reset=-70.0, refractory=1.0, bias=[0.0, -0.0, 1e-300, 2.5],
                         reset="subtract", label="lif")
    w = np.array([[0.1, np.nan, -0.0, 3.0],
                  [np.nan, np.nan, np.nan, np.nan],
                  [1 / 7, 2 / 7, 3 / 7, np.nan]])
    net.connect(src, lif, weight=w, delay=0.5)
    net.connect(gen, lif, weight=0.2, connector="all-to-all",
                stdp=STDP(w_max=0.5, w_min=-0.1, tau_plus=16.8, A_plus=1e-3,
                          mode="nearest", seed=11))
    net.connect(lif, lif, weight=-1 / 3, connector=FixedProbability(0.5, seed=3,
                                                                    allow_self=False))
    net.connect(src, net.population(3, label="copy"), weight=[1.0, 2.0, 3.0],
                connector="one-to-one", delay=[0.0, 0.25, 3.75])
    return net


def test_round_trip_small_is_exact(tmp_path):
    net = _small()
    path = tmp_path / "small.json"
    save_network(net, path)
    assert not (tmp_path / "small.npz").exists()
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["version"] == VERSION and "arrays" not in doc
    back = load_network(path)
    assert back.equal(net)
    # Exact to the bit, including -0.0, 1/7 and 1e-300; NaN stays NaN.
    lif = back["lif"]
    assert np.array_equal(lif.bias.view(np.int64), net["lif"].bias.view(np.int64))
    assert back.projections[0].weight[0, 2] == 0.0
    assert np.signbit(back.projections[0].weight[0, 2])
    assert back.projections[0].weight[2, 0] == 1 / 7
    assert lif.tau_mem == 1 / 3 and lif.tau_syn == 0.1 + 0.2
    # Saving again gives the same text.
    save_network(back, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == path.read_text()


def test_round_trip_large_uses_side_file(tmp_path):
    net = Network()
    a = net.poisson_source(100, rate_hz=np.linspace(0.0, 50.0, 100), seed=1, label="a")
    b = net.population(64, bias=np.random.default_rng(0).normal(0, 0.01, 64), label="b")
    w = np.random.default_rng(1).normal(0, 1, (100, 64))
    w[w < -1] = np.nan
    net.connect(a, b, weight=w, delay=np.random.default_rng(2).integers(0, 16, (100, 64)) * 1.0)
    path = tmp_path / "big.json"
    save_network(net, path)
    doc = json.loads(path.read_text())
    assert doc["arrays"] == "big.npz"
    assert doc["projections"][0]["weight"] == {"dtype": "float64", "shape": [100, 64],
                                              "npz": "projections.0.weight"}
    assert "data" in doc["populations"][1]["bias"]          # 64 elements: inline
    back = load_network(path)
    assert back.equal(net)
    # A lower threshold moves small arrays to the side file too; no threshold keeps all inline.
    _, side = network_to_json(net, threshold=10)
    assert set(side) == {"populations.0.rate_hz", "populations.1.bias",
                         "projections.0.weight", "projections.0.delay"}
    save_network(net, path, threshold=10 ** 9)
    assert not (tmp_path / "big.npz").exists()
    assert load_network(path).equal(net)


def test_examples_load_and_regenerate(tmp_path):
    mod = _make_examples()
    mod.main(str(tmp_path))
    for name, make in (("stdp_demo", mod.stdp_demo), ("feedforward", mod.feedforward)):
        committed = load_network(os.path.join(EXAMPLES, f"{name}.json"))
        assert committed.equal(make())
        assert load_network(tmp_path / f"{name}.json").equal(committed)


def _write(tmp_path, doc, name="bad.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _doc():
    doc, _ = network_to_json(_small())
    return doc


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(version=2),
     r"version 2 is not supported \(this reader reads version 1\)$"),
    (lambda d: d.update(format="other"), r"format is 'other', not 'spikeforge-network'$"),
    (lambda d: d.pop("populations"), r"document has no 'populations'$"),
    (lambda d: d["populations"][0].pop("n"), r"populations\[0\] has no 'n'$"),
    (lambda d: d["populations"][3].update(kind="izhikevich"),
     r"populations\[3\].kind 'izhikevich' is not one of"),
    (lambda d: d["populations"][3].update(tau_mem=-1.0),
     r"tau_mem must be greater than 0 ms, not -1.0 ms$"),
    (lambda d: d["projections"][0].update(pre="nobody"),
     r"projections\[0\]: no population labelled 'nobody'$"),
    (lambda d: d["projections"][0]["weight"].update(shape=[4, 3]),
     r"projections\[0\].weight has shape \(3, 4\) \(float64\), not the declared \(4, 3\)"),
    (lambda d: d["projections"][0].update(weight=[[1.0]]),
     r"projections\[0\].weight must be a scalar or an array object"),
    (lambda d: d["projections"][1]["connector"].update(kind="ring"),
     r"projections\[1\].connector.kind 'ring' is not a known connector$"),
    (lambda d: d["projections"][1]["stdp"].pop("w_max"),
     r"projections\[1\].stdp has no 'w_max'$"),
    (lambda d: d["projections"][0]["weight"].update(npz="k"),
     r"projections\[0\].weight refers to a side file but the file names none"),
    (lambda d: d["populations"][0]["spikes"]["time"].update(data=[[1.0], [2.0, 3.0]]),
     r"populations\[0\].spikes.time.data is not a rectangular array of numbers$"),
])
def test_malformed_files(tmp_path, edit, message):
    doc = _doc()
    edit(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(ValueError, match="^" + re.escape(str(path)) + ": " + message):
        load_network(path)


def test_not_json_and_missing_side_file(tmp_path):
    path = _write(tmp_path, '{"format": "spikeforge-network", "version": 1,')
    with pytest.raises(ValueError, match=r": not valid JSON \(Expecting property name"):
        load_network(path)
    doc = _doc()
    doc["arrays"] = "gone.npz"
    path = _write(tmp_path, doc)
    with pytest.raises(ValueError, match=r": side file 'gone.npz' is missing$"):
        load_network(path)
    doc["arrays"] = "../elsewhere.npz"
    path = _write(tmp_path, doc)
    with pytest.raises(ValueError, match=r": arrays must be a file name beside the network file"):
        load_network(path)
    path = _write(tmp_path, "[1, 2]")
    with pytest.raises(ValueError, match=r": document must be an object, not list$"):
        load_network(path)
