"""Read-back weights in user units (``spikeforge.host.readback``), without a board: the golden
model learns, its image is turned into a network file, and that file compiles back to the same
weight integers."""

import numpy as np

from spikeforge import examples
from spikeforge.host.compiler import compile_network
from spikeforge.host.netfile import load, save_network
from spikeforge.host.readback import network_with_weights, weight_changes
from spikeforge.presets import preset
from spikeforge.sim.golden import GoldenChip


def test_learned_weights_round_trip_through_a_network_file(tmp_path):
    core = preset("icebreaker").core
    net = load(examples.path("stdp_demo"))
    compiled = compile_network(net, core)
    golden = GoldenChip(compiled.chip)
    golden.run(300, compiled.inputs)
    learned_image = golden.cores[0].image

    learned = network_with_weights(compiled, learned_image)
    save_network(learned, tmp_path / "learned.json")
    again = compile_network(load(tmp_path / "learned.json"), core)

    assert again.scales.q_w == compiled.scales.q_w
    plastic = compiled.chip.cores[0].mask != 0
    assert np.array_equal(again.chip.cores[0].weight[plastic],
                          learned_image.weight[plastic])
    for label, w in compiled.weights_to_user(learned_image).items():
        got = again.weights_to_user()[label]
        assert np.array_equal(np.isnan(got), np.isnan(w))
        np.testing.assert_array_equal(got[~np.isnan(got)], w[~np.isnan(w)])
    changes = weight_changes(compiled, learned_image)
    n, changed, _, _ = changes["plastic"]
    assert n == 6400 and 0 < changed < n
    assert changes["inhibition"][1] == 0          # static weights do not move
