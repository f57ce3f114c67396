"""``spikeforge selftest``: against the virtual board (all checks pass), and its memory check
against a board whose memory loses a bit (the check fails and names the word)."""

import pytest

from spikeforge.boards.selftest import _memory
from spikeforge.cli import main
from spikeforge.memmap import MemoryMap, Region
from spikeforge.presets import preset
from spikeforge.toolchain import verilator_available


@pytest.mark.verilator
@pytest.mark.skipif(not verilator_available(), reason="Verilator is not installed")
def test_selftest_passes_on_the_virtual_board(capsys):
    assert main(["selftest", "--board", "tiny", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "selftest passed" in out
    assert "ok    link" in out
    for region in ("neuron", "param", "synapse", "slot"):
        assert f"ok    memory {region} core 0" in out
    assert "FAIL" not in out


class _StuckBitLink:
    """A link to a memory whose word ``bad`` of the synapse region has bit 0 stuck at 0."""

    def __init__(self, bad):
        self.mem, self.bad = {}, bad

    def write_region(self, core, region, index, data, wb):
        for k in range(len(data) // wb):
            word = int.from_bytes(data[k * wb:(k + 1) * wb], "little")
            if region == Region.SYNAPSE and index + k == self.bad:
                word &= ~1
            self.mem[core, region, index + k] = word

    def read_region(self, core, region, index, count, wb):
        return b"".join(self.mem[core, region, index + k].to_bytes(wb, "little")
                        for k in range(count))


class _FakeBoard:
    def __init__(self, bad):
        self.memmap = MemoryMap(preset("tiny").core)
        self.chipmap = None
        self.n_cores = 1
        self.link = _StuckBitLink(bad)


def test_memory_check_names_the_bad_word():
    import numpy as np
    checks = {c.name: c for c in _memory(_FakeBoard(bad=37), np.random.default_rng(3))}
    assert all(c.ok for name, c in checks.items() if name != "memory synapse core 0")
    bad = checks["memory synapse core 0"]
    assert not bad.ok and "first at 37" in bad.detail and "1 of 256 words differ" in bad.detail
    # the region is cleared afterwards
    assert all(v == 0 for v in _FakeBoard(bad=37).link.mem.values())
