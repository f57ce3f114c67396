"""Golden model against Brian2 on one network, timed side by side (issue 2, section 7).

The network: 1000 LIF neurons (800 excitatory, 200 inhibitory; tau_mem 20 ms, tau_syn 5 ms,
threshold 20 mV, reset 0 mV, refractory 2 ms), 10 % random connectivity among them (delay 1 ms),
and 24 Poisson generators (all the axons one core of 1024 has left after the 1000 recurrent ones)
reaching each neuron with probability 0.5. 1 ms steps, 10,000 steps (10 s of model time). It runs
twice: STDP off, and STDP on, where the excitatory synapses (input -> exc, exc -> exc) learn by
additive pair STDP. It is built with the Network API and compiled onto one core
``CoreConfig(n_neurons=1024, n_axons=1024, plastic=...)``. Brian2 runs the float model of the
compiled network (see ``_brian2_side.py`` for how the discrete-time model is written there).

An *event* is one delivery of a spike over an existing synapse: spikes times out-degree, counted
the same way on both sides. Run times are CPU seconds of one thread (the machine may be shared),
the fastest of ``--repeat`` runs, and exclude compilation: the golden kernel is JIT-compiled by a
warm-up run; Brian2's Cython code by a warm-up run, its C++ standalone binary by a first run (the
timed figure is Brian2's own measurement, ``std::clock``, of a later run's loop). Compile and
warm-up times are reported separately. Brian2 runs in its own venv (``numpy<2``), made on first
use. The NumPy golden model runs the same steps and must match the kernel bit for bit.

    .venv/bin/python bench/golden_speed.py --json build/bench/golden_speed.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from spikeforge.host.compiler import compile_network
from spikeforge.host.network import STDP, FixedProbability, Network
from spikeforge.image import CoreConfig
from spikeforge.sim.golden import GoldenChip
from spikeforge.sim.reference import simulate_reference

try:
    from spikeforge.sim.golden_fast import FastChip
except ImportError:          # numba missing: the NumPy golden model only
    FastChip = None

ROOT = Path(__file__).resolve().parent.parent
BRIAN2_SPEC = ["brian2==2.9.*", "numpy<2"]
DT = 1.0
N_EXC, N_INH, N_POISSON = 800, 200, 24
LIF = dict(tau_mem=20.0, tau_syn=5.0, v_th=20.0, v_reset=0.0, refractory=2.0)
W_EXC, G_INH, W_IN, RATE_IN, P_IN, P_REC = 0.3, 6.0, 0.5, 40.0, 0.5, 0.1


def build_network(stdp):
    """The benchmark network; ``stdp`` makes input -> exc and exc -> exc plastic."""
    net = Network(dt=DT)
    src = net.poisson_source(N_POISSON, rate_hz=RATE_IN, seed=7, label="noise")
    exc = net.population(N_EXC, label="exc", **LIF)
    inh = net.population(N_INH, label="inh", **LIF)
    rule = (STDP(w_max=2 * W_IN, tau_plus=20.0, tau_minus=20.0, A_plus=0.01 * W_IN,
                 A_minus=0.0105 * W_IN, seed=3) if stdp else None)
    net.connect(src, exc, weight=W_IN, connector=FixedProbability(P_IN, seed=1), stdp=rule)
    net.connect(src, inh, weight=W_IN, connector=FixedProbability(P_IN, seed=2))
    net.connect(exc, exc, weight=W_EXC, stdp=rule,
                connector=FixedProbability(P_REC, seed=3, allow_self=False))
    net.connect(exc, inh, weight=W_EXC, connector=FixedProbability(P_REC, seed=4))
    net.connect(inh, exc, weight=-G_INH * W_EXC, connector=FixedProbability(P_REC, seed=5))
    net.connect(inh, inh, weight=-G_INH * W_EXC,
                connector=FixedProbability(P_REC, seed=6, allow_self=False))
    return net


def out_degrees(image):
    """Existing synapses per axon: weight != 0, or plastic (mask 1)."""
    return ((image.weight != 0) | (image.mask != 0)).sum(axis=1)


# ---------------------------------------------------------------------------------- statistics

def spike_stats(steps, neurons, n_neurons, n_steps, dt=DT):
    """Mean rate (Hz) and mean CV of the ISI over neurons with at least 3 spikes."""
    rate = len(steps) / n_neurons / (n_steps * dt * 1e-3)
    order = np.lexsort((steps, neurons))
    steps, neurons = np.asarray(steps)[order], np.asarray(neurons)[order]
    cvs = []
    bounds = np.searchsorted(neurons, np.arange(n_neurons + 1))
    for k in range(n_neurons):
        isi = np.diff(steps[bounds[k]:bounds[k + 1]])
        if isi.size >= 2 and isi.mean() > 0:
            cvs.append(isi.std() / isi.mean())
    return {"rate_hz": rate, "cv_isi": float(np.mean(cvs)) if cvs else float("nan"),
            "neurons_with_cv": len(cvs)}


# ---------------------------------------------------------------------------------- golden side

def run_golden(compiled, n_steps, numpy_steps, repeat):
    """Time the compiled kernel (after a warm-up) and the NumPy golden model; check agreement."""
    chip = compiled.chip
    out = {}
    n_lif = N_EXC + N_INH
    if FastChip is not None:
        t0 = time.perf_counter()
        FastChip(chip).run(50)                      # JIT compile (or load from the cache)
        out["golden_fast_warmup_s"] = time.perf_counter() - t0
        runs = []
        for _ in range(repeat):
            t0 = time.process_time()
            fast = FastChip(chip)
            setup = time.process_time() - t0
            t0 = time.process_time()
            trace = fast.run(n_steps)
            runs.append(time.process_time() - t0)
        out["golden_fast_setup_s"] = setup
        out["golden_fast_run_s"] = min(runs)
        out["golden_fast_all_run_s"] = runs
        out["golden_events"] = fast.events
        out["golden_events_per_s"] = fast.events / min(runs)
        sp = trace.spikes[trace.spikes[:, 2] < n_lif]
        out["golden_stats"] = spike_stats(sp[:, 0], sp[:, 2], n_lif, n_steps)
    # The NumPy golden model on (a prefix of) the same run; its spikes must be the kernel's.
    k = min(numpy_steps, n_steps)
    golden = GoldenChip(chip)
    t0 = time.process_time()
    ref_trace = golden.run(k)
    out["golden_numpy_steps"] = k
    out["golden_numpy_run_s"] = time.process_time() - t0
    if FastChip is not None:
        part = FastChip(chip)
        part_trace = part.run(k)
        same = (np.array_equal(part_trace.spikes, ref_trace.spikes)
                and part.image.cores[0].equal(golden.image.cores[0]))
        out["golden_fast_bit_exact"] = bool(same)
        out["golden_numpy_events_per_s"] = part.events / out["golden_numpy_run_s"]
    else:
        out["golden_numpy_events_per_s"] = float("nan")
    return out


def run_float(compiled, n_steps):
    t0 = time.process_time()
    trace = simulate_reference(compiled.float_chip, n_steps)
    n_lif = N_EXC + N_INH
    sp = trace.spikes[trace.spikes[:, 2] < n_lif]
    return {"float_run_s": time.process_time() - t0,
            "float_stats": spike_stats(sp[:, 0], sp[:, 2], n_lif, n_steps)}


# ---------------------------------------------------------------------------------- Brian2 side

def export_network(compiled, n_steps, seed):
    """The compiled float model as plain arrays for ``_brian2_side.py`` (no spikeforge there).

    Synapses are those that exist in the integer image (what the golden model delivers over),
    with the float model's weights in mV; neurons are the LIF neurons only.
    """
    im, fc = compiled.chip.cores[0], compiled.float_chip.cores[0]
    n_lif = N_EXC + N_INH
    exists = (im.weight != 0) | (im.mask != 0)
    p = fc.profile[:n_lif]
    net = {"dt_ms": DT, "n_steps": n_steps, "seed": seed, "n_neurons": n_lif,
           "learn": int(fc.learn)}
    for name in ("threshold", "v_reset", "alpha_v", "alpha_i", "refractory", "reset_mode"):
        net[f"neuron_{name}"] = getattr(fc, name)[p].astype(float)
    for name in ("bias", "v", "i"):
        net[f"neuron_{name}"] = getattr(fc, name)[:n_lif].astype(float)
    if (net["neuron_reset_mode"] != 0).any() and fc.learn and fc.trace_mode != 0:
        raise ValueError("the Brian2 side implements all-to-all STDP only")
    # Recurrent synapses: neuron -> (route) -> axon -> row of the weight matrix.
    pre, post, axon = [], [], []
    for src, dst in compiled.chip.routes[:, [1, 3]]:
        n = np.flatnonzero(exists[dst])
        pre.append(np.full(n.size, src))
        post.append(n)
        axon.append(np.full(n.size, dst))
    gens = np.flatnonzero(fc.gen_prob > 0)
    gi, gn = np.nonzero(exists[gens])
    for tag, (pre_, post_, axon_) in {
            "rec": (np.concatenate(pre), np.concatenate(post), np.concatenate(axon)),
            "in": (gi, gn, gens[gi])}.items():
        net[f"{tag}_pre"], net[f"{tag}_post"] = pre_, post_
        net[f"{tag}_w"] = fc.weight[axon_, post_]
        net[f"{tag}_delay"] = fc.delay[axon_, post_]
        net[f"{tag}_plastic"] = fc.mask[axon_, post_]
    if (net["in_delay"] < 1).any():
        raise ValueError("Poisson synapses need a delay of at least 1 step to match Brian2")
    net["poisson_rate_hz"] = fc.gen_prob[gens] / float(1 << 16) / (DT * 1e-3)
    net["rec_outdeg"] = np.bincount(net["rec_pre"], minlength=n_lif)
    net["in_outdeg"] = np.bincount(net["in_pre"], minlength=gens.size)
    if fc.learn:
        net.update(tau_plus=-DT / np.log(fc.alpha_x), tau_minus=-DT / np.log(fc.alpha_y),
                   a_plus=fc.a_plus, a_minus=fc.a_minus, w_min=fc.w_min, w_max=fc.w_max)
    return net


def brian2_python(venv):
    """The venv's python, creating the venv (``python3 -m venv`` + pip) on first use."""
    py = venv / "bin" / "python"
    check = [str(py), "-c", "import brian2, numpy; assert brian2.__version__.startswith('2.9')"]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return py
    print(f"making Brian2's environment in {venv} (once) ...", flush=True)
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *BRIAN2_SPEC], check=True)
    subprocess.run(check, check=True)
    return py


