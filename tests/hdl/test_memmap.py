"""``spikeforge.memmap``: addresses, word packing and whole-image round trips."""

import numpy as np
import pytest

from spikeforge.image import CoreConfig, CoreImage
from spikeforge.memmap import MemoryMap, Region


def _random_image(config, seed):
    rng = np.random.default_rng(seed)
    c = config
    im = CoreImage(c)
    W = c.weight_bits
    im.weight = rng.integers(-(1 << (W - 1)), 1 << (W - 1), (c.n_axons, c.n_neurons))
    im.delay = rng.integers(0, c.n_slots, (c.n_axons, c.n_neurons))
    im.v = rng.integers(-(1 << 23), 1 << 23, c.n_neurons)
    im.i = rng.integers(-(1 << 23), 1 << 23, c.n_neurons)
    im.bias = rng.integers(-(1 << 23), 1 << 23, c.n_neurons)
    im.ref = rng.integers(0, 16, c.n_neurons)
    im.profile = rng.integers(0, c.n_profiles, c.n_neurons)
    im.threshold = rng.integers(0, 1 << 23, c.n_profiles)
    im.v_reset = rng.integers(-(1 << 23), 1 << 23, c.n_profiles)
    im.alpha_v = rng.integers(0, 1 << 16, c.n_profiles)
    im.reset_mode = rng.integers(0, 2, c.n_profiles)
    im.gen_prob = rng.integers(0, 1 << 16, c.n_axons)
    lim = 1 << (c.slot_bits - 1)
    im.slots = rng.integers(-lim, lim, (c.n_slots, c.n_neurons))
    if c.plastic:
        im.mask = rng.integers(0, 2, (c.n_axons, c.n_neurons))
        im.x = rng.integers(0, 1 << 16, c.n_axons)
        im.y = rng.integers(0, 1 << 16, c.n_neurons)
    im.w_min, im.w_max = -2, 1
    im.stdp_seed, im.step = 0xDEADBEEF, 0xFFFFFFFF
    return im.validate()


@pytest.mark.parametrize("config", [
    CoreConfig(),
    CoreConfig(n_neurons=1, n_axons=1, weight_bits=2, delay_bits=0, lanes=8, plastic=False,
               n_profiles=1),
    CoreConfig(n_neurons=32, n_axons=64, weight_bits=16, delay_bits=3, lanes=2, n_profiles=8),
])
def test_image_round_trip(config):
    mm = MemoryMap(config)
    im = _random_image(config, 3)
    addrs, words = mm.image_writes(im)
    assert len(addrs) == len(set(addrs)) == sum(r.depth for r in mm.regions.values())
    assert max(addrs) < 1 << mm.addr_bits
    assert max(words) < 1 << mm.data_bits
    # reading the regions back in read_addresses order rebuilds the same image
    by_addr = dict(zip(addrs, words, strict=True))
    back = mm.image_from_words([by_addr[a] for a in mm.read_addresses()])
    assert back.equal(im)


def test_word_layout_is_lsb_first():
    mm = MemoryMap(CoreConfig(weight_bits=8, delay_bits=4, plastic=True))
    word = mm[Region.SYNAPSE].pack(weight=[-1], delay=[5], mask=[1])
    assert int(word[0]) == 0xFF | 5 << 8 | 1 << 12
    assert mm[Region.NEURON].width == 24 + 24 + 4 + 16
    assert mm.address(Region.SLOT, 7) == (6 << mm.index_bits) | 7


def test_register_index_and_bad_values():
    mm = MemoryMap(CoreConfig())
    assert mm.register_index("step") == len(mm.register_fields) - 1
    with pytest.raises(ValueError, match="no register named 'stp'"):
        mm.register_index("stp")
    with pytest.raises(ValueError, match=r"weight value 200 is out of range \[-128, 127\]"):
        mm[Region.SYNAPSE].pack(weight=[200], delay=[0], mask=[0])
    with pytest.raises(ValueError, match=r"index out of range \[0, 255\] for region neuron"):
        mm.address(Region.NEURON, 256)
    with pytest.raises(TypeError, match="config must be a CoreConfig"):
        MemoryMap({"n_neurons": 4})
