"""The virtual board: the SoC under Verilator behind a TCP port or a pty, no Python per clock.

The C++ main of a stand-alone Verilator executable (``virtual_main.cpp``, package data) listens
on ``127.0.0.1`` (it prints ``port N``) or opens a pseudo-terminal (``pty PATH``), and moves bytes
between the client and the SoC's UART pins with its own 8N1 line model at the SoC's clocks per
bit; so a pyserial URL (``socket://127.0.0.1:N`` or the pty path) reaches it and
``LinkClient``/``Board`` run unchanged. Faults: each byte in either direction is lost with odds
``drop`` or gets one bit flipped with odds ``flip`` (seeded). When the SoC is not ``active``, the
line is quiet and no bytes wait, the loop sleeps in ``poll()`` instead of clocking. After each
client session it prints ``session rx N tx N first_rx CLK last_tx CLK clocks N usec N
cpu_usec N resets N``.
``SIGUSR1`` presses the reset button; ``SIGTERM``/``SIGINT`` end it cleanly. Builds are cached
under ``build/vboard/`` keyed by the SoC's Verilog, the main and the flags, and are
profile-guided with GCC (``docs/virtual_board.md``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from importlib import resources

from spikeforge.toolchain import VERILATOR_ARGS, binary_dir, build_binary

__all__ = ["VirtualBoard", "build_vboard", "soc_platform", "firmware_ram_of", "main_source",
           "vboard_args", "replay", "busy_network", "SIM_CLOCK_ESTIMATE"]

# Conservative simulated clocks per second: link timeouts are derived from it (a virtual board
# is slower than the real clock, so the host waits as for a slower line).
SIM_CLOCK_ESTIMATE = 500_000

# Verilator flags of the virtual board: -O3 from VERILATOR_ARGS; no X propagation work; memories
# start at zero as on the FPGAs (block RAM initialised by the bitstream). The model's per-clock
# code is cut into functions of at most 3000 statements (instead of two of 12,000 lines: GCC
# optimises the smaller ones better) and case statements stay code rather than constant lookup
# tables (a load per case on every clock): together +9% per CPU second, and the build is no
# slower (bench/virtual_board.py, docs/virtual_board.md).
_FLAGS = ("--x-assign", "fast", "--x-initial", "0", "--output-split-cfuncs", "3000", "-fno-table",
          "-MAKEFLAGS", "OPT_FAST=-O2")


def main_source():
    """The text of the C++ main (package data ``virtual_main.cpp``)."""
    return resources.files("spikeforge.boards").joinpath("virtual_main.cpp").read_text()


def vboard_args(trace=False):
    """Verilator arguments of the virtual board build (``trace``: with FST wave dumps)."""
    return ["-j", "2", *VERILATOR_ARGS, *_FLAGS, *(["--trace-fst"] if trace else [])]


def _line_cpb(preset):
    """The preset's clocks per bit in the model's clock, which the line model counts: the
    chip's, when it has one of its own (``chip_ratio`` of them per link clock)."""
    return preset.clocks_per_bit * preset.chip_ratio


