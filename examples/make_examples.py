"""Write the example network files of this folder (run: python examples/make_examples.py).

- ``stdp_demo.json``: 100 Poisson inputs (20 Hz) fully connected with STDP to 64 LIF neurons,
  plus a sparse recurrent inhibitory projection; fits ``CoreConfig(n_neurons=128, n_axons=256)``
  (164 axons: 100 inputs + 64 routed neurons). The weight matrix (6,400 values) is stored in
  ``stdp_demo.npz`` beside the JSON. Measured on the golden model: about 15 Hz per neuron over
  the first second, slowly falling as STDP depresses the weights.
- ``feedforward.json``: 4 array inputs through a dense matrix (with absent synapses and delays)
  to 3 LIF neurons, small enough to read.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from spikeforge.host.netfile import save_network
from spikeforge.host.network import STDP, FixedProbability, Network

__all__ = ["stdp_demo", "feedforward", "main"]


def stdp_demo():
    net = Network(dt=1.0)
    inputs = net.poisson_source(100, rate_hz=20.0, seed=1, label="inputs")
    exc = net.population(64, tau_mem=20.0, tau_syn=5.0, v_th=10.0, v_reset=0.0,
                         refractory=2.0, label="exc")
    # Initial weights uniform in [0, w_max]: the mean input (2 spikes per step, 0.05 mV each)
    # drives v to about 11 mV at rest, just above threshold, so the neurons fire at a few
    # tens of Hz and STDP then shapes the weights (Song, Miller & Abbott 2000).
    w_max = 0.1
    weights = np.random.default_rng(7).uniform(0.0, w_max, size=(100, 64))
    net.connect(inputs, exc, weight=weights, connector="all-to-all", delay=1.0,
                stdp=STDP(w_max=w_max, w_min=0.0, tau_plus=20.0, tau_minus=20.0,
                          A_plus=0.01 * w_max, A_minus=0.012 * w_max, seed=3),
                label="plastic")
    net.connect(exc, exc, weight=-w_max, delay=1.0,
                connector=FixedProbability(0.1, seed=5, allow_self=False), label="inhibition")
    return net


def feedforward():
    net = Network(dt=1.0)
    src = net.spike_source(4, times=[[5.0, 25.0], [6.0], [7.0, 40.0], [50.0, 51.0, 52.0]],
                           label="input")
    out = net.population(3, tau_mem=10.0, tau_syn=2.0, v_th=1.0, v_reset=0.0,
                         refractory=3.0, label="output")
    nan = np.nan
    weight = np.array([[1.2, nan, 0.4],
                       [0.8, 0.9, nan],
                       [nan, 0.9, 0.4],
                       [-0.5, nan, 0.6]])
    net.connect(src, out, weight=weight, delay=np.array([[0, 0, 2]] * 4, dtype=float),
                label="input->output")
    return net


def main(folder=None):
    folder = folder or os.path.dirname(os.path.abspath(__file__))
    save_network(stdp_demo(), os.path.join(folder, "stdp_demo.json"))
    save_network(feedforward(), os.path.join(folder, "feedforward.json"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
