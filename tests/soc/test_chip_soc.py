"""The SoC with the router: two cores of the ``tiny2`` preset under Verilator, driven by the
unchanged host (``Board``), against the golden chip model (``GoldenChip``); and the same with
two small cores (``tiny2-small``: ``SmallCore``, one lane each), and those behind the firmware
link whose processor shares core 0's SPRAM block and boots from a flash model.

A random network of two cores joined by random routes (several destinations per neuron, on both
cores, host output on a random subset of neurons) is uploaded with every routing table, read back
identical, and run with random external input on both cores: the spikes of every core, step by
step, and afterwards the whole state of every core equal the golden model's.
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from vboard import VirtualBoard

from spikeforge import protocol
from spikeforge.host.board import Board
from spikeforge.image import ChipImage
from spikeforge.memmap import TableRegion
from spikeforge.presets import preset
from spikeforge.sim.golden import GoldenChip
from spikeforge.toolchain import verilator_available

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hdl"))

from netgen import first_difference, random_events, random_image  # noqa: E402

pytestmark = [pytest.mark.verilator, pytest.mark.slow,
              pytest.mark.skipif(not verilator_available(), reason="needs Verilator")]

TINY2 = preset("tiny2")
SIM_BAUD = 200_000


def random_chip(seed, p=TINY2):
    """Two random cores at one step, up to 3 random destinations per neuron, random host
    output flags."""
    rng = np.random.default_rng(seed)
    c = p.core
    cores = []
    for k in range(p.n_cores):
        im, _, _ = random_image(c, 100 * seed + k)
        im.step = 11 + seed
        cores.append(im)
    rows = [(s, n, int(rng.integers(p.n_cores)), int(rng.integers(c.n_axons)))
            for s in range(p.n_cores) for n in range(c.n_neurons)
            for _ in range(int(rng.integers(0, 4)))]
    host = [rng.random(c.n_neurons) < 0.7 for _ in range(p.n_cores)]
    return ChipImage(cores, np.array(rows, dtype=np.int64), host).validate(), rng


def _rows(first, inputs):
    return np.array([(first + k, c, a) for k, step in enumerate(inputs)
                     for c, axons in enumerate(step) for a in axons],
                    dtype=np.int64).reshape(-1, 3)


def _route_set(routes):
    return sorted(map(tuple, np.asarray(routes).tolist()))


# ``tiny2-small`` with the firmware link, its firmware's RAM in the SPRAM block of core 0's
# delay slots (the behavioural model), loaded from a model of the flash at power-on: the
# iCEBreaker's arrangement (``SoC(firmware_ram="spram")``)
SMALL_FW = dataclasses.replace(preset("tiny2-small"), name="tiny2-small-fw", baud=100_000,
                               window=2, link_kind="firmware")


@pytest.mark.parametrize("name", ["tiny2", "tiny2-small", "tiny2-small-fw-spram"])
def test_two_cores_with_routing_match_golden_chip(name):
    p = SMALL_FW if name == "tiny2-small-fw-spram" else preset(name)
    kw = {"firmware_ram": "spram"} if p is SMALL_FW else {}
    chip, rng = random_chip(9, p)
    assert len(chip.routes) > 20
    with VirtualBoard(p, **kw) as vb, Board(vb.url, baud=SIM_BAUD, timeout=2.0) as board:
        info = board.hello()
        assert (info["n_cores"], info["route_entries"], info["fan_out"]) == (2, 64, 8)
        board.upload(chip, verify=True)
        back = board.read_chip()
        for got, want in zip(back.cores, chip.cores, strict=True):
            assert first_difference(got, want) is None
        assert _route_set(back.routes) == _route_set(chip.routes)
        for got, want in zip(back.host_out, chip.host_out, strict=True):
            np.testing.assert_array_equal(got, want)
        sent = board.image_bytes(chip)
        assert board.region_crc(TableRegion.ROUTE_INDEX, core=1) == protocol.crc32(
            sent[1, TableRegion.ROUTE_INDEX])

        golden = GoldenChip(chip)
        inputs = [[random_events(p.core, rng, "random") if rng.random() > 0.3
                   else np.zeros(0, np.int64) for _ in range(p.n_cores)]
                  for _ in range(40)]
        first = chip.cores[0].step
        want = golden.run(40, _rows(first, inputs))
        unrouted = ChipImage(chip.cores, None, chip.host_out)
        assert not np.array_equal(GoldenChip(unrouted).run(40, _rows(first, inputs)).spikes,
                                  want.spikes)          # the routes matter
        got = board.run(40, inputs=inputs)
        assert got.first_step == first
        assert len(want.spikes) > 0 and set(want.spikes[:, 1]) == {0, 1}
        np.testing.assert_array_equal(got.spikes, want.spikes)
        # A run without input keeps going from the routed events of the last step.
        want = golden.run(10)
        np.testing.assert_array_equal(board.run(10).spikes, want.spikes)
        after = golden.image
        for k in range(p.n_cores):
            assert first_difference(board.read_image(k), after.cores[k]) is None
        status = board.status()
        assert status["step"] == first + 50 and status["busy_max"] >= status["busy_last"] > 0
