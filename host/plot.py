"""Plots of traces: spike rasters (and, later, probed state side by side)."""

from __future__ import annotations

__all__ = ["raster_png", "comparison_png"]


def raster_png(trace, path, *, dt=1.0, title="", groups=None):
    """Write a spike raster of ``trace`` to ``path`` (PNG).

    ``groups``: optional list of ``(label, core, neuron_indices)`` drawn as horizontal bands, so a
    network's populations are told apart.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    spikes = trace.spikes
    time = (spikes[:, 0] - trace.first_step) * dt
    # One row per (core, neuron), cores stacked.
    rows = spikes[:, 1] * 100000 + spikes[:, 2]
    _, row_index = np.unique(rows, return_inverse=True)
    if groups:
        base = 0
        for k, (label, core, neurons) in enumerate(groups):
            neurons = np.asarray(neurons)
            sel = np.isin(spikes[:, 2], neurons) & (spikes[:, 1] == core)
            pos = np.searchsorted(np.sort(neurons), spikes[sel, 2]) + base
            ax.scatter(time[sel], pos, s=2, marker="|", color=f"C{k}", label=label)
            base += len(neurons)
        ax.legend(loc="upper right", markerscale=4, fontsize=8)
        ax.set_ylabel("neuron")
    else:
        ax.scatter(time, row_index, s=2, marker="|", color="k")
        ax.set_ylabel("spiking neuron (core, index)")
    ax.set_xlabel("time (ms)")
    ax.set_xlim(0, trace.n_steps * dt)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def comparison_png(a, b, path, *, labels=("A", "B"), dt=1.0, title=""):
    """Rasters of two traces side by side and their probed values overlaid, to see where and how
    they diverge. Returns ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    common = [p for p in a.probe_names if p in b.probe_names][:4]
    rows = 1 + len(common)
    fig, axes = plt.subplots(rows, 2, figsize=(11, 2.6 + 1.8 * len(common)), dpi=100,
                             squeeze=False, sharex=True)
    for col, (trace, label) in enumerate(zip((a, b), labels, strict=True)):
        ax = axes[0, col]
        s = trace.spikes
        ax.scatter((s[:, 0] - trace.first_step) * dt, s[:, 1] * 1024 + s[:, 2], s=2,
                   marker="|", color=f"C{col}")
        ax.set_title(f"{label}: {len(s)} spikes")
        ax.set_ylabel("core*1024 + neuron")
    for r, name in enumerate(common, start=1):
        for col, (trace, label) in enumerate(zip((a, b), labels, strict=True)):
            ax = axes[r, col]
            ax.plot((trace.steps - trace.first_step) * dt,
                    trace.probes[:, trace.probe_names.index(name)], lw=0.8, color=f"C{col}",
                    label=label)
            ax.set_ylabel(f"{name[2]} c{name[0]} n{name[1]}")
    for ax in axes[-1]:
        ax.set_xlabel("time (ms)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