def _wrapper(soc):
    """Verilog of module ``soc`` around ``soc_core`` with ``rst`` and ``rx`` registered.

    Verilator evaluates the logic that depends on top-level inputs at every ``eval()``, twice
    per clock; Amaranth's synchronous reset reaches most of the next-state logic, so a raw
    ``rst`` input puts a third of the model there. Registered, it moves to the clock edge. One
    clock of latency on ``rx`` is invisible to the asynchronous line.

    A SoC with a chip clock of its own (``chip_clk``) gets ``clk`` there and, as its link
    clock, every ``chip_ratio``-th edge of it (``clk`` gated by a register of the falling edge),
    so the two run at the board's ratio and the line model counts chip clocks.
    """
    from amaranth.hdl import Shape
    from amaranth.lib.wiring import In

    ratio = soc.preset.chip_ratio
    link_clk = "clk"
    divider = ""
    if "chip_clk" in soc.signature.members and ratio > 1:
        link_clk = "link_clk"
        divider = (f"  reg [7:0] div = 8'd0;\n"
                   f"  always @(negedge clk) div <= (div == 8'd{ratio - 1}) ? 8'd0 : div + 8'd1;\n"
                   f"  wire link_clk = clk & (div == 8'd0);\n")
    decl, conn = ["input wire clk", "input wire rst"], [f".clk({link_clk})", ".rst(rst_q)"]
    for name, member in soc.signature.members.items():
        if member.is_signature:
            raise ValueError(f"SoC port {name} is an interface; the wrapper takes plain ports")
        if name == "chip_clk":
            conn.append(".chip_clk(clk)")
            continue
        width = Shape.cast(member.shape).width
        rng = f"[{width - 1}:0] " if width > 1 else ""
        decl.append(f"{'input' if member.flow is In else 'output'} wire {rng}{name}")
        conn.append(f".{name}(rx_q)" if name == "rx" else f".{name}({name})")
    return ("module soc(" + ", ".join(decl) + ");\n"
            "  reg rst_q = 1'b1, rx_q = 1'b1;\n"
            "  always @(posedge clk) begin rst_q <= rst; rx_q <= rx; end\n" + divider +
            "  soc_core core(" + ", ".join(conn) + ");\nendmodule\n")


def _has_header(name):
    """True when the C++ compiler finds ``#include <name>``."""
    try:
        r = subprocess.run(["g++", "-x", "c++", "-E", "-"], input=f"#include <{name}>\n",
                           capture_output=True, text=True, timeout=60)
    except OSError:
        return False
    return r.returncode == 0


def _gcc():
    """True when ``c++`` (the compiler Verilator's makefiles call) is GCC."""
    try:
        r = subprocess.run(["c++", "--version"], capture_output=True, text=True, timeout=60)
    except OSError:
        return False
    return "Free Software Foundation" in r.stdout


def busy_network(n=256, fan_in=64, rate_hz=100.0):
    """The workload the virtual board is measured and tuned with: ``n`` LIF neurons that fire in
    about 10% of the steps, each driven by about ``fan_in`` of ``n`` on-chip Bernoulli generators
    (``PoissonSource`` at ``rate_hz``: 10% of them spike per step at 100 Hz)."""
    import numpy as np

    from spikeforge.host.network import Network

    net = Network(dt=1.0)
    src = net.poisson_source(n, rate_hz=rate_hz, seed=3, label="drive")
    lif = net.population(n, tau_mem=10.0, tau_syn=2.0, v_th=1.0, v_reset=0.0, refractory=2.0,
                         label="lif")
    rng = np.random.default_rng(1)
    w = np.where(rng.random((n, n)) < fan_in / n, 0.012 * 64 / fan_in, np.nan)
    net.connect(src, lif, weight=w, delay=1.0, label="drive->lif")
    return net


# GCC profile-guided optimisation: an instrumented build of the model runs a short host session
# (upload, then a busy run) and its profile steers the real build: +25% per CPU second over the
# same flags without it, for about twice the cold build time (docs/virtual_board.md).
_PGO_GENERATE = ("-CFLAGS", "-fprofile-generate", "-LDFLAGS", "-fprofile-generate")
_TRAIN_STEPS = 300


