"""The Brian2 half of ``bench/golden_speed.py``; runs inside Brian2's own venv (``numpy<2``).

It imports nothing from spikeforge: it reads the network as plain arrays (``.npz``, written by
``golden_speed.py`` from the compiled float model) and writes spikes and timings back.

The model is the discrete-time float model of ``docs/numerics.md`` sections 5 and 9, written as
Brian2 custom code, not as ODEs: one ``run_regularly`` block in the ``groups`` slot does, per 1 ms
step and in this order,

    isyn <- isyn * alpha_i + s_in;  s_in <- 0       (s_in: the weights that arrived this step)
    if ref > 0: ref <- ref - 1 (v held)  else: v <- v * alpha_v + isyn + bias

then the threshold ``v > th`` (only for neurons that were not refractory at the start of the
step) and the reset ``v <- v_reset`` (or ``v - th``), ``ref <- refractory``. Synapses add their
weight to the target's ``s_in``; Brian2 applies a spike of step ``t`` sent with delay ``D`` in
step ``t + D`` after the neuron update, so the target sees it in step ``t + D + 1``. The golden
model's LIF spike reaches its targets in ``t + 1 + d`` (``D = d``) and a generator spike in
``t + d`` (``D = d - 1``; the network uses ``d >= 1`` for its Poisson synapses).

STDP (all-to-all pair rule, additive, hard clip) uses Brian2's event-driven traces per synapse,
which equal the model's per-axon and per-neuron traces decayed by ``exp(-dt/tau)`` per step. The
model learns from a presynaptic spike when it is delivered at the axon (one step after a LIF
spike, the same step for a generator spike) while the weight reaches the neuron ``d`` steps
later, so plastic synapses have two pre pathways: ``learn`` (delay 1 step for LIF sources, 0 for
generators) and ``transmit`` (delay as above). Brian2 runs pre pathways before the post pathway of
a step, so a pre and post spike in one step count as pre-before-post, as in the model.
One difference remains: the model transmits the weight read at delivery, Brian2 the weight at
arrival (at most ``d`` steps later). Poisson inputs are Brian2's ``PoissonGroup``, with Brian2's
own random numbers: the spike statistics agree statistically, not spike for spike.

Usage: python _brian2_side.py NETWORK.npz OUT.npz --target cython|cpp_standalone --build DIR
"""

import argparse
import json
import os
import time

import numpy as np


def _delay(steps, dt):
    """A homogeneous delay as a scalar (Brian2's fast path), else per-synapse values."""
    from brian2 import ms
    steps = np.asarray(steps)
    if steps.size == 0 or (steps == steps.flat[0]).all():
        return float(steps.flat[0] if steps.size else 0) * dt * ms, None
    return None, steps * dt * ms


