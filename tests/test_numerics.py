"""Claims of docs/numerics.md section 3 that are arithmetic, checked."""

import numpy as np

from spikeforge.sim.golden import decay


def tau_error(ratio, frac_bits):
    """Relative error of the effective tau when exp(-dt/tau) is stored with frac_bits."""
    one = 1 << frac_bits
    alpha = np.round(one * np.exp(-1.0 / ratio))
    tau_eff = -1.0 / np.log(alpha / one)
    return np.abs(tau_eff - ratio) / ratio


def test_every_tau_from_2_to_1000_imports_within_1_percent_at_16_bits():
    ratios = np.arange(2, 1001)
    assert tau_error(ratios, 16).max() < 0.01


def test_twelve_bits_are_not_enough():
    assert tau_error(np.arange(2, 1001), 12).max() > 0.05


def test_decay_is_exponential_down_to_the_stall_band():
    # tau/dt = 1000: the decay follows the exact exponential within rounding and stops only in
    # the band |v| < 0.5 tau/dt = 500 LSB, which is below one weight LSB at weight_exp >= 9.
    alpha = int(round(65536 * np.exp(-1 / 1000)))
    v = np.int64(1 << 22)
    trace = [int(v)]
    for _ in range(20000):
        v = decay(v, alpha)
        trace.append(int(v))
    trace = np.array(trace)
    exact = (1 << 22) * (alpha / 65536.0) ** np.arange(trace.size)
    above = exact > 2000
    # accumulated rounding: at most 1/2 LSB per step, geometric sum <= 0.5 / (1 - alpha)
    assert np.all(np.abs(trace[above] - exact[above]) <= 0.5 / (1 - alpha / 65536) + 1)
    assert 0 < trace[-1] < 512
    assert trace[-1] == trace[-2]      # stalled inside the band, not creeping