def _train(exe, preset):
    """Run the training session on the instrumented executable ``exe`` (it writes its profile,
    ``*.gcda`` beside its objects, when it exits)."""
    from spikeforge.host import session
    from spikeforge.host.board import Board

    n = min(64, preset.core.n_neurons, preset.core.n_axons)
    net = busy_network(n, fan_in=max(1, n // 4))
    with VirtualBoard(preset, exe=exe, once=True) as vb:
        with Board(vb.url, baud=vb.baud) as board:
            board.hello()
            session.run(board, session.compile_for(board, net), _TRAIN_STEPS)
        vb.session()
        vb.proc.wait(timeout=60)


def _slow_to_train(preset):
    """True when the training session would take the profile-guided build many minutes: a
    firmware link (SERV, about 1,900 clocks a word of a REGION_CRC) in front of more than 4,096
    synapses (the iCEBreaker's 65,536: the training's upload and its checks are about 300 M
    clocks). Such a preset's virtual board is built without a profile."""
    return preset.link_kind == "firmware" and preset.core.n_synapses * preset.n_cores > 4096


def _profiled_build(sources, args, preset, info):
    """Build with ``-fprofile-use``: instrumented build and training first, unless cached.

    GCC looks the profile of object ``/a/b/x.o`` up as ``<profile dir>/#a#b#x.gcda`` (the
    mangled absolute path, see ``-fprofile-dir``), and the final build's folder is not the
    instrumented one's: so the training's ``*.gcda`` are copied under the final build's names.
    ``main.cpp`` sits in each build's own folder, so its functions look changed
    (``-Wno-coverage-mismatch``: GCC then optimises them without a profile; they are not hot).
    """
    gen_args = [*args, *_PGO_GENERATE]
    train_dir = binary_dir(sources, "soc", gen_args, subdir="vboard-train")
    profile = train_dir / "profile"
    use_args = [*args, "-CFLAGS", f"-fprofile-use={profile}", "-CFLAGS", "-Wno-coverage-mismatch"]
    final_obj = binary_dir(sources, "soc", use_args, subdir="vboard") / "obj"
    if info is not None:
        info["cached"] = (final_obj.parent / "built.ok").exists()
    if not (final_obj.parent / "built.ok").exists():
        train_dir.mkdir(parents=True, exist_ok=True)
        with open(train_dir / ".train-lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (profile / "trained.ok").exists():
                exe = build_binary(sources, "soc", gen_args, subdir="vboard-train")
                for old in exe.parent.glob("*.gcda"):
                    old.unlink()
                try:
                    _train(exe, preset)
                except Exception as e:
                    raise RuntimeError(f"the training session of the virtual board's profiled "
                                       f"build failed ({exe}): {e}") from e
                shutil.rmtree(profile, ignore_errors=True)
                profile.mkdir()
                for gcda in exe.parent.glob("*.gcda"):
                    shutil.copyfile(gcda, profile / str(final_obj / gcda.name).replace("/", "#"))
                (profile / "trained.ok").write_text("ok\n")
    return build_binary(sources, "soc", use_args, subdir="vboard")


class _Device:
    """What the SoC's blocks ask of a platform: its ``device`` (they choose memories and
    pipelines by it; the virtual board has no I/O or memories of its own to offer), and
    ``clock_gating``: blocks that idle most of the time get gated clocks, which Verilator does
    not evaluate while they stand still; the bitstream clocks them always (the same machine when
    their ``wake`` conditions are right, ``spikeforge.hdl.gating``)."""

    def __init__(self, device, clock_gating=True):
        self.device = device
        self.clock_gating = clock_gating


def soc_platform(preset, clock_gating=True):
    """What the virtual board elaborates ``preset``'s SoC for: the device of the board built with
    that preset, so that the model is the bitstream's micro-architecture (SPRAM synapses, the
    short update pipeline and single block RAM rings on the iCEBreaker; DP16KD synapses, banked
    LUT RAM and the long pipeline on the ULX3S); device ``None`` for presets no board uses (the
    blocks' defaults). ``clock_gating=False``: no gated clocks, as in the bitstream (the
    reference the tests compare the gated model with)."""
    b = _board_of(preset)
    return _Device(b.device if b is not None and b.device else None, clock_gating)


def firmware_ram_of(preset):
    """Where the SoC of ``preset`` keeps its link firmware on the board built with it
    (``Board.firmware_ram``); ``"block"`` for presets no board uses."""
    b = _board_of(preset)
    return b.firmware_ram(preset) if b else "block"


def _board_of(preset):
    """The board whose chip ``preset`` is (its ``preset`` or one of its ``virtual_presets``),
    or ``None``."""
    from spikeforge.boards import BOARDS

    for b in BOARDS.values():
        if preset.name in (b.preset, *b.virtual_presets):
            return b
    return None


def _flash_booted(soc):
    """``soc`` (``firmware_ram="spram"``) with a model of the board's flash holding what the
    build writes there (``SoC.flash_image``): the processor loads its firmware from it at
    power-on, as on the board. The SoC's other ports, plain."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring

    from spikeforge.hdl.flashboot import SpiFlashModel

    class FlashBooted(wiring.Component):
        def __init__(self):
            self.preset = soc.preset
            super().__init__({name: member for name, member in soc.signature.members.items()
                              if name != "flash"})

        def elaborate(self, platform):
            m = Module()
            m.submodules.soc = soc
            m.submodules.flash = flash = SpiFlashModel(soc.flash_image())
            wiring.connect(m, soc.flash, flash.flash)
            for name, member in self.signature.members.items():
                inner, outer = getattr(soc, name), getattr(self, name)
                m.d.comb += inner.eq(outer) if member.flow is wiring.In else outer.eq(inner)
            return m

    return FlashBooted()


def build_vboard(preset, trace=False, info=None, clock_gating=True, firmware_ram=None):
    """Build (or reuse) the virtual board executable of ``preset``; returns its path.

    With GCC the build is profile-guided (an instrumented build runs a short training session
    first, see ``_profiled_build``), but for a large chip behind the firmware link
    (``_slow_to_train``). ``trace``: a separate build that can dump an FST wave window
    (slower per clock; not profiled). ``info``: a dict that receives ``cached`` (True when an
    earlier build was reused). ``clock_gating=False``: every block on the system clock, as
    in the bitstream, instead of gated clocks (``soc_platform``; slower, for comparison).
    ``firmware_ram``: the SoC's (default: the board's, ``firmware_ram_of``); ``"spram"``
    boots the processor from a model of the flash, as the board does.
    """
    from amaranth.back import verilog

    from spikeforge.hdl.dp16kd import DP16KD_MODEL
    from spikeforge.hdl.soc import SoC
    from spikeforge.hdl.spram import SPRAM_MODEL

    if trace and not _has_header("lz4.h"):
        raise RuntimeError("FST wave dumps need Verilator's FST writer, which needs the lz4 "
                           "headers: install liblz4-dev (apt install liblz4-dev)")
    firmware_ram = firmware_ram or firmware_ram_of(preset)
    soc = SoC(preset, firmware_ram=firmware_ram)
    if firmware_ram == "spram":
        soc = _flash_booted(soc)
    platform = soc_platform(preset, clock_gating)
    sources = {"soc_core.v": verilog.convert(soc, name="soc_core", platform=platform),
               "soc.v": _wrapper(soc), "main.cpp": main_source()}
    if str(platform.device or "").upper().startswith("ICE40UP") or firmware_ram == "spram":
        sources["spram.v"] = SPRAM_MODEL         # the synapse lanes' SB_SPRAM256KA blocks
    if str(platform.device or "").upper().startswith("LFE5U"):
        sources["dp16kd.v"] = DP16KD_MODEL       # the synapse lanes' DP16KD blocks
    if preset.link_kind == "firmware":
        from spikeforge.hdl.cpu import serv_sources

        sources.update(serv_sources())           # the firmware link's processor
    if not trace and _gcc() and not _slow_to_train(preset):
        return _profiled_build(sources, vboard_args(), preset, info)
    if info is not None:
        info["cached"] = (binary_dir(sources, "soc", vboard_args(trace), subdir="vboard")
                          / "built.ok").exists()
    return build_binary(sources, "soc", vboard_args(trace), subdir="vboard")


def _parse_stats(words):
    return {words[k]: int(words[k + 1]) for k in range(1, len(words) - 1, 2)}


class VirtualBoard:
    """Runs the executable of ``preset``; ``url`` is the address to open (``socket://`` or pty).

    ``pty``: serve a pseudo-terminal instead of TCP; ``port``: a fixed TCP port (0: any free);
    ``once``: exit after the first client session; ``clocks_per_bit``: of the line model
    (default: the preset's); ``fst``/``fst_from``/``fst_cycles``: a wave dump window;
    ``record``: write the rx bytes with their clocks (see ``replay``); ``exe``: an executable
    built elsewhere with the same C++ main (e.g. the post-synthesis netlist of
    ``spikeforge.boards.netlist``) instead of the RTL build of ``preset``; ``firmware_ram``:
    ``build_vboard``'s.
    """

    def __init__(self, preset, *, drop=0.0, flip=0.0, seed=1, pty=False, port=0, once=False,
                 clocks_per_bit=None, fst=None, fst_from=0, fst_cycles=0, record=None,
                 exe=None, firmware_ram=None):
        self.preset = preset
        for name, value in (("drop", drop), ("flip", flip)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{name} rate {value!r} is out of range [0, 1)")
        cpb = _line_cpb(preset) if clocks_per_bit is None else int(clocks_per_bit)
        if cpb < 4:
            raise ValueError(f"clocks per bit {cpb} is below the minimum 4")
        self.clocks_per_bit = cpb
        t0 = time.monotonic()
        built = {"cached": True}
        if exe is None:
            exe = build_vboard(preset, trace=fst is not None, info=built,
                               firmware_ram=firmware_ram)
        self.build_seconds = time.monotonic() - t0      # a few seconds when cached
        self.build_cached = built["cached"]
        args = [str(exe), f"+cpb={cpb}", f"+drop={drop}", f"+flip={flip}", f"+seed={seed}",
                f"+port={port}"]
        args += ["+pty"] if pty else []
        args += ["+once"] if once else []
        if fst is not None:
            args += [f"+fst={os.path.abspath(fst)}", f"+fst_from={int(fst_from)}",
                     f"+fst_cycles={int(fst_cycles)}"]
        if record is not None:
            args += [f"+record={os.path.abspath(record)}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline().split()
        if line[:1] == ["port"]:
            self.url = f"socket://127.0.0.1:{line[1]}"
        elif line[:1] == ["pty"]:
            self.url = line[1]
        else:
            self.proc.kill()
            _, err = self.proc.communicate()
            why = " ".join(err.split()) or " ".join(line) or "no output"
            raise RuntimeError(f"virtual board did not start: {why}")

    @property
    def baud(self):
        """A line rate for the host's timeouts: the simulated line is slower than real time."""
        return max(SIM_CLOCK_ESTIMATE // self.clocks_per_bit, 10_000)

    def session(self):
        """Statistics of the next finished client session (blocks until it ends)."""
        return _parse_stats(self.proc.stdout.readline().split())

    def press_reset(self):
        """Reset the SoC as its reset button would (the image stays, the link starts over)."""
        self.proc.send_signal(signal.SIGUSR1)

    def close(self, timeout=10):
        """Stop the server cleanly (SIGTERM); returns the lines it printed since the last read."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rest, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate()
        return rest or ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def replay(preset, record, *, start=0, clock_gating=True):
    """Run the recorded rx bytes of ``record`` through the same model with no I/O at all.

    Returns a dict: ``clocks``, ``seconds`` and ``cpu_seconds`` timed from clock ``start`` on
    (the raw speed of the model on the same workload), ``tx`` (bytes the SoC sent) and ``hash``
    (of every byte sent and the clock it ended on: equal for models that behave the same).
    ``clock_gating``: of the model (``build_vboard``).
    """
    exe = build_vboard(preset, clock_gating=clock_gating)
    out = subprocess.run([str(exe), f"+cpb={_line_cpb(preset)}",
                          f"+replay={os.path.abspath(record)}", f"+from={start}"],
                         capture_output=True, text=True, check=True)
    words = out.stdout.split()
    stats = _parse_stats(words[words.index("replay"):])
    return {"clocks": stats["clocks"], "seconds": stats["usec"] / 1e6,
            "cpu_seconds": stats["cpu_usec"] / 1e6, "tx": stats["tx"], "hash": stats["hash"]}