def build(net, dt):
    """Create the Brian2 objects for ``net`` (a dict of arrays); return them and the monitors."""
    from brian2 import Hz, NeuronGroup, PoissonGroup, SpikeMonitor, Synapses, ms

    n = int(net["n_neurons"])
    # ``i`` is Brian2's neuron index and ``refractory`` a keyword: the current is ``isyn``.
    eqs = """
    v : 1
    isyn : 1
    s_in : 1
    ref : 1
    act : 1
    th : 1 (constant)
    vreset : 1 (constant)
    rmode : 1 (constant)
    alpha_v : 1 (constant)
    alpha_i : 1 (constant)
    bias : 1 (constant)
    tref : 1 (constant)
    """
    g = NeuronGroup(n, eqs, threshold="act > 0.5 and v > th",
                    reset="v = (1 - rmode) * vreset + rmode * (v - th)\nref = tref",
                    name="lif")
    # act * X + (1 - act) * v is exactly X or exactly v in floating point.
    g.run_regularly("""
    isyn = isyn * alpha_i + s_in
    s_in = 0
    act = int(ref < 0.5)
    ref = ref - (1 - act)
    v = act * (v * alpha_v + isyn + bias) + (1 - act) * v
    """, when="groups", name="lif_step")
    names = {"th": "threshold", "vreset": "v_reset", "rmode": "reset_mode", "alpha_v": "alpha_v",
             "alpha_i": "alpha_i", "bias": "bias", "tref": "refractory", "v": "v", "isyn": "i"}
    for brian_name, name in names.items():
        setattr(g, brian_name, net[f"neuron_{name}"])
    p = PoissonGroup(len(net["poisson_rate_hz"]), rates=net["poisson_rate_hz"] * Hz, name="poisson")

    learn = bool(net["learn"])
    stdp_ns = {}
    if learn:
        stdp_ns = dict(tau_plus=float(net["tau_plus"]) * ms, tau_minus=float(net["tau_minus"]) * ms,
                       A_plus=float(net["a_plus"]), A_minus=float(net["a_minus"]),
                       w_min=float(net["w_min"]), w_max=float(net["w_max"]))
    synapses = []
    for src_name, src, gap in (("rec", g, 1), ("in", p, 0)):
        pre, post = net[f"{src_name}_pre"], net[f"{src_name}_post"]
        w, d, plastic = net[f"{src_name}_w"], net[f"{src_name}_delay"], net[f"{src_name}_plastic"]
        # Brian2 delay of the transmission (see the module docstring): d for LIF, d - 1 for inputs.
        d_brian = np.maximum(d - (1 - gap), 0)
        for is_plastic in (False, True):
            sel = (plastic != 0) == is_plastic
            if not sel.any():
                continue
            if is_plastic and learn:
                model = """
                w : 1
                dapre/dt = -apre / tau_plus : 1 (event-driven)
                dapost/dt = -apost / tau_minus : 1 (event-driven)
                """
                on_pre = {"learn": "apre += 1\nw = clip(w - A_minus * apost, w_min, w_max)",
                          "transmit": "s_in_post += w"}
                on_post = "apost += 1\nw = clip(w + A_plus * apre, w_min, w_max)"
                scalar, per = _delay(d_brian[sel], dt)
                delay = {"learn": gap * dt * ms}
                if scalar is not None:
                    delay["transmit"] = scalar
                s = Synapses(src, g, model, on_pre=on_pre, on_post=on_post, delay=delay,
                             namespace=stdp_ns, name=f"{src_name}_plastic")
            else:
                scalar, per = _delay(d_brian[sel], dt)
                s = Synapses(src, g, "w : 1", on_pre="s_in_post += w",
                             delay=scalar, name=f"{src_name}_static")
            s.connect(i=pre[sel], j=post[sel])
            s.w = w[sel]
            if per is not None:
                (s.transmit if is_plastic and learn else s).delay = per
            synapses.append(s)
    mon_g = SpikeMonitor(g, name="mon_lif")
    mon_p = SpikeMonitor(p, record=False, name="mon_poisson")
    return [g, p, *synapses, mon_g, mon_p], mon_g, mon_p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("network")
    ap.add_argument("out")
    ap.add_argument("--target", choices=("cython", "cpp_standalone"), required=True)
    ap.add_argument("--build", required=True, help="folder for Brian2's generated code")
    ap.add_argument("--warmup-steps", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=1, help="timed runs; each is reported")
    args = ap.parse_args()

    import brian2
    from brian2 import Network, defaultclock, device, ms, prefs, seed, set_device

    net = dict(np.load(args.network))
    dt = float(net["dt_ms"])
    n_steps = int(net["n_steps"])
    os.makedirs(args.build, exist_ok=True)
    brian2.BrianLogger.suppress_name("resolution_conflict")
    defaultclock.dt = dt * ms
    result = {"brian2_version": brian2.__version__, "target": args.target}

    if args.target == "cython":
        prefs.codegen.target = "cython"
        prefs.codegen.runtime.cython.cache_dir = os.path.join(args.build, "cython-cache")
        seed(int(net["seed"]))
        objs, mon_g, mon_p = build(net, dt)
        network = Network(*objs)
        # Warm-up: compiles (or loads from the cache) every code object; not timed as run time.
        t0 = time.perf_counter()
        network.run(args.warmup_steps * dt * ms)
        result["warmup_s"] = time.perf_counter() - t0
        run_s, counts_g, counts_p = [], [], []
        # Every timed run starts from the state after the warm-up (weights included, so STDP
        # runs stay comparable); only Brian2's random numbers differ between them.
        network.store("warm")
        for rep in range(args.repeat):
            network.restore("warm")
            n_g0, n_p0 = np.array(mon_g.count[:]), np.array(mon_p.count[:])
            k0 = len(mon_g.i[:])
            t0 = time.process_time()
            network.run(n_steps * dt * ms)
            run_s.append(time.process_time() - t0)
            counts_g.append(np.array(mon_g.count[:]) - n_g0)
            counts_p.append(np.array(mon_p.count[:]) - n_p0)
            if rep == 0:     # the statistics come from the first timed run
                spike_i = np.array(mon_g.i[k0:])
                first = args.warmup_steps
                spike_t = np.rint(np.array(mon_g.t[k0:] / ms) / dt).astype(np.int64) - first
        result["run_s"] = run_s
    else:
        prefs.devices.cpp_standalone.openmp_threads = 0      # one thread, like the golden kernel
        set_device("cpp_standalone", directory=args.build, build_on_run=False)
        seed(int(net["seed"]))
        objs, mon_g, mon_p = build(net, dt)
        network = Network(*objs)
        network.run(n_steps * dt * ms)
        t0 = time.perf_counter()
        device.build(directory=args.build, compile=True, run=True, with_output=False)
        first = time.perf_counter() - t0
        first_run = device._last_run_time
        # Warm runs: the compiled binary again; the loop time is Brian2's own measurement.
        result["run_s"], result["binary_wall_s"] = [], []
        for _ in range(args.repeat):
            device.run(directory=args.build, with_output=False)
            result["run_s"].append(device._last_run_time)
            result["binary_wall_s"].append(device.timers["run_binary"])
        result["warmup_s"] = first - first_run
        spike_i = np.array(mon_g.i[:])
        spike_t = np.rint(np.array(mon_g.t[:] / ms) / dt).astype(np.int64)
        # Same binary, same seed: every run has the same spikes.
        counts_g = [np.array(mon_g.count[:])] * args.repeat
        counts_p = [np.array(mon_p.count[:])] * args.repeat
    np.savez(args.out, spike_i=spike_i, spike_t=spike_t, counts_lif=np.array(counts_g),
             counts_poisson=np.array(counts_p), meta=np.array(json.dumps(result)))


if __name__ == "__main__":
    main()
