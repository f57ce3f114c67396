"""Plots of traces: spike rasters (and, later, probed state side by side)."""

from __future__ import annotations

__all__ = ["raster_png"]


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