def run_brian2(py, network_file, target, build_dir, repeat):
    out_file = build_dir / f"result-{target}.npz"
    cmd = [str(py), str(Path(__file__).with_name("_brian2_side.py")), str(network_file),
           str(out_file), "--target", target, "--build", str(build_dir / target),
           "--repeat", str(repeat)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    with np.load(out_file) as z:
        res = {k: z[k] for k in z.files}
    meta = json.loads(str(res.pop("meta")))
    meta["process_wall_s"] = wall
    return meta, res


def brian2_figures(net, meta, res):
    """Events (spikes x out-degree) and the best events/s over the timed runs."""
    events = res["counts_lif"] @ net["rec_outdeg"] + res["counts_poisson"] @ net["in_outdeg"]
    run_s = np.asarray(meta["run_s"], float)
    best = int(np.argmax(events / run_s))
    stats = spike_stats(res["spike_t"], res["spike_i"], int(net["n_neurons"]), int(net["n_steps"]))
    return {"events": int(events[best]), "run_s": float(run_s[best]),
            "events_per_s": float(events[best] / run_s[best]), "all_run_s": run_s.tolist(),
            "warmup_s": meta["warmup_s"], "stats": stats}


# ---------------------------------------------------------------------------------- main

def measure(stdp, n_steps, numpy_steps, brian2_py, build, targets, seed, repeat):
    config = CoreConfig(n_neurons=1024, n_axons=1024, plastic=stdp)
    compiled = compile_network(build_network(stdp), config)
    im = compiled.chip.cores[0]
    res = {"synapses": int(out_degrees(im).sum()), "stdp": stdp, "n_steps": n_steps}
    res.update(run_golden(compiled, n_steps, numpy_steps, repeat))
    res.update(run_float(compiled, n_steps))
    if brian2_py is not None:
        net = export_network(compiled, n_steps, seed)
        tag = "stdp" if stdp else "static"
        folder = build / f"brian2-{tag}"
        folder.mkdir(parents=True, exist_ok=True)
        net_file = folder / "network.npz"
        np.savez(net_file, **net)
        for target in targets:
            meta, raw = run_brian2(brian2_py, net_file, target, folder, repeat)
            res[f"brian2_{target}"] = brian2_figures(net, meta, raw)
            res["brian2_version"] = meta["brian2_version"]
    return res


def _fmt(x, spec=".3g"):
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def table(results, targets):
    lines = [f"{'engine':<28} {'STDP':<5} {'run s':>8} {'warm-up s':>10} {'events':>11} "
             f"{'events/s':>10} {'rate Hz':>8} {'CV ISI':>7}"]
    for r in results:
        onoff = "on" if r["stdp"] else "off"
        rows = []
        if "golden_fast_run_s" in r:
            rows.append(("golden (Numba kernel)", r["golden_fast_run_s"],
                         r["golden_fast_warmup_s"], r["golden_events"],
                         r["golden_events_per_s"], r["golden_stats"]))
        rows.append((f"golden (NumPy, {r['golden_numpy_steps']} steps)", r["golden_numpy_run_s"],
                     None, None, r["golden_numpy_events_per_s"], None))
        rows.append(("float model (NumPy)", r["float_run_s"], None, None, None,
                     r["float_stats"]))
        for t in targets:
            b = r.get(f"brian2_{t}")
            if b:
                rows.append((f"Brian2 {t}", b["run_s"], b["warmup_s"], b["events"],
                             b["events_per_s"], b["stats"]))
        for name, run_s, warm, ev, eps, st in rows:
            lines.append(f"{name:<28} {onoff:<5} {_fmt(run_s):>8} {_fmt(warm):>10} "
                         f"{_fmt(ev, 'd') if ev is not None else '-':>11} {_fmt(eps):>10} "
                         f"{_fmt(st['rate_hz'] if st else None, '.2f'):>8} "
                         f"{_fmt(st['cv_isi'] if st else None, '.3f'):>7}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the figures to this JSON file")
    ap.add_argument("--quick", action="store_true", help="1,000 steps instead of 10,000")
    ap.add_argument("--steps", type=int, help="number of 1 ms steps (default 10,000)")
    ap.add_argument("--numpy-steps", type=int, default=None,
                    help="steps of the (slow) NumPy golden model (default: all, 1,000 if quick)")
    ap.add_argument("--no-brian2", action="store_true", help="golden and float model only")
    ap.add_argument("--targets", default="cython,cpp_standalone",
                    help="Brian2 targets, comma separated")
    ap.add_argument("--build", type=Path, default=ROOT / "build" / "bench")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5,
                    help="timed runs per engine; the fastest counts (default 5)")
    args = ap.parse_args(argv)
    n_steps = args.steps or (1000 if args.quick else 10_000)
    numpy_steps = args.numpy_steps or (min(n_steps, 1000) if args.quick else n_steps)
    targets = [t for t in args.targets.split(",") if t]
    args.build.mkdir(parents=True, exist_ok=True)
    py = None if args.no_brian2 else brian2_python(args.build / "brian2-venv")

    results = [measure(stdp, n_steps, numpy_steps, py, args.build, targets, args.seed,
                       args.repeat)
               for stdp in (False, True)]
    print(table(results, targets))

    summary = {"n_neurons": N_EXC + N_INH, "n_poisson": N_POISSON, "dt_ms": DT,
               "n_steps": n_steps, "runs": results}
    for r in results:
        suffix = "_stdp" if r["stdp"] else ""
        summary[f"golden_events_per_s{suffix}"] = r.get("golden_events_per_s")
        summary[f"golden_numpy_events_per_s{suffix}"] = r["golden_numpy_events_per_s"]
        summary[f"golden_bit_exact_vs_numpy{suffix}"] = r.get("golden_fast_bit_exact")
        brian = [r[f"brian2_{t}"]["events_per_s"] for t in targets if f"brian2_{t}" in r]
        if brian:
            best = max(brian)
            summary[f"brian2_events_per_s{suffix}"] = best
            if r.get("golden_events_per_s"):
                summary[f"speedup_vs_brian2{suffix}"] = r["golden_events_per_s"] / best
        # Spike statistics of the float model against Brian2 (the same model, own Poisson draws).
        cmp = {"float_model": r["float_stats"], "golden": r.get("golden_stats")}
        for t in targets:
            if f"brian2_{t}" in r:
                cmp[f"brian2_{t}"] = r[f"brian2_{t}"]["stats"]
        summary[f"spike_stats{suffix}"] = cmp
    for key in ("speedup_vs_brian2", "speedup_vs_brian2_stdp"):
        if key in summary:
            print(f"{key}: {summary[key]:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
        print(f"wrote {args.json}")
    return 0


def _json_default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    raise TypeError(f"not JSON-serialisable: {x!r}")


if __name__ == "__main__":
    sys.exit(main())
