"""Board bitstreams through YoWASP: the iCEBreaker build (marker ``synth``, part of
``make test``; cached under ``build/icebreaker``, so a second run reads the stored report), the
report's per-block budget, and one-line build errors."""

import json

import pytest

from spikeforge.boards import board
from spikeforge.boards.build import (
    TimingError,
    _block_of,
    _budget,
    _check_timing,
    _kept_modules,
    build_board,
    default_out,
    tool_command,
)
from spikeforge.cli import EXIT_ENV, EXIT_USAGE, main

KEYS = {"board", "luts", "ffs", "bram", "spram", "fmax_mhz", "clock_mhz", "timing_met",
        "neurons", "synapses", "blocks"}


def _synth_tools():
    try:
        for var in ("YOSYS", "NEXTPNR_ICE40", "ICEPACK"):
            tool_command(var)
        board("icebreaker").platform_class()
    except Exception as e:  # noqa: BLE001 - any missing piece skips the build test
        return str(e)
    return None


@pytest.mark.synth
@pytest.mark.timeout(1800)
def test_icebreaker_bitstream():
    missing = _synth_tools()
    if missing:
        pytest.skip(missing)
    # the board's goals, met: a build that does not fit (FitError) or misses its clock
    # (TimingError) fails this test (the pinned nextpnr seed makes the placement reproducible)
    report = build_board("icebreaker")
    assert KEYS <= set(report)
    written = json.loads((default_out("icebreaker") / "report.json").read_text())
    assert {k: written[k] for k in KEYS} == {k: report[k] for k in KEYS}
    assert report["timing_met"] and report["fmax_mhz"] >= report["clock_mhz"]
    assert report["clock_mhz"] >= 30, "issue 7 asks for at least 30 MHz on the iCEBreaker"
    assert report["neurons"] >= 256 and report["synapses"] >= 65536
    assert report["spram"] == 4 and report["bram"] <= 30
    assert report["luts"] <= 5280
    assert {"link", "core0", "top"} <= set(report["blocks"])
    for counts in report["blocks"].values():
        assert set(counts) == {"luts", "ffs", "bram", "spram", "dsp"}
    assert sum(c["spram"] for c in report["blocks"].values()) == report["spram"]
    assert (default_out("icebreaker") / "top.bin").stat().st_size > 100_000


def test_missed_clock_is_one_line_error(tmp_path):
    report = {"board": "icebreaker", "timing_met": False,
              "clocks": {"clk": {"achieved": 29.75, "constraint": 30.02}}}
    with pytest.raises(TimingError) as e:
        _check_timing(report, tmp_path / "report.json")
    assert str(e.value) == (f"timing not met on icebreaker: Fmax 29.75 MHz below the 30.02 MHz "
                            f"clock (clk) (report: {tmp_path / 'report.json'})")
    _check_timing({**report, "timing_met": True}, tmp_path / "report.json")   # no error


def test_kept_modules_and_blocks():
    rtlil = "\n".join(f"module \\{m}" for m in (
        "top", "top.pll", "top.soc", "top.soc.urx", "top.soc.proc", "top.soc.proc.fifo",
        "top.soc.chip", "top.soc.chip.core0", "top.soc.chip.core0.syn0", "top.soc.chip.core1",
        "top.soc.chip.router"))
    kept = _kept_modules(rtlil)
    assert kept == ["top.soc.urx", "top.soc.proc", "top.soc.chip", "top.soc.chip.core0",
                    "top.soc.chip.core1", "top.soc.chip.router"]
    assert [_block_of(m, kept) for m in ["top", *kept]] == [
        "top", "link", "link", "top", "core0", "core1", "router"]


def test_budget_counts_cells_per_block():
    stat = {"modules": {
        "\\top": {"num_cells_by_type": {"SB_LUT4": 10, "SB_DFF": 3, "top.soc.proc": 1}},
        "\\top.soc.proc": {"num_cells_by_type": {"SB_LUT4": 100, "SB_DFFESR": 7,
                                                 "SB_RAM40_4K": 2, "SB_CARRY": 9}},
        "\\top.soc.chip.core0": {"num_cells_by_type": {"SB_LUT4": 1000, "SB_DFFE": 5,
                                                       "SB_SPRAM256KA": 4, "SB_MAC16": 1}},
    }}
    modules, blocks = _budget(stat, "ice40")
    assert modules["top.soc.proc"] == {"luts": 100, "ffs": 7, "bram": 2, "spram": 0, "dsp": 0}
    assert blocks == {"core0": {"luts": 1000, "ffs": 5, "bram": 0, "spram": 4, "dsp": 1},
                      "link": {"luts": 100, "ffs": 7, "bram": 2, "spram": 0, "dsp": 0},
                      "top": {"luts": 10, "ffs": 3, "bram": 0, "spram": 0, "dsp": 0}}
    ecp = {"modules": {"\\top": {"num_cells_by_type": {"LUT4": 5, "CCU2C": 2, "TRELLIS_FF": 4,
                                                       "DP16KD": 3, "MULT18X18D": 2}}}}
    assert _budget(ecp, "ecp5")[1]["top"] == {"luts": 9, "ffs": 4, "bram": 3, "spram": 0,
                                              "dsp": 2}


def test_build_missing_tool_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    monkeypatch.delenv("YOSYS", raising=False)
    monkeypatch.delenv("NEXTPNR_ICE40", raising=False)
    assert main(["build", "--board", "icebreaker", "--out", str(tmp_path / "b")]) == EXIT_ENV
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not installed: install the 'synth' extra" in err


def test_build_unknown_board(capsys):
    assert main(["build", "--board", "arty"]) == EXIT_USAGE
    assert "no board named 'arty'" in capsys.readouterr().err
