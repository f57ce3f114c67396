"""``spikeforge flash`` up to the programmer call: a fake openFPGALoader on PATH records its
arguments; missing tool, missing board and missing bitstream are one-line errors."""

import os
import stat

import pytest

from spikeforge.boards import flash as flash_mod
from spikeforge.cli import EXIT_DEVICE, EXIT_ENV, EXIT_USAGE, main

FAKE = """#!/bin/sh
printf '%s\\n' "$@" > "$FAKE_ARGS"
if [ -n "$FAKE_FAIL" ]; then
    echo "empty"
    echo "unable to open ftdi device: -3 (device not found)" >&2
    echo "JTAG init failed with: unable to open ftdi device" >&2
    exit 1
fi
echo "Done"
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "openFPGALoader"
    tool.write_text(FAKE)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ARGS", str(tmp_path / "args.txt"))
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    bit = tmp_path / "design.bit"
    bit.write_bytes(b"\xff\x00bitstream")
    return tmp_path / "args.txt", bit, tool


@pytest.mark.parametrize("board, args", [
    ("icebreaker", ["-b", "ice40_generic"]),
    ("ulx3s-85f", ["-b", "ulx3s"]),
])
def test_flash_calls_programmer(fake, board, args, capsys):
    recorded, bit, _ = fake
    assert main(["flash", "--board", board, str(bit)]) == 0
    assert recorded.read_text().split("\n")[:-1] == [*args, str(bit)]
    assert f"programmed {board}" in capsys.readouterr().out


def test_flash_persist_writes_flash_on_ecp5(fake):
    recorded, bit, _ = fake
    assert main(["flash", "--board", "ulx3s", "--persist", str(bit)]) == 0
    assert recorded.read_text().split("\n")[:-1] == ["-b", "ulx3s", "-f", str(bit)]


def test_flash_default_bitstream_is_the_last_build(fake, monkeypatch, tmp_path):
    recorded, _, _ = fake
    monkeypatch.setenv("SPIKEFORGE_BUILD", str(tmp_path / "b"))
    (tmp_path / "b" / "icebreaker").mkdir(parents=True)
    (tmp_path / "b" / "icebreaker" / "top.bin").write_bytes(b"\x00")
    assert main(["flash", "--board", "icebreaker"]) == 0
    assert recorded.read_text().split("\n")[-2] == str(tmp_path / "b" / "icebreaker" / "top.bin")


def test_flash_no_board_is_one_line(fake, monkeypatch, capsys):
    _, bit, _ = fake
    monkeypatch.setenv("FAKE_FAIL", "1")
    assert main(["flash", "--board", "icebreaker", str(bit)]) == EXIT_DEVICE
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "no iCEBreaker (iCE40UP5K) found" in err and "unable to open ftdi device" in err


def test_flash_tool_missing_is_one_line(fake, monkeypatch, capsys):
    _, bit, tool = fake
    tool.unlink()
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(flash_mod, "_wheel_binary", lambda: None)
    assert main(["flash", "--board", "ulx3s-85f", str(bit)]) == EXIT_ENV
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "openFPGALoader is not installed" in err


def test_flash_missing_bitstream_names_it(fake, tmp_path, capsys):
    missing = tmp_path / "nope.bin"
    assert main(["flash", "--board", "icebreaker", str(missing)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(missing) in err


def test_flash_unknown_board(capsys):
    assert main(["flash", "--board", "de10", "x.bit"]) == EXIT_USAGE
    assert "no board named 'de10'" in capsys.readouterr().err
