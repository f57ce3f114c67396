"""``spikeforge info``: what the board says about itself (HELLO), in words."""

from __future__ import annotations

NAME = "info"
HELP = "ask a board (or a private virtual board) who it is: HELLO in words"


def add_arguments(p):
    from spikeforge.cli.common import add_board_arguments

    add_board_arguments(p, faults=False)


def describe(info):
    """Lines describing a HELLO reply."""
    from spikeforge.protocol import HelloFlags

    flags = HelloFlags(info["flags"])
    features = [f.name.lower() for f in HelloFlags if f in flags] or ["none"]
    lines = [
        f"protocol     version {info['version']}",
        f"cores        {info['n_cores']} x {info['n_neurons']} neurons, {info['n_axons']} axons",
        f"synapses     {info['weight_bits']}-bit weights, {info['delay_bits']}-bit delays, "
        f"{info['lanes']} lanes, {info['n_profiles']} neuron profiles",
        f"features     {', '.join(features)}; {info['n_probes']} probes",
        f"clock        {info['clock_hz'] / 1e6:g} MHz, line {info['baud']} baud",
        f"link         window {info['window']} commands, {info['out_window']} output frames, "
        f"payloads up to {info['max_payload']} bytes, output resend after "
        f"{info['out_timeout']} clocks",
        f"identity     memory map {info['memmap_hash']:#010x}, build {info['build_id']:#010x}, "
        f"session nonce {info['nonce']:#010x}",
    ]
    if "route_entries" in info:
        lines.append(f"routing      {info['route_entries']} entries per core, fan-out "
                     f"{info.get('fan_out', '?')}")
    return lines


def run(args):
    from spikeforge.cli.common import board_session

    with board_session(args) as s:
        where = "private virtual board" if s.virtual is not None else s.url
        print(f"board        {where}")
        for line in describe(s.board.info):
            print(line)
    return 0
