"""Read-back images in user units: learned weights as a network file that can be pushed again.

``network_with_weights(compiled, image)`` rebuilds the compiled ``Network`` with every
projection's weights taken from ``image`` (a ``CoreImage`` read back from a board, or a
``ChipImage``) and converted to mV (``Compiled.weights_to_user``: weight integer times the weight
LSB ``q_w``). Each projection becomes a ``dense`` connector: its matrix holds the read-back weight
where a synapse exists and NaN elsewhere; delays and STDP rules are kept. Plastic weights are
kept inside the rule's ``[w_min, w_max]`` (rounding to the LSB may step just outside). Populations
(and spike sources) are unchanged.
"""

from __future__ import annotations

import numpy as np

from spikeforge.host.netfile import network_from_json, network_to_json

__all__ = ["network_with_weights", "weight_changes"]


def _array(x):
    x = np.asarray(x, dtype=np.float64)
    data = x.astype(object)
    data[np.isnan(x)] = None
    return {"dtype": "float64", "shape": list(x.shape), "data": data.tolist()}


def network_with_weights(compiled, image):
    """A new ``Network``: ``compiled.network`` with the weights of ``image`` in mV."""
    weights = compiled.weights_to_user(image)
    doc, side = network_to_json(compiled.network, threshold=float("inf"))
    for proj, d in zip(compiled.network.projections, doc["projections"], strict=True):
        w = weights[proj.label]
        if proj.stdp is not None:
            present = ~np.isnan(w)
            w[present] = np.clip(w[present], proj.stdp.w_min, proj.stdp.w_max)
        delay = np.broadcast_to(np.asarray(proj.delay, np.float64), np.shape(proj.weight))
        if proj.connector.kind == "one-to-one":
            delay = np.diag(delay)
        else:
            delay = np.array(delay)
        d["connector"] = {"kind": "dense"}
        d["weight"] = _array(w)
        d["delay"] = _array(np.where(np.isnan(w), float(np.min(delay)), delay))
    return network_from_json(doc, side)


def weight_changes(compiled, image):
    """``{projection label: (synapses, changed, mean before, mean after)}`` in mV."""
    before, after = compiled.weights_to_user(), compiled.weights_to_user(image)
    out = {}
    for label, w0 in before.items():
        w1 = after[label]
        present = ~np.isnan(w0)
        out[label] = (int(present.sum()), int((w0[present] != w1[present]).sum()),
                      float(w0[present].mean()) if present.any() else 0.0,
                      float(w1[present].mean()) if present.any() else 0.0)
    return out
